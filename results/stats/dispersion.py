"""Dispersion, agreement and shape of one distribution: van der Eijk agreement, polarization,
Tastle-Wierman consensus and the bimodality coefficient.

Part of :mod:`results.stats` (see its docstring for the input and output conventions).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from results.stats.base import NAN, ArrayLike, FloatArray, quiet, to_float


def _pattern_agreement(pattern: list[bool]) -> float:
    """Agreement A of one binary layer (van der Eijk 2001, eq. 2-3).

    Triples (i < j < k) of categories are classified by which are non-empty: "1 0 1" is
    bimodal (TDU), "1 1 0" and "0 1 1" are unimodal (TU).  With K categories and S non-empty,
    U = ((K-2) TU - (K-1) TDU) / ((K-2)(TU + TDU)) and A = U (1 - (S-1)/(K-1)).
    S = 1 gives A = 1; no classifiable triple (S = K) gives A = 0 (as in agrmt).
    """
    k = len(pattern)
    s = sum(pattern)
    if s == 1:
        return 1.0
    tu = tdu = 0
    left = 0  # non-empty categories to the left of the current one
    # Every classifiable triple has exactly one empty category; count them per empty
    # category instead of enumerating all K^3 triples.
    for filled in pattern:
        if filled:
            left += 1
            continue
        right = s - left
        tdu += left * right
        tu += left * (left - 1) // 2 + right * (right - 1) // 2
    if tu + tdu == 0:
        return 0.0
    u = ((k - 2) * tu - (k - 1) * tdu) / ((k - 2) * (tu + tdu))
    return u * (1.0 - (s - 1) / (k - 1))


def agreement(freqs: ArrayLike) -> float:
    """Van der Eijk's (2001) agreement A of a frequency vector over ordered categories.

    The vector is decomposed into layers: layer j covers every category whose frequency is at
    least the j-th smallest distinct positive frequency f_(j), with height f_(j) - f_(j-1).
    A = sum_j (height_j * S_j / N) * A_j, where S_j is the number of categories in layer j,
    N the total frequency and A_j the agreement of the layer's 0/1 pattern (see
    ``_pattern_agreement``).  Same result as the R package agrmt's ``agreement()``.

    A = 1: everyone in one category; 0: uniform; -1: all mass split between the two extremes.
    Frequencies may be weighted (non-integer).  NaN for fewer than 3 categories, an empty
    vector or non-finite entries; ``ValueError`` for negative frequencies.
    """
    f = np.asarray(freqs, dtype=np.float64).ravel()
    if f.size < 3 or not np.all(np.isfinite(f)):
        return NAN
    if np.any(f < 0):
        raise ValueError("frequencies must be non-negative")
    total = float(f.sum())
    if total <= 0:
        return NAN
    return agreement_core(f, total)


def agreement_core(f: FloatArray, total: float) -> float:
    # Plain Python: at most a dozen categories, where numpy's per-call overhead dominates.
    # Thresholding on distinct levels (rather than agrmt's repeated subtraction) leaves no
    # floating-point crumbs that would become spurious extra layers for weighted counts.
    values = f.tolist()
    result = 0.0
    previous = 0.0
    for level in sorted({v for v in values if v > 0}):
        pattern = [v >= level for v in values]
        result += (level - previous) * sum(pattern) / total * _pattern_agreement(pattern)
        previous = level
    return result


def polarization(freqs: ArrayLike) -> float:
    """Polarization (1 - A) / 2 in [0, 1] from van der Eijk's agreement A; NaN where A is."""
    return (1.0 - agreement(freqs)) / 2.0


