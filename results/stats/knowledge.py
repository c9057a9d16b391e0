"""Knowledge index: number correct at T1 and T2, paired change and change vs control.

Part of :mod:`results.stats` (see its docstring for the input and output conventions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from results.stats.base import (
    NAN,
    ArrayLike,
    FloatArray,
    checked_weights,
    descr_ttest,
    float_list,
    hedges_correction,
    normalised_weights,
    paired_ttest,
    quiet,
    to_float,
)
from results.stats.comparisons import DiffInDiff, diff_in_diff, weighted_mean


def knowledge_index(correct: ArrayLike) -> FloatArray:
    """Number of correct answers per participant from a participant x item matrix.

    Entries: 1/True = correct, 0/False = incorrect (the caller counts DK as incorrect),
    NaN = item not asked.  Participants asked no item get NaN.
    """
    mat = np.asarray(correct, dtype=np.float64)
    if mat.ndim != 2:
        raise ValueError("knowledge answers must be a participant x item matrix")
    asked = ~np.isnan(mat)
    index = np.where(asked, mat, 0.0).sum(axis=1)
    return np.where(asked.any(axis=1), index, np.nan)


@dataclass(frozen=True)
class Knowledge:
    """Political knowledge at T1 and T2 and its change."""

    n_items: int
    n_t1: int
    n_t2: int
    n_pairs: int
    mean_t1: float
    mean_t2: float
    mean_diff: float
    ci_low: float
    ci_high: float
    t: float
    df: float
    p_t: float
    d_z: float
    pct_correct_t1: list[float]
    pct_correct_t2: list[float]
    n_asked_t1: list[int]
    n_asked_t2: list[int]


def knowledge(
    correct_t1: ArrayLike, correct_t2: ArrayLike, *, weights: ArrayLike | None = None
) -> Knowledge:
    """Knowledge index (number correct, see :func:`knowledge_index`) at T1 and T2.

    ``mean_t1``/``mean_t2``/``mean_diff`` and the paired t-test (``scipy.stats.ttest_rel``;
    weighted: ``DescrStatsW(d, weights).ttest_mean(0)``), 95% CI and Hedges-corrected d_z
    are over participants with an index at both waves.  ``pct_correct_*`` is the (weighted)
    percentage correct per item among those asked it in that wave, ``n_asked_*`` their
    number.  Both matrices must have the same shape (same participants and items).
    Compare the change with a control group with :func:`knowledge_did`.
    NaN as in :func:`item_change`.
    """
    m1 = np.asarray(correct_t1, dtype=np.float64)
    m2 = np.asarray(correct_t2, dtype=np.float64)
    if m1.ndim != 2 or m1.shape != m2.shape:
        raise ValueError("correct_t1 and correct_t2 must be participant x item matrices")
    w = checked_weights(weights, m1.shape[0])
    i1, i2 = knowledge_index(m1), knowledge_index(m2)
    if w is not None:
        i1 = np.where(w > 0, i1, np.nan)
        i2 = np.where(w > 0, i2, np.nan)
    ok = ~(np.isnan(i1) | np.isnan(i2))
    x, y = i1[ok], i2[ok]
    wn = None if w is None else normalised_weights(w[ok])
    n = int(ok.sum())
    d = y - x
    if wn is None:
        mean_d, sd_d, t, df, p, lo, hi = paired_ttest(x, y)
    else:
        mean_d, sd_d, t, df, p, lo, hi = descr_ttest(d, wn)
    d_z = mean_d / sd_d * hedges_correction(n) if n >= 2 and sd_d > 0 else NAN

    def pct(mat: np.ndarray) -> tuple[list[float], list[int]]:
        asked = ~np.isnan(mat)
        ww = np.ones(mat.shape[0]) if w is None else w
        ww_asked = asked * ww[:, None]
        with quiet():
            share = np.where(asked, mat, 0.0).T @ ww / ww_asked.sum(axis=0)
        counted = asked & (ww[:, None] > 0)
        return float_list(100.0 * share), [int(v) for v in counted.sum(axis=0)]

    pct1, asked1 = pct(m1)
    pct2, asked2 = pct(m2)
    return Knowledge(
        n_items=int(m1.shape[1]),
        n_t1=int(np.count_nonzero(~np.isnan(i1))),
        n_t2=int(np.count_nonzero(~np.isnan(i2))),
        n_pairs=n,
        mean_t1=weighted_mean(x, wn),
        mean_t2=weighted_mean(y, wn),
        mean_diff=to_float(mean_d),
        ci_low=lo,
        ci_high=hi,
        t=t,
        df=df,
        p_t=p,
        d_z=to_float(d_z),
        pct_correct_t1=pct1,
        pct_correct_t2=pct2,
        n_asked_t1=asked1,
        n_asked_t2=asked2,
    )


def knowledge_did(
    correct_t1_treat: ArrayLike,
    correct_t2_treat: ArrayLike,
    correct_t1_ctrl: ArrayLike,
    correct_t2_ctrl: ArrayLike,
    *,
    weights_treat: ArrayLike | None = None,
    weights_ctrl: ArrayLike | None = None,
    clusters_treat: ArrayLike | None = None,
    clusters_ctrl: ArrayLike | None = None,
) -> DiffInDiff:
    """:func:`diff_in_diff` of the knowledge index (treatment vs control change)."""
    return diff_in_diff(
        knowledge_index(correct_t1_treat),
        knowledge_index(correct_t2_treat),
        knowledge_index(correct_t1_ctrl),
        knowledge_index(correct_t2_ctrl),
        weights_treat=weights_treat,
        weights_ctrl=weights_ctrl,
        clusters_treat=clusters_treat,
        clusters_ctrl=clusters_ctrl,
    )
