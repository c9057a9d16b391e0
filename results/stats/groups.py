"""Small deliberation groups: homogenization and group polarization (Luskin, Sood, Fishkin & Hahn
2022).

Part of :mod:`results.stats` (see its docstring for the input and output conventions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from results.stats.base import NAN, ArrayLike, FloatArray, as_float_array, quiet, to_float


@dataclass(frozen=True)
class SmallGroup:
    """One deliberation group's means and variances over its complete pairs."""

    group: str
    n: int
    mean_t1: float
    mean_t2: float
    var_t1: float
    var_t2: float
    homogenization: float
    polarization: float


@dataclass(frozen=True)
class SmallGroups:
    """Homogenization and group polarization across deliberation groups on one item."""

    midpoint: float
    n_participants: int
    n_groups: int
    n_groups_too_small: int
    mean_homogenization: float
    t_homogenization: float
    p_homogenization: float
    mean_polarization: float
    t_polarization: float
    p_polarization: float
    groups: list[SmallGroup]


def _labels(uniques: Any) -> list[str]:
    """Group ids as strings; integral float ids (NaN-padded integer columns) lose the '.0'."""
    arr = np.asarray(uniques)
    if arr.dtype.kind == "f" and arr.size and np.all(arr == np.trunc(arr)):
        arr = arr.astype(np.int64)
    return [str(v) for v in arr.tolist()]


def one_sample(values: FloatArray) -> tuple[float, float, float]:
    """(mean, t, p) of ``scipy.stats.ttest_1samp(values, 0)``; t, p NaN for n < 2 or no spread.

    Written out (t = mean / (s / sqrt(n)), p = 2 P(T_{n-1} > |t|) via ``special.stdtr``)
    because scipy's per-call input handling costs ~1 ms and a poll runs this twice per item
    and arm; the tests check it against ``ttest_1samp`` to 1e-12.
    """
    if values.size == 0:
        return NAN, NAN, NAN
    mean = float(values.mean())
    if values.size < 2 or np.ptp(values) == 0:
        return mean, NAN, NAN
    n = values.size
    var = float(np.mean((values - mean) ** 2)) * n / (n - 1)
    t = mean / math.sqrt(var / n)
    p = 2.0 * float(special.stdtr(n - 1, -abs(t)))
    return mean, to_float(t), to_float(min(p, 1.0))


def _group_codes(group_ids: ArrayLike) -> tuple[np.ndarray, Any]:
    """Dense codes (-1: no group) and the group ids in order of first appearance."""
    return pd.factorize(np.asarray(group_ids), use_na_sentinel=True)


def small_groups(
    x1: ArrayLike,
    x2: ArrayLike,
    group_ids: ArrayLike,
    *,
    midpoint: float,
    min_size: int = 2,
    per_group: bool = True,
) -> SmallGroups:
    """Homogenization and group polarization (Luskin, Sood, Fishkin & Hahn 2022).

    Per group g, over its members with an answer at both waves (``group_ids``: one id per
    participant, None/NaN = no group): H_g = Var_T2 - Var_T1 (sample variances, divisor
    n_g - 1; negative = the group became more homogeneous) and
    P_g = sign(m_T1 - midpoint) (m_T2 - m_T1) (positive = the group moved further towards
    the side it leaned to; a group starting exactly at the midpoint has P_g = 0).
    ``mean_*`` are unweighted means over groups and ``t_*``/``p_*`` one-sample t-tests of
    the group values against 0 (``scipy.stats.ttest_1samp``).  Groups with fewer than
    ``max(min_size, 2)`` complete pairs are left out (``n_groups_too_small``).
    NaN for the tests with fewer than 2 groups or no spread between groups.
    ``groups`` lists every group with at least one complete pair (values NaN where
    undefined); ``per_group=False`` leaves it empty, which saves ~5 ms per 1,000 groups when
    only the summary is reported.  :func:`small_groups_by_item` does the same for many items
    sharing one grouping, in one pass.
    """
    a1 = as_float_array(x1, "x1")
    a2 = as_float_array(x2, "x2")
    ids = np.asarray(group_ids)
    if not (a1.shape == a2.shape == ids.shape):
        raise ValueError("x1, x2 and group_ids must have the same length")
    (result,) = small_groups_by_item(
        a1[None, :], a2[None, :], ids, midpoints=[midpoint], min_size=min_size, per_group=per_group
    )
    return result