def consensus(freqs: ArrayLike, values: ArrayLike | None = None) -> float:
    """Tastle & Wierman (2007) consensus of a frequency vector.

    Cns = 1 + sum_i p_i log2(1 - |X_i - mu| / d_X), with p_i = f_i / sum(f), mu = sum p_i X_i
    and d_X = max(X) - min(X) the width of the scale (not of the observed answers).
    ``values`` are the scale values X_i of the categories (default 1..K); Cns only depends on
    them through (X - mu)/d_X, so any equally spaced values give the same result.

    1 when everyone is in one category (the formula is 0 * log 0 there: defined as 1, as in
    agrmt), 0 when the mass is split equally between the two extremes.  NaN for an empty
    vector, fewer than 2 categories or non-finite entries; ``ValueError`` for negative
    frequencies or a values vector of the wrong length.
    """
    f = np.asarray(freqs, dtype=np.float64).ravel()
    x = (
        np.arange(1.0, f.size + 1.0)
        if values is None
        else np.asarray(values, dtype=np.float64).ravel()
    )
    if x.shape != f.shape:
        raise ValueError("values must have one entry per frequency")
    if f.size < 2 or not (np.all(np.isfinite(f)) and np.all(np.isfinite(x))):
        return NAN
    if np.any(f < 0):
        raise ValueError("frequencies must be non-negative")
    total = float(f.sum())
    width = float(x.max() - x.min())
    if total <= 0 or width <= 0:
        return NAN
    return consensus_core(f, x, total, width)


def consensus_core(f: FloatArray, x: FloatArray, total: float, width: float) -> float:
    if np.count_nonzero(f) == 1:
        return 1.0
    p = f / total
    mu = float(np.dot(p, x))
    used = p > 0
    with quiet():
        return float(1.0 + np.sum(p[used] * np.log2(1.0 - np.abs(x[used] - mu) / width)))


def _bc_from_moments(n: float, m2: float, m3: float, m4: float) -> float:
    """BC from the central moments m2..m4 (divisor n), with scipy's bias corrections."""
    if n < 4 or not m2 > 0:
        return NAN
    g1 = math.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / m2**1.5
    g2 = ((n * n - 1.0) * m4 / m2**2 - 3.0 * (n - 1.0) ** 2) / ((n - 2.0) * (n - 3.0))
    denom = g2 + 3.0 * (n - 1.0) ** 2 / ((n - 2.0) * (n - 3.0))
    return to_float((g1 * g1 + 1.0) / denom) if denom != 0 else NAN


def bimodality_from_counts(values: FloatArray, counts: FloatArray) -> float:
    """Bimodality coefficient of data given as distinct values with frequencies."""
    n = float(counts.sum())
    if n < 4 or np.count_nonzero(counts) < 2:
        return NAN
    dev = values - np.dot(counts, values) / n
    dev2 = dev * dev
    return _bc_from_moments(
        n,
        float(np.dot(counts, dev2) / n),
        float(np.dot(counts, dev2 * dev) / n),
        float(np.dot(counts, dev2 * dev2) / n),
    )


def bimodality_coefficient(x: ArrayLike) -> float:
    """Sarle's bimodality coefficient BC = (g1^2 + 1) / (g2 + 3 (n-1)^2 / ((n-2)(n-3))).

    g1, g2: bias-corrected sample skewness and excess kurtosis
    (``scipy.stats.skew/kurtosis(bias=False)``).  BC > 5/9 (the value for a uniform
    distribution) suggests bimodality.  NaN values are dropped; NaN for n < 4 or when all
    values are equal.  Unweighted: the small-sample corrections are defined for counts.
    """
    arr = np.asarray(x, dtype=np.float64).ravel()
    arr = arr[~np.isnan(arr)]
    n = arr.size
    if n < 4 or not np.all(np.isfinite(arr)) or np.ptp(arr) == 0:
        return NAN
    with quiet():
        g1 = float(sps.skew(arr, bias=False))
        g2 = float(sps.kurtosis(arr, bias=False, fisher=True))
    return to_float((g1 * g1 + 1.0) / (g2 + 3.0 * (n - 1.0) ** 2 / ((n - 2.0) * (n - 3.0))))
