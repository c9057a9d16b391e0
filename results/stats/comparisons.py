"""Comparisons between groups of participants: difference in differences, subgroup gap change
(Welch tests) and Holm / Benjamini-Hochberg adjustment.

Part of :mod:`results.stats` (see its docstring for the input and output conventions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as sps
from statsmodels.regression.linear_model import OLS, WLS
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from results.stats.base import (
    NAN,
    ArrayLike,
    FloatArray,
    as_float_array,
    checked_weights,
    float_list,
    normalised_weights,
    quiet,
    to_float,
)


def _pairs(
    x1: ArrayLike, x2: ArrayLike, weights: ArrayLike | None, name: str
) -> tuple[FloatArray, FloatArray, FloatArray | None, np.ndarray]:
    """T1 and T2 answers of the complete pairs, their normalised weights and the pair mask."""
    a1 = as_float_array(x1, f"{name} T1")
    a2 = as_float_array(x2, f"{name} T2")
    if a1.shape != a2.shape:
        raise ValueError(f"{name}: T1 and T2 must have the same length")
    w = checked_weights(weights, a1.size)
    ok = ~(np.isnan(a1) | np.isnan(a2))
    if w is not None:
        ok &= w > 0
    return a1[ok], a2[ok], (None if w is None else normalised_weights(w[ok])), ok


def _welch(
    d_a: FloatArray, w_a: FloatArray | None, d_b: FloatArray, w_b: FloatArray | None
) -> tuple[float, float, float, float, float]:
    """(t, df, p, ci_low, ci_high) of Welch's test of mean(d_a) - mean(d_b).

    Unweighted: ``scipy.stats.ttest_ind_from_stats(equal_var=False)`` on the groups' means
    and SDs, i.e. ``scipy.stats.ttest_ind(equal_var=False)`` without its per-call input
    checks (a third of the time; gap_change runs hundreds of times per poll), with the
    interval mean_a - mean_b +- t(0.975, df) sqrt(s_a^2/n_a + s_b^2/n_b) and Welch's
    df = (v_a + v_b)^2 / (v_a^2/(n_a - 1) + v_b^2/(n_b - 1)), v = s^2/n; the tests check all
    of it against ``ttest_ind(...)`` and its ``confidence_interval()``.  Weighted:
    statsmodels ``CompareMeans(DescrStatsW, DescrStatsW).ttest_ind(usevar="unequal")`` and
    ``tconfint_diff``, the same formula with weighted means and variances and n = sum of the
    normalised weights.  NaN unless both groups have n >= 2 and at least one has spread.
    """
    if d_a.size < 2 or d_b.size < 2 or (np.ptp(d_a) == 0 and np.ptp(d_b) == 0):
        return NAN, NAN, NAN, NAN, NAN
    with quiet():
        if w_a is None and w_b is None:
            n_a, n_b = d_a.size, d_b.size
            mean_a, mean_b = float(d_a.mean()), float(d_b.mean())
            var_a, var_b = float(d_a.var(ddof=1)) / n_a, float(d_b.var(ddof=1)) / n_b
            res = sps.ttest_ind_from_stats(
                mean_a,
                math.sqrt(var_a * n_a),
                n_a,
                mean_b,
                math.sqrt(var_b * n_b),
                n_b,
                equal_var=False,
            )
            df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
            half = float(special.stdtrit(df, 0.975)) * math.sqrt(var_a + var_b)
            diff = mean_a - mean_b
            return (
                to_float(res.statistic),
                to_float(df),
                to_float(res.pvalue),
                to_float(diff - half),
                to_float(diff + half),
            )
        compare = CompareMeans(DescrStatsW(d_a, weights=w_a), DescrStatsW(d_b, weights=w_b))
        t, p, df = compare.ttest_ind(usevar="unequal")
        lo, hi = compare.tconfint_diff(alpha=0.05, usevar="unequal")
    return to_float(t), to_float(df), to_float(p), to_float(lo), to_float(hi)


def weighted_mean(d: FloatArray, w: FloatArray | None) -> float:
    if d.size == 0:
        return NAN
    return float(d.mean()) if w is None else float(np.dot(d, w) / w.sum())


def _cluster_codes(clusters: ArrayLike | None, ok: np.ndarray, name: str) -> np.ndarray:
    """Dense cluster codes for the used cases; missing ids become singleton clusters (-1)."""
    n_used = int(ok.sum())
    if clusters is None:
        return np.full(n_used, -1, dtype=np.int64)
    arr = np.asarray(clusters)
    if arr.shape != ok.shape:
        raise ValueError(f"{name} must have one entry per participant")
    codes, _ = pd.factorize(arr[ok], use_na_sentinel=True)
    return codes.astype(np.int64)


@dataclass(frozen=True)
class DiffInDiff:
    """Difference in differences between a treatment and a control group."""

    n_treatment: int
    n_control: int
    mean_t1_treatment: float
    mean_t2_treatment: float
    mean_t1_control: float
    mean_t2_control: float
    change_treatment: float
    change_control: float
    did: float
    ci_low: float
    ci_high: float
    t_welch: float
    df_welch: float
    p_welch: float
    n_clusters: int | None
    se_cluster: float
    ci_low_cluster: float
    ci_high_cluster: float
    p_cluster: float


def diff_in_diff(
    x1_treat: ArrayLike,
    x2_treat: ArrayLike,
    x1_ctrl: ArrayLike,
    x2_ctrl: ArrayLike,
    *,
    weights_treat: ArrayLike | None = None,
    weights_ctrl: ArrayLike | None = None,
    clusters_treat: ArrayLike | None = None,
    clusters_ctrl: ArrayLike | None = None,
) -> DiffInDiff:
    """Difference in differences: (mean T2 - mean T1) in treatment minus the same in control.

    Over the complete pairs of each arm, with change scores d = T2 - T1:
    did = mean(d_treat) - mean(d_ctrl); ``ci_low``/``ci_high``, ``t_welch``, ``df_welch``,
    ``p_welch`` from Welch's unequal-variance t-test on the change scores (the numbers of
    ``scipy.stats.ttest_ind(equal_var=False)``; weighted: statsmodels ``CompareMeans``; see
    ``_welch``).
    Weights are normalised to mean 1 within each arm.

    When ``clusters_treat`` and/or ``clusters_ctrl`` give a small-group id per participant,
    ``p_cluster`` comes from an OLS (WLS if weighted) regression of d on a treatment dummy
    with standard errors clustered by group (statsmodels ``cov_type="cluster"``, t reference
    with G - 1 df).  Participants without a group id (None/NaN), and the whole control arm
    when it has no ids, count as clusters of one.  Ids are separate per arm.

    NaN: means with n = 0 in an arm; the Welch test unless both arms have n >= 2 and some
    spread; the clustered test with fewer than 2 clusters or without clusters given.
    """
    a1t, a2t, w_t, ok_t = _pairs(x1_treat, x2_treat, weights_treat, "treatment")
    a1c, a2c, w_c, ok_c = _pairs(x1_ctrl, x2_ctrl, weights_ctrl, "control")
    d_t, d_c = a2t - a1t, a2c - a1c
    change_t, change_c = weighted_mean(d_t, w_t), weighted_mean(d_c, w_c)
    t, df, p, lo, hi = _welch(d_t, w_t, d_c, w_c)

    n_clusters: int | None = None
    se_cl = lo_cl = hi_cl = p_cl = NAN
    if clusters_treat is not None or clusters_ctrl is not None:
        g_t = _cluster_codes(clusters_treat, ok_t, "clusters_treat")
        g_c = _cluster_codes(clusters_ctrl, ok_c, "clusters_ctrl")
        groups = np.concatenate([g_t, np.where(g_c >= 0, g_c + g_t.max(initial=-1) + 1, -1)])
        singles = groups < 0
        groups[singles] = groups.max(initial=-1) + 1 + np.arange(int(singles.sum()))
        # float64 ids: numpy 2.4 sorts floats for np.unique but hashes ints, ~10x slower here.
        groups = groups.astype(np.float64)
        n_clusters = int(np.unique(groups).size)
        if d_t.size >= 1 and d_c.size >= 1 and n_clusters >= 2 and d_t.size + d_c.size >= 3:
            y = np.concatenate([d_t, d_c])
            x = np.column_stack([np.ones(y.size), np.r_[np.ones(d_t.size), np.zeros(d_c.size)]])
            weights = None
            if w_t is not None or w_c is not None:
                weights = np.concatenate(
                    [
                        w_t if w_t is not None else np.ones(d_t.size),
                        w_c if w_c is not None else np.ones(d_c.size),
                    ]
                )
            with quiet():
                model = OLS(y, x) if weights is None else WLS(y, x, weights=weights)
                fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
                se_cl = to_float(fit.bse[1])
                p_cl = to_float(fit.pvalues[1])
                ci = np.asarray(fit.conf_int(alpha=0.05))
                lo_cl, hi_cl = to_float(ci[1, 0]), to_float(ci[1, 1])
            if not se_cl > 0:
                se_cl = lo_cl = hi_cl = p_cl = NAN

    return DiffInDiff(
        n_treatment=int(d_t.size),
        n_control=int(d_c.size),
        mean_t1_treatment=weighted_mean(a1t, w_t),
        mean_t2_treatment=weighted_mean(a2t, w_t),
        mean_t1_control=weighted_mean(a1c, w_c),
        mean_t2_control=weighted_mean(a2c, w_c),
        change_treatment=change_t,
        change_control=change_c,
        did=to_float(change_t - change_c),
        ci_low=lo,
        ci_high=hi,
        t_welch=t,
        df_welch=df,
        p_welch=p,
        n_clusters=n_clusters,
        se_cluster=se_cl,
        ci_low_cluster=lo_cl,
        ci_high_cluster=hi_cl,
        p_cluster=p_cl,
    )


@dataclass(frozen=True)
class GapChange:
    """Change in the gap between two subgroups (e.g. two parties) on one item."""

    n_a: int
    n_b: int
    mean_t1_a: float
    mean_t2_a: float
    mean_t1_b: float
    mean_t2_b: float
    gap_t1: float
    gap_t2: float
    gap_change: float
    change_a: float
    change_b: float
    diff_change: float
    ci_low: float
    ci_high: float
    t_welch: float
    df_welch: float
    p_welch: float


def gap_change(
    x1: ArrayLike,
    x2: ArrayLike,
    in_a: ArrayLike,
    in_b: ArrayLike,
    *,
    weights: ArrayLike | None = None,
) -> GapChange:
    """Did deliberation narrow the gap between subgroups A and B (boolean masks)?

    Over complete pairs: gap_t = mean_A(t) - mean_B(t) at each wave and
    gap_change = |gap_t2| - |gap_t1| (negative: the groups moved closer).
    ``diff_change`` = change_a - change_b = gap_t2 - gap_t1 (signed), and ``p_welch`` with
    ``t_welch``, ``df_welch`` and ``ci_low``/``ci_high`` (of diff_change) is Welch's t-test
    of the change scores of A against those of B (:func:`diff_in_diff` machinery), i.e. a
    test of the signed change of the gap.
    Weights are normalised within each subgroup.  NaN as in :func:`diff_in_diff`.
    """
    a1 = as_float_array(x1, "x1")
    a2 = as_float_array(x2, "x2")
    mask_a = np.asarray(in_a, dtype=bool)
    mask_b = np.asarray(in_b, dtype=bool)
    if not (a1.shape == a2.shape == mask_a.shape == mask_b.shape):
        raise ValueError("x1, x2, in_a and in_b must have the same length")
    w = checked_weights(weights, a1.size)
    ok = ~(np.isnan(a1) | np.isnan(a2))
    if w is not None:
        ok &= w > 0

    def part(mask: np.ndarray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        used = ok & mask
        return a1[used], a2[used], None if w is None else normalised_weights(w[used])

    x1a, x2a, w_a = part(mask_a)
    x1b, x2b, w_b = part(mask_b)
    d_a, d_b = x2a - x1a, x2b - x1b
    m1a, m2a = weighted_mean(x1a, w_a), weighted_mean(x2a, w_a)
    m1b, m2b = weighted_mean(x1b, w_b), weighted_mean(x2b, w_b)
    t, df, p, lo, hi = _welch(d_a, w_a, d_b, w_b)
    gap1, gap2 = m1a - m1b, m2a - m2b
    change_a, change_b = weighted_mean(d_a, w_a), weighted_mean(d_b, w_b)
    return GapChange(
        n_a=int(d_a.size),
        n_b=int(d_b.size),
        mean_t1_a=to_float(m1a),
        mean_t2_a=to_float(m2a),
        mean_t1_b=to_float(m1b),
        mean_t2_b=to_float(m2b),
        gap_t1=to_float(gap1),
        gap_t2=to_float(gap2),
        gap_change=to_float(abs(gap2) - abs(gap1)),
        change_a=to_float(change_a),
        change_b=to_float(change_b),
        diff_change=to_float(change_a - change_b),
        ci_low=lo,
        ci_high=hi,
        t_welch=t,
        df_welch=df,
        p_welch=p,
    )


def _holm(p: FloatArray) -> FloatArray:
    """Holm step-down adjusted p: running max of (m - i) p_(i) over sorted p, capped at 1.

    Same numbers as ``multipletests(p, method="holm")``, which however calls
    ``gc.collect()`` on every call (0.1-0.3 s in a process holding a poll's data).
    """
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.minimum(np.maximum.accumulate(p[order] * np.arange(m, 0, -1)), 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def adjust_pvalues(p: ArrayLike) -> tuple[list[float], list[float]]:
    """Holm (family-wise) and Benjamini-Hochberg (false discovery rate) adjusted p-values.

    BH: ``statsmodels.stats.multitest.multipletests(method="fdr_bh")``; Holm: the same
    step-down formula as ``multipletests(method="holm")`` (see ``_holm`` for why it is not
    called).  The family is the finite p-values in ``p``; NaN entries (tests that could not
    be run) stay NaN and do not count towards the family.  Returns ``(holm, bh)`` as lists
    aligned with the input.  ``ValueError`` for p-values outside [0, 1].
    """
    arr = np.asarray(p, dtype=np.float64).ravel()
    holm = np.full(arr.size, np.nan)
    bh = np.full(arr.size, np.nan)
    used = np.isfinite(arr)
    if np.any((arr[used] < 0) | (arr[used] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    if used.any():
        holm[used] = _holm(arr[used])
        bh[used] = multipletests(arr[used], method="fdr_bh")[1]
    return float_list(holm), float_list(bh)


def adjust_within_families(p: ArrayLike, families: list[str]) -> tuple[list[float], list[float]]:
    """:func:`adjust_pvalues` applied within each family on its own (``families[j]`` names the
    family of ``p[j]``): Holm and BH never mix unrelated items. Aligned with the input."""
    arr = np.asarray(p, dtype=np.float64).ravel()
    if arr.size != len(families):
        raise ValueError("one family per p-value")
    holm, bh = np.full(arr.size, np.nan), np.full(arr.size, np.nan)
    names = np.asarray(families, dtype=object)
    for family in dict.fromkeys(families):
        members = names == family
        holm[members], bh[members] = adjust_pvalues(arr[members])
    return float_list(holm), float_list(bh)