def small_groups_by_item(
    x1: ArrayLike,
    x2: ArrayLike,
    group_ids: ArrayLike,
    *,
    midpoints: Sequence[float],
    min_size: int = 2,
    per_group: bool = True,
) -> list[SmallGroups]:
    """:func:`small_groups` for each row of the item x participant matrices ``x1``/``x2``.

    One factorisation of ``group_ids`` and one ``np.bincount`` per moment over all items
    (bins = item x group), instead of one call per item: at 100,000 participants in 12,500
    groups this is the difference between seconds and milliseconds.  Each bin sums exactly
    the values the per-item call sums, in the same order, so the results are identical.
    ``midpoints`` gives each item's scale midpoint.
    """
    a1 = np.asarray(x1, dtype=np.float64)
    a2 = np.asarray(x2, dtype=np.float64)
    ids = np.asarray(group_ids)
    if a1.ndim != 2 or a1.shape != a2.shape or ids.shape != (a1.shape[1],):
        raise ValueError("x1 and x2 must be item x participant matrices matching group_ids")
    if len(midpoints) != a1.shape[0]:
        raise ValueError("midpoints must give one midpoint per item")
    codes, uniques = _group_codes(ids)
    n_items, n_all = a1.shape[0], len(uniques)
    ok = ~(np.isnan(a1) | np.isnan(a2)) & (codes >= 0)[None, :]
    item, member = np.nonzero(ok)  # row-major: each item's members in participant order
    flat = item * n_all + codes[member]
    x, y = a1[ok], a2[ok]
    bins = n_items * n_all
    size = np.bincount(flat, minlength=bins)
    with quiet():
        m1 = np.bincount(flat, weights=x, minlength=bins) / size
        m2 = np.bincount(flat, weights=y, minlength=bins) / size
        # Two-pass variance (deviations from the group mean) avoids cancellation.
        v1 = np.bincount(flat, weights=(x - m1[flat]) ** 2, minlength=bins) / (size - 1)
        v2 = np.bincount(flat, weights=(y - m2[flat]) ** 2, minlength=bins) / (size - 1)
    n_members = np.bincount(item, minlength=n_items)
    labels = _labels(uniques) if per_group else []
    shape = (n_items, n_all)
    return [
        _small_groups_row(
            size.reshape(shape)[j],
            m1.reshape(shape)[j],
            m2.reshape(shape)[j],
            v1.reshape(shape)[j],
            v2.reshape(shape)[j],
            midpoint=float(midpoints[j]),
            n_participants=int(n_members[j]),
            min_size=min_size,
            labels=labels if per_group else None,
        )
        for j in range(n_items)
    ]


def _small_groups_row(
    size: np.ndarray,
    m1: FloatArray,
    m2: FloatArray,
    v1: FloatArray,
    v2: FloatArray,
    *,
    midpoint: float,
    n_participants: int,
    min_size: int,
    labels: list[str] | None,
) -> SmallGroups:
    """The summary (and, with ``labels``, the per-group rows) of one item's group moments."""
    keep = size >= max(int(min_size), 2)
    present = size > 0
    with quiet():
        homog = v2 - v1
        polar = np.sign(m1 - midpoint) * (m2 - m1)
    mean_h, t_h, p_h = one_sample(homog[keep])
    mean_p, t_p, p_p = one_sample(polar[keep])
    groups: list[SmallGroup] = []
    if labels is not None:
        # Thousands of groups at 100,000 participants: build the rows from whole columns.
        defined = size >= 2
        shown = np.flatnonzero(present)
        columns = [
            np.where(np.isfinite(col), col, np.nan)[shown].tolist()
            for col in (
                m1,
                m2,
                np.where(defined, v1, np.nan),
                np.where(defined, v2, np.nan),
                np.where(defined, homog, np.nan),
                polar,
            )
        ]
        groups = [
            SmallGroup(labels[g], n_g, *values)
            for g, n_g, *values in zip(shown.tolist(), size[shown].tolist(), *columns, strict=True)
        ]
    return SmallGroups(
        midpoint=float(midpoint),
        n_participants=n_participants,
        n_groups=int(keep.sum()),
        n_groups_too_small=int((present & ~keep).sum()),
        mean_homogenization=to_float(mean_h),
        t_homogenization=t_h,
        p_homogenization=p_h,
        mean_polarization=to_float(mean_p),
        t_polarization=t_p,
        p_polarization=p_p,
        groups=groups,
    )
