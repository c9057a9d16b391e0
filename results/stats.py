"""Statistics for Deliberative Poll results (see /work/shared/STATISTICS.md).

Pure numerical code: numpy, scipy, statsmodels and scikit-learn in, frozen dataclasses out.
Nothing here imports Django, reads the database or knows about models; ``results/compute.py``
gathers the answers into arrays and calls these functions.

Input conventions
-----------------
* **Answers** are 1-D ``float64`` arrays, one element per participant, aligned across waves
  (element ``i`` of the T1 and the T2 array is the same participant).  ``NaN`` marks a missing
  answer *and* a "don't know".
* **Don't know** is marked separately by an optional boolean array (``dk1``/``dk2``) of the same
  length, used only where the share of DK is reported.  A participant flagged DK counts as DK
  even if the answer array holds a number there.
* **Rating scales** run over the integers ``scale_min..scale_max`` (default 0..10).  Answers to
  :func:`item_change` must be integers on that scale (anything else raises ``ValueError``:
  it is a bug in the caller, not a property of the data).  Collapsed categories: *oppose* =
  below the midpoint ``(scale_min + scale_max) / 2``, *neutral* = at it, *support* = above it.
  On a scale with an even number of points no answer sits at the midpoint, so neutral is empty.
* **Weights** are an optional 1-D float array aligned with the answers.  A participant whose
  weight is ``NaN`` or ``0`` is left out entirely; negative or infinite weights raise
  ``ValueError``.  Weights are normalised to mean 1 over the cases a statistic uses, so weighted
  tests keep ``n`` as their number of observations (statsmodels ``DescrStatsW`` semantics).
* **Complete pairs**: paired statistics use the participants with a substantive answer at both
  waves (not missing, not DK).

Output conventions
------------------
* Every function returns a frozen dataclass whose :func:`dataclasses.asdict` is JSON-friendly:
  Python ``float``/``int``/``str``/``bool``/``None``, lists, and dicts with ``str`` keys.
  Undefined statistics are ``float('nan')`` (serialise with ``allow_nan`` or map NaN to null).
* Proportions called ``share_*`` are in 0..1; fields called ``pct_*`` and ``distribution_*``
  are percentages in 0..100.
* Nothing raises or warns for degenerate data (n = 0, 1 or 2, everything missing, all answers
  equal, all differences zero): the affected statistics are NaN.
* 95% confidence intervals; two-sided p-values.

Performance notes
-----------------
:func:`item_change` reduces the two answer arrays to one (K+2) x (K+2) joint frequency table
with a single ``np.bincount`` (K scale points plus DK and missing), and computes every statistic
from that table: about 1 ms of fixed cost per call plus about 1 ms per 100,000 participants,
so the 90 calls of a poll with 30 items stay around 150 ms at 100,000 participants.  The
library routines are still the ones doing the work: the t-test is ``DescrStatsW`` over the
distinct differences with their frequencies as weights (identical to ``scipy.stats.ttest_rel``
on the raw data), McNemar and Stuart-Maxwell are statsmodels'.  The only re-derivations
(Wilcoxon's normal approximation and small-sample permutation distribution, the bias-corrected
moments of the bimodality coefficient) exist because scipy has no frequency-weighted form and
its permutation branch takes seconds at 13 pairs; the tests check them against scipy on raw
data to 1e-9.  Holm's adjustment is written out for a similar reason (see ``_holm``).

Run the whole computation with one BLAS/OpenMP thread (``OPENBLAS_NUM_THREADS=1`` /
``OMP_NUM_THREADS=1`` in the worker, or ``threadpoolctl.threadpool_limits(1)``): these are
many small library calls, and on a busy host a second BLAS thread mostly waits.
:func:`option_set` limits itself to one thread while clustering.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special
from scipy import stats as sps
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from statsmodels.regression.linear_model import OLS, WLS
from statsmodels.stats.contingency_tables import SquareTable, mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW
from threadpoolctl import threadpool_limits

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
NAN = float("nan")

# scipy.stats.wilcoxon(method="auto") on n pairs (zeros included): exact null distribution
# for n <= 50 without ties or zeros; otherwise an exact sign-flip permutation test for
# n <= 13 and the normal approximation above.  _wilcoxon reproduces that choice.
_WILCOXON_EXACT_MAX_N = 50
_WILCOXON_PERMUTATION_MAX_N = 13
# Best-axis search for single-peakedness enumerates m!/2 orderings.
MAX_OPTIONS_FOR_AXIS_SEARCH = 8

__all__ = [
    "MAX_OPTIONS_FOR_AXIS_SEARCH",
    "DiffInDiff",
    "GapChange",
    "ItemChange",
    "Knowledge",
    "OpinionGroups",
    "OptionSet",
    "Preferences",
    "SmallGroup",
    "SmallGroups",
    "adjust_pvalues",
    "agreement",
    "bimodality_coefficient",
    "consensus",
    "diff_in_diff",
    "gap_change",
    "hedges_correction",
    "item_change",
    "knowledge",
    "knowledge_did",
    "knowledge_index",
    "option_set",
    "polarization",
    "small_groups",
]


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


_quiet_state = threading.local()


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the warnings that degenerate data makes numpy/scipy/statsmodels/sklearn emit.

    The callers guard the undefined cases explicitly; this only keeps borderline cases
    (zero variance inside a library routine, singular 3x3 tables) off stderr.  Nested uses
    are free: item_change enters it once instead of paying for it in every helper.
    RuntimeWarning covers numpy and scipy (including SmallSampleWarning); UserWarning covers
    scikit-learn's ConvergenceWarning and statsmodels' model warnings.
    """
    if getattr(_quiet_state, "active", False):
        yield
        return
    _quiet_state.active = True
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        _quiet_state.active = False


def _f(value: Any) -> float:
    """Plain Python float; non-finite values (inf from a library on degenerate input) -> NaN."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return NAN
    return out if math.isfinite(out) else NAN


def _flist(values: ArrayLike) -> list[float]:
    return [_f(v) for v in np.asarray(values, dtype=float).ravel()]


def _as_float(x: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _weights(weights: ArrayLike | None, n: int) -> FloatArray | None:
    """Validated weights with NaN turned into 0 (= case left out), or None."""
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    lo, hi = np.fmin.reduce(w, initial=np.inf), np.fmax.reduce(w, initial=-np.inf)
    if lo < 0 or hi == np.inf:  # fmin/fmax skip NaN; all-NaN leaves the initial values
        raise ValueError("weights must be finite and non-negative (NaN = case left out)")
    if math.isnan(float(w.sum())):  # one reduction instead of an isnan pass in the usual case
        w = np.nan_to_num(w, nan=0.0)
    return w


def _normalised(w: FloatArray) -> FloatArray:
    """Scale weights to mean 1 so that sum(w) = number of cases (DescrStatsW's nobs)."""
    total = float(w.sum())
    return w * (w.size / total) if total > 0 else w


def hedges_correction(n: int) -> float:
    """Small-sample correction J = 1 - 3 / (4 (n - 1) - 1) for a standardised mean of n values.

    The usual approximation to Hedges' exact gamma-function factor, with n - 1 degrees of
    freedom (d_z: n = number of pairs).  J(2) = 0, J(n) -> 1; NaN for n < 2.
    """
    if n < 2:
        return NAN
    return 1.0 - 3.0 / (4.0 * (n - 1) - 1.0)


def _descr_ttest(
    values: FloatArray, weights: FloatArray
) -> tuple[float, float, float, float, float, float, float]:
    """(mean, sd, t, df, p, ci_low, ci_high) of a weighted one-sample t-test against 0.

    ``weights`` must sum to the number of observations (frequencies, or normalised weights).
    sd = 0 leaves t and p undefined (NaN) and the interval collapses to the mean.
    """
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    n = float(weights.sum())
    if values.size == 0 or n <= 0:
        return NAN, NAN, NAN, NAN, NAN, NAN, NAN
    if n < 2 - 1e-9:
        return float(np.dot(values, weights) / n), NAN, NAN, NAN, NAN, NAN, NAN
    ds = DescrStatsW(values, weights=weights, ddof=1)
    mean = _f(ds.mean)
    if np.ptp(values) == 0:
        # A single distinct value: zero spread, so the t ratio is 0/0 or x/0.
        return mean, 0.0, NAN, _f(n - 1), NAN, mean, mean
    with _quiet():
        t, p, df = ds.ttest_mean(0.0)
        lo, hi = ds.tconfint_mean(alpha=0.05)
    return mean, _f(ds.std), _f(t), _f(df), _f(p), _f(lo), _f(hi)


def _ttest_rel(
    x: FloatArray, y: FloatArray
) -> tuple[float, float, float, float, float, float, float]:
    """Unweighted counterpart of ``_descr_ttest`` on raw pairs: ``scipy.stats.ttest_rel``."""
    d = y - x
    n = d.size
    if n == 0:
        return NAN, NAN, NAN, NAN, NAN, NAN, NAN
    mean = float(d.mean())
    if n < 2:
        return mean, NAN, NAN, NAN, NAN, NAN, NAN
    if np.ptp(d) == 0:
        return mean, 0.0, NAN, float(n - 1), NAN, mean, mean
    with _quiet():
        res = sps.ttest_rel(y, x)
        ci = res.confidence_interval(0.95)
    sd = float(d.std(ddof=1))
    return mean, sd, _f(res.statistic), _f(res.df), _f(res.pvalue), _f(ci.low), _f(ci.high)


# --------------------------------------------------------------------------------------------
# agreement, consensus, bimodality
# --------------------------------------------------------------------------------------------


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
    return _agreement_core(f, total)


def _agreement_core(f: FloatArray, total: float) -> float:
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
    return _consensus_core(f, x, total, width)


def _consensus_core(f: FloatArray, x: FloatArray, total: float, width: float) -> float:
    if np.count_nonzero(f) == 1:
        return 1.0
    p = f / total
    mu = float(np.dot(p, x))
    used = p > 0
    with _quiet():
        return float(1.0 + np.sum(p[used] * np.log2(1.0 - np.abs(x[used] - mu) / width)))


def _bc_from_moments(n: float, m2: float, m3: float, m4: float) -> float:
    """BC from the central moments m2..m4 (divisor n), with scipy's bias corrections."""
    if n < 4 or not m2 > 0:
        return NAN
    g1 = math.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / m2**1.5
    g2 = ((n * n - 1.0) * m4 / m2**2 - 3.0 * (n - 1.0) ** 2) / ((n - 2.0) * (n - 3.0))
    denom = g2 + 3.0 * (n - 1.0) ** 2 / ((n - 2.0) * (n - 3.0))
    return _f((g1 * g1 + 1.0) / denom) if denom != 0 else NAN


def _bc_from_counts(values: FloatArray, counts: FloatArray) -> float:
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
    with _quiet():
        g1 = float(sps.skew(arr, bias=False))
        g2 = float(sps.kurtosis(arr, bias=False, fisher=True))
    return _f((g1 * g1 + 1.0) / (g2 + 3.0 * (n - 1.0) ** 2 / ((n - 2.0) * (n - 3.0))))


# --------------------------------------------------------------------------------------------
# item change
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemChange:
    """Change on one rating item between T1 and T2.  See :func:`item_change`."""

    scale_min: int
    scale_max: int
    weighted: bool
    n_t1: int
    n_t2: int
    n_pairs: int
    # means and paired tests (complete pairs)
    mean_t1: float
    mean_t2: float
    mean_diff: float
    ci_low: float
    ci_high: float
    t: float
    df: float
    p_t: float
    p_wilcoxon: float
    rank_biserial: float
    d_z: float
    gross_change: float
    share_changed: float
    share_crossed: float
    # distributions (everyone who answered in that wave, DK included)
    pct_oppose_t1: float
    pct_neutral_t1: float
    pct_support_t1: float
    pct_dk_t1: float
    pct_oppose_t2: float
    pct_neutral_t2: float
    pct_support_t2: float
    pct_dk_t2: float
    distribution_t1: list[float]
    distribution_t2: list[float]
    # dispersion, agreement and shape (complete pairs)
    var_t1: float
    var_t2: float
    sd_t1: float
    sd_t2: float
    agreement_t1: float
    agreement_t2: float
    polarization_t1: float
    polarization_t2: float
    consensus_t1: float
    consensus_t2: float
    bimodality_t1: float
    bimodality_t2: float
    # collapsed transitions (complete pairs, unweighted counts)
    transition: list[list[int]]
    p_mcnemar: float
    p_stuart_maxwell: float


_scratch = threading.local()


def _scratch_buffers(n: int) -> tuple[FloatArray, FloatArray, np.ndarray]:
    """Two float and one integer work array of length n, reused across calls per thread.

    At 100,000 participants a fresh 800 KB array is mapped from the OS on every call and
    its page faults cost more than the arithmetic done in it; item_change runs 90+ times
    per recompute.  Nothing returned to callers refers to these arrays.
    """
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None or buffers[0].size < n:
        buffers = (np.empty(n), np.empty(n), np.empty(n, dtype=np.intp))
        _scratch.buffers = buffers
    return buffers[0][:n], buffers[1][:n], buffers[2][:n]


def _wave_states(
    x: FloatArray, dk: ArrayLike | None, scale_min: int, k: int, out: FloatArray
) -> None:
    """Write each participant's state into ``out``: 0..k-1 scale point, k DK, k+1 no answer."""
    if x.size:
        lo, hi = np.fmin.reduce(x), np.fmax.reduce(x)
        if not np.isnan(lo) and (lo < scale_min or hi > scale_min + k - 1):
            raise ValueError(f"answers must lie in [{scale_min}, {scale_min + k - 1}]")
    np.subtract(x, scale_min, out=out)
    np.fmin(out, k + 1.0, out=out)  # fmin ignores NaN, so NaN becomes k + 1
    # All states are >= 0, so truncation changes the sum iff some answer is not an integer.
    before = float(out.sum())
    np.trunc(out, out=out)
    if float(out.sum()) != before:
        raise ValueError("answers must be integers on the rating scale")
    if dk is None:
        return
    flags = np.asarray(dk, dtype=bool)
    if flags.shape != x.shape:
        raise ValueError("don't-know flags must have the same shape as the answers")
    # DK answers arrive as NaN (state k + 1): subtracting the flag moves them to state k.
    np.subtract(out, flags, out=out)
    if np.count_nonzero(out == k) != np.count_nonzero(flags):
        # Some flag sits on a real answer: the flag wins, as documented.
        np.copyto(out, np.where(flags, float(k), out + flags))


def _wilcoxon(d_values: FloatArray, counts: FloatArray, k: int) -> tuple[float, float, float]:
    """(p, W+, W-) of the Wilcoxon signed-rank test from the frequency of each difference.

    ``d_values`` = -(k-1)..(k-1) and ``counts`` their unweighted frequencies.  Zeros are
    dropped (zero_method="wilcox"); ties among |d| get average ranks; two-sided p, chosen as
    ``scipy.stats.wilcoxon(d, zero_method="wilcox")`` (method="auto") chooses:

    * n <= 50 pairs, no ties, no zeros: scipy itself (exact null distribution; the raw data
      is rebuilt from the counts, at most 10 values on a 0..10 scale).
    * n <= 13 pairs with ties or zeros: the exact sign-flip permutation distribution of W+,
      p = min(1, 2 min(P(W+ <= w), P(W+ >= w))).  scipy enumerates the 2^n flips by calling
      the statistic once per flip (seconds at n = 13); the same distribution comes from a
      convolution over the ranks (doubled to integers) in microseconds.
    * otherwise the normal approximation without continuity correction and with the tie
      correction, z = (W+ - n(n+1)/4) / sqrt((n(n+1)(2n+1) - sum(t^3 - t)/2) / 24), over the
      n non-zero differences; scipy ranks every difference for it, the counts suffice here.

    NaN when no difference is non-zero.
    """
    centre = k - 1
    pos = counts[centre + 1 :]
    neg = counts[:centre][::-1]
    ties = pos + neg  # frequency of |d| = 1 .. k-1
    n = float(ties.sum())
    if n == 0:
        return NAN, 0.0, 0.0
    n_pairs = n + float(counts[centre])
    below = np.cumsum(ties) - ties
    ranks = below + (ties + 1.0) / 2.0
    w_plus = float(np.dot(pos, ranks))
    w_minus = float(np.dot(neg, ranks))
    exact_ok = n_pairs == n and np.all(ties <= 1)
    if n_pairs <= _WILCOXON_EXACT_MAX_N and exact_ok:
        d_raw = np.repeat(d_values, counts.astype(np.intp))
        with _quiet():
            return _f(sps.wilcoxon(d_raw, zero_method="wilcox").pvalue), w_plus, w_minus
    if n_pairs <= _WILCOXON_PERMUTATION_MAX_N:
        doubled = np.repeat(np.rint(2.0 * ranks).astype(np.intp), ties.astype(np.intp))
        null = np.zeros(int(doubled.sum()) + 1)
        null[0] = 1.0
        for r in doubled:  # at most 13 ranks: multiply the generating function by (1 + x^r)
            null[r:] = null[r:] + null[:-r].copy()
        observed = round(2.0 * w_plus)
        total = float(null.sum())
        p_less = float(null[: observed + 1].sum()) / total
        p_greater = float(null[observed:].sum()) / total
        return min(1.0, 2.0 * min(p_less, p_greater)), w_plus, w_minus
    var = (n * (n + 1.0) * (2.0 * n + 1.0) - float(np.sum(ties**3 - ties)) / 2.0) / 24.0
    if var <= 0:
        return NAN, w_plus, w_minus
    z = (w_plus - n * (n + 1.0) / 4.0) / math.sqrt(var)
    return float(2.0 * special.ndtr(-abs(z))), w_plus, w_minus


def _stuart_maxwell(table: np.ndarray) -> float:
    """p of the Stuart-Maxwell marginal homogeneity test on a square count table.

    Categories empty at both waves are dropped (their covariance row is zero, which makes
    statsmodels' matrix singular).  NaN when no pair changed category or the covariance
    matrix is still singular.
    """
    used = (table.sum(axis=0) + table.sum(axis=1)) > 0
    tab = table[np.ix_(used, used)].astype(np.float64)
    if tab.shape[0] < 2 or tab.sum() - np.trace(tab) == 0:
        return NAN
    with _quiet():
        try:
            res = SquareTable(tab, shift_zeros=False).homogeneity(method="stuart_maxwell")
        except (np.linalg.LinAlgError, ValueError):
            return NAN
    return _f(res.pvalue)


def item_change(
    x1: ArrayLike,
    x2: ArrayLike,
    *,
    dk1: ArrayLike | None = None,
    dk2: ArrayLike | None = None,
    scale_min: int = 0,
    scale_max: int = 10,
    weights: ArrayLike | None = None,
) -> ItemChange:
    """Everything a researcher reports about one rating item asked at T1 and T2.

    Inputs: ``x1``/``x2`` answers (NaN = missing or DK) on the integer scale
    ``scale_min..scale_max``; ``dk1``/``dk2`` optional DK flags; ``weights`` optional.

    Populations:

    * ``n_t1``/``n_t2``, ``distribution_*`` and ``pct_*``: everyone who answered the item in
      that wave, **DK included** (denominator = substantive answers + DK).  So
      ``sum(distribution_t1) + pct_dk_t1 == 100`` and ``pct_oppose + pct_neutral +
      pct_support + pct_dk == 100``.  Weighted when weights are given.
    * Everything else: the ``n_pairs`` complete pairs (substantive answer at both waves).

    With x = T1, y = T2 and d = y - x over complete pairs (weights w normalised to mean 1):

    * ``mean_t1``, ``mean_t2``, ``mean_diff`` = weighted means; ``ci_low``/``ci_high`` the 95%
      t interval of mean(d); ``t``, ``df``, ``p_t`` the paired t-test, t = mean(d) /
      (sd(d)/sqrt(n)), df = n - 1 (``DescrStatsW(d, weights=w).ttest_mean(0)``; unweighted it
      equals ``scipy.stats.ttest_rel(y, x)``).
    * ``p_wilcoxon``: the p of ``scipy.stats.wilcoxon(d, zero_method="wilcox")`` (computed
      from the counts, see ``_wilcoxon``), always unweighted (a rank test has no standard
      weighted form).  ``rank_biserial`` = (W+ - W-)/(W+ + W-) over the non-zero
      differences, also unweighted.
    * ``d_z`` = J(n) mean(d)/sd(d) with Hedges' J = 1 - 3/(4(n-1) - 1).
    * ``gross_change`` = mean |d|; ``share_changed`` = share with d != 0; ``share_crossed`` =
      share moving between oppose and support (either direction), all weighted, in 0..1.
    * ``var_*`` (divisor sum(w) - 1 = n - 1), ``sd_*``; ``agreement_*`` (van der Eijk A) and
      ``polarization_*`` = (1 - A)/2 and ``consensus_*`` (Tastle-Wierman) from the weighted
      frequencies of the scale points; ``bimodality_*`` unweighted (see
      :func:`bimodality_coefficient`).
    * ``transition``: 3 x 3 unweighted counts, rows T1 and columns T2 in the order oppose,
      neutral, support.  ``p_mcnemar``: exact McNemar test of support vs not support
      (statsmodels ``mcnemar(exact=True)``); ``p_stuart_maxwell``: marginal homogeneity of
      the 3 x 3 table (statsmodels ``SquareTable.homogeneity``).  Both unweighted: they are
      tests on counts.

    Undefined values are NaN: means need n >= 1; variances, t, CI and d_z need n >= 2; t,
    p_t and d_z also need sd(d) > 0 (if all differences are equal the CI is [mean, mean]);
    Wilcoxon, rank-biserial, McNemar and Stuart-Maxwell need at least one pair that changed
    (McNemar: changed support status); the bimodality coefficient needs n >= 4 and spread.
    """
    if int(scale_min) != scale_min or int(scale_max) != scale_max or scale_max <= scale_min:
        raise ValueError("scale_min and scale_max must be integers with scale_min < scale_max")
    smin, smax = int(scale_min), int(scale_max)
    a1 = _as_float(x1, "x1")
    a2 = _as_float(x2, "x2")
    if a1.shape != a2.shape:
        raise ValueError("x1 and x2 must have the same length")
    w = _weights(weights, a1.size)
    k = smax - smin + 1
    s = k + 2
    states1, states2, joint = _scratch_buffers(a1.size)
    _wave_states(a1, dk1, smin, k, states1)
    _wave_states(a2, dk2, smin, k, states2)
    if w is not None:
        # A NaN or zero weight takes the participant out of the item altogether.
        dropped = w == 0
        if dropped.any():
            np.copyto(states1, k + 1.0, where=dropped)
            np.copyto(states2, k + 1.0, where=dropped)
    states1 *= s
    states1 += states2
    np.copyto(joint, states1, casting="unsafe")  # exact: integral values below s * s
    counts = np.bincount(joint, minlength=s * s).reshape(s, s).astype(np.float64)
    wcounts = counts if w is None else np.bincount(joint, weights=w, minlength=s * s).reshape(s, s)
    with _quiet():
        return _item_change_from_table(counts, wcounts, smin, smax, weighted=w is not None)


@functools.lru_cache(maxsize=64)
def _scale_layout(smin: int, smax: int) -> tuple[FloatArray, np.ndarray, np.ndarray]:
    """Scale values, difference-bin index matrix and collapsed-category one-hot matrix."""
    k = smax - smin + 1
    values = np.arange(smin, smax + 1, dtype=np.float64)
    steps = np.arange(k)
    diff_index = (steps[None, :] - steps[:, None] + (k - 1)).ravel()
    mid = (smin + smax) / 2.0
    category = np.where(values < mid, 0, np.where(values == mid, 1, 2))
    onehot = np.zeros((k, 3))
    onehot[steps, category] = 1.0
    return values, diff_index, onehot


def _item_change_from_table(
    counts: np.ndarray, wcounts: np.ndarray, smin: int, smax: int, *, weighted: bool
) -> ItemChange:
    values, diff_index, onehot = _scale_layout(smin, smax)
    k = values.size
    d_values = np.arange(-(k - 1), k, dtype=np.float64)
    width = float(values[-1] - values[0])

    # -- wave distributions: everyone who answered in that wave, DK included
    per_wave = []
    for margin_w, margin_n in (
        (wcounts.sum(axis=1), counts.sum(axis=1)),
        (wcounts.sum(axis=0), counts.sum(axis=0)),
    ):
        answered = float(margin_w[: k + 1].sum())
        if answered > 0:
            dist = 100.0 * margin_w[:k] / answered
            dk_pct = 100.0 * float(margin_w[k]) / answered
            collapsed = dist @ onehot
        else:
            dist = np.full(k, np.nan)
            dk_pct = NAN
            collapsed = np.full(3, np.nan)
        per_wave.append((int(margin_n[: k + 1].sum()), dist, dk_pct, collapsed))

    # -- complete pairs
    pairs_n = counts[:k, :k]
    n_pairs = int(pairs_n.sum())
    pairs_w = wcounts[:k, :k]
    if weighted and n_pairs > 0:
        pairs_w = pairs_w * (n_pairs / pairs_w.sum())
    elif not weighted:
        pairs_w = pairs_n
    total_w = float(pairs_w.sum())

    r1, r2 = pairs_w.sum(axis=1), pairs_w.sum(axis=0)
    r1_n, r2_n = pairs_n.sum(axis=1), pairs_n.sum(axis=0)
    d_w = np.bincount(diff_index, weights=pairs_w.ravel(), minlength=2 * k - 1)
    d_n = np.bincount(diff_index, weights=pairs_n.ravel(), minlength=2 * k - 1)

    def wave_shape(margin: FloatArray, margin_n: FloatArray) -> tuple[float, ...]:
        if n_pairs == 0:
            return NAN, NAN, NAN, NAN, NAN, NAN
        mean = float(np.dot(margin, values) / total_w)
        var = float(np.dot(margin, (values - mean) ** 2) / (total_w - 1.0)) if n_pairs >= 2 else NAN
        a = _agreement_core(margin, total_w)
        return (
            mean,
            var,
            a,
            (1.0 - a) / 2.0,
            _consensus_core(margin, values, total_w, width),
            _bc_from_counts(values, margin_n),
        )

    mean1, var1, agr1, pol1, cns1, bc1 = wave_shape(r1, r1_n)
    mean2, var2, agr2, pol2, cns2, bc2 = wave_shape(r2, r2_n)

    mean_d, sd_d, t, df, p_t, ci_low, ci_high = _descr_ttest(d_values, d_w)
    d_z = mean_d / sd_d * hedges_correction(n_pairs) if n_pairs >= 2 and sd_d > 0 else NAN

    if n_pairs == 0 or np.count_nonzero(d_n[d_values != 0]) == 0:
        p_wil, rank_biserial = NAN, NAN
    else:
        p_wil, w_plus, w_minus = _wilcoxon(d_values, d_n, k)
        rank_biserial = (w_plus - w_minus) / (w_plus + w_minus)

    if n_pairs > 0:
        gross = float(np.dot(d_w, np.abs(d_values)) / total_w)
        changed = float(d_w[d_values != 0].sum() / total_w)
        trans_w = onehot.T @ pairs_w @ onehot
        crossed = float((trans_w[0, 2] + trans_w[2, 0]) / total_w)
    else:
        gross = changed = crossed = NAN
    transition = np.rint(onehot.T @ pairs_n @ onehot).astype(np.int64)

    p_mcnemar = NAN
    support_to_not = transition[2, 0] + transition[2, 1]
    not_to_support = transition[0, 2] + transition[1, 2]
    if support_to_not + not_to_support > 0:
        table = np.array(
            [
                [transition[2, 2], support_to_not],
                [not_to_support, transition[:2, :2].sum()],
            ]
        )
        with _quiet():
            p_mcnemar = _f(mcnemar(table, exact=True).pvalue)

    (n1, dist1, dk1_pct, col1), (n2, dist2, dk2_pct, col2) = per_wave
    return ItemChange(
        scale_min=smin,
        scale_max=smax,
        weighted=weighted,
        n_t1=n1,
        n_t2=n2,
        n_pairs=n_pairs,
        mean_t1=_f(mean1),
        mean_t2=_f(mean2),
        mean_diff=_f(mean_d),
        ci_low=ci_low,
        ci_high=ci_high,
        t=t,
        df=df,
        p_t=p_t,
        p_wilcoxon=p_wil,
        rank_biserial=_f(rank_biserial),
        d_z=_f(d_z),
        gross_change=_f(gross),
        share_changed=_f(changed),
        share_crossed=_f(crossed),
        pct_oppose_t1=_f(col1[0]),
        pct_neutral_t1=_f(col1[1]),
        pct_support_t1=_f(col1[2]),
        pct_dk_t1=_f(dk1_pct),
        pct_oppose_t2=_f(col2[0]),
        pct_neutral_t2=_f(col2[1]),
        pct_support_t2=_f(col2[2]),
        pct_dk_t2=_f(dk2_pct),
        distribution_t1=_flist(dist1),
        distribution_t2=_flist(dist2),
        var_t1=_f(var1),
        var_t2=_f(var2),
        sd_t1=_f(math.sqrt(var1)) if var1 >= 0 else NAN,
        sd_t2=_f(math.sqrt(var2)) if var2 >= 0 else NAN,
        agreement_t1=_f(agr1),
        agreement_t2=_f(agr2),
        polarization_t1=_f(pol1),
        polarization_t2=_f(pol2),
        consensus_t1=_f(cns1),
        consensus_t2=_f(cns2),
        bimodality_t1=_f(bc1),
        bimodality_t2=_f(bc2),
        transition=[[int(v) for v in row] for row in transition],
        p_mcnemar=p_mcnemar,
        p_stuart_maxwell=_stuart_maxwell(transition),
    )


# --------------------------------------------------------------------------------------------
# comparisons between groups of participants
# --------------------------------------------------------------------------------------------


def _pairs(
    x1: ArrayLike, x2: ArrayLike, weights: ArrayLike | None, name: str
) -> tuple[FloatArray, FloatArray, FloatArray | None, np.ndarray]:
    """T1 and T2 answers of the complete pairs, their normalised weights and the pair mask."""
    a1 = _as_float(x1, f"{name} T1")
    a2 = _as_float(x2, f"{name} T2")
    if a1.shape != a2.shape:
        raise ValueError(f"{name}: T1 and T2 must have the same length")
    w = _weights(weights, a1.size)
    ok = ~(np.isnan(a1) | np.isnan(a2))
    if w is not None:
        ok &= w > 0
    return a1[ok], a2[ok], (None if w is None else _normalised(w[ok])), ok


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
    with _quiet():
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
            return _f(res.statistic), _f(df), _f(res.pvalue), _f(diff - half), _f(diff + half)
        compare = CompareMeans(DescrStatsW(d_a, weights=w_a), DescrStatsW(d_b, weights=w_b))
        t, p, df = compare.ttest_ind(usevar="unequal")
        lo, hi = compare.tconfint_diff(alpha=0.05, usevar="unequal")
    return _f(t), _f(df), _f(p), _f(lo), _f(hi)


def _wmean(d: FloatArray, w: FloatArray | None) -> float:
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
    change_t, change_c = _wmean(d_t, w_t), _wmean(d_c, w_c)
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
            with _quiet():
                model = OLS(y, x) if weights is None else WLS(y, x, weights=weights)
                fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
                se_cl = _f(fit.bse[1])
                p_cl = _f(fit.pvalues[1])
                ci = np.asarray(fit.conf_int(alpha=0.05))
                lo_cl, hi_cl = _f(ci[1, 0]), _f(ci[1, 1])
            if not se_cl > 0:
                se_cl = lo_cl = hi_cl = p_cl = NAN

    return DiffInDiff(
        n_treatment=int(d_t.size),
        n_control=int(d_c.size),
        mean_t1_treatment=_wmean(a1t, w_t),
        mean_t2_treatment=_wmean(a2t, w_t),
        mean_t1_control=_wmean(a1c, w_c),
        mean_t2_control=_wmean(a2c, w_c),
        change_treatment=change_t,
        change_control=change_c,
        did=_f(change_t - change_c),
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
    ``ci_low``/``ci_high`` is Welch's t-test of the change scores of A against those of B
    (:func:`diff_in_diff` machinery), i.e. a test of the signed change of the gap.
    Weights are normalised within each subgroup.  NaN as in :func:`diff_in_diff`.
    """
    a1 = _as_float(x1, "x1")
    a2 = _as_float(x2, "x2")
    mask_a = np.asarray(in_a, dtype=bool)
    mask_b = np.asarray(in_b, dtype=bool)
    if not (a1.shape == a2.shape == mask_a.shape == mask_b.shape):
        raise ValueError("x1, x2, in_a and in_b must have the same length")
    w = _weights(weights, a1.size)
    ok = ~(np.isnan(a1) | np.isnan(a2))
    if w is not None:
        ok &= w > 0

    def part(mask: np.ndarray) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        used = ok & mask
        return a1[used], a2[used], None if w is None else _normalised(w[used])

    x1a, x2a, w_a = part(mask_a)
    x1b, x2b, w_b = part(mask_b)
    d_a, d_b = x2a - x1a, x2b - x1b
    m1a, m2a = _wmean(x1a, w_a), _wmean(x2a, w_a)
    m1b, m2b = _wmean(x1b, w_b), _wmean(x2b, w_b)
    _, _, p, lo, hi = _welch(d_a, w_a, d_b, w_b)
    gap1, gap2 = m1a - m1b, m2a - m2b
    change_a, change_b = _wmean(d_a, w_a), _wmean(d_b, w_b)
    return GapChange(
        n_a=int(d_a.size),
        n_b=int(d_b.size),
        mean_t1_a=_f(m1a),
        mean_t2_a=_f(m2a),
        mean_t1_b=_f(m1b),
        mean_t2_b=_f(m2b),
        gap_t1=_f(gap1),
        gap_t2=_f(gap2),
        gap_change=_f(abs(gap2) - abs(gap1)),
        change_a=_f(change_a),
        change_b=_f(change_b),
        diff_change=_f(change_a - change_b),
        ci_low=lo,
        ci_high=hi,
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
    return _flist(holm), _flist(bh)


# --------------------------------------------------------------------------------------------
# knowledge
# --------------------------------------------------------------------------------------------


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
    w = _weights(weights, m1.shape[0])
    i1, i2 = knowledge_index(m1), knowledge_index(m2)
    if w is not None:
        i1 = np.where(w > 0, i1, np.nan)
        i2 = np.where(w > 0, i2, np.nan)
    ok = ~(np.isnan(i1) | np.isnan(i2))
    x, y = i1[ok], i2[ok]
    wn = None if w is None else _normalised(w[ok])
    n = int(ok.sum())
    d = y - x
    if wn is None:
        mean_d, sd_d, t, df, p, lo, hi = _ttest_rel(x, y)
    else:
        mean_d, sd_d, t, df, p, lo, hi = _descr_ttest(d, wn)
    d_z = mean_d / sd_d * hedges_correction(n) if n >= 2 and sd_d > 0 else NAN

    def pct(mat: np.ndarray) -> tuple[list[float], list[int]]:
        asked = ~np.isnan(mat)
        ww = np.ones(mat.shape[0]) if w is None else w
        ww_asked = asked * ww[:, None]
        with _quiet():
            share = np.where(asked, mat, 0.0).T @ ww / ww_asked.sum(axis=0)
        counted = asked & (ww[:, None] > 0)
        return _flist(100.0 * share), [int(v) for v in counted.sum(axis=0)]

    pct1, asked1 = pct(m1)
    pct2, asked2 = pct(m2)
    return Knowledge(
        n_items=int(m1.shape[1]),
        n_t1=int(np.count_nonzero(~np.isnan(i1))),
        n_t2=int(np.count_nonzero(~np.isnan(i2))),
        n_pairs=n,
        mean_t1=_wmean(x, wn),
        mean_t2=_wmean(y, wn),
        mean_diff=_f(mean_d),
        ci_low=lo,
        ci_high=hi,
        t=t,
        df=df,
        p_t=p,
        d_z=_f(d_z),
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


# --------------------------------------------------------------------------------------------
# options as a set: rankings, single-peakedness, opinion groups
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """Social-choice summary of complete rankings at one wave."""

    n_rankings: int
    borda: dict[str, float]
    pairwise: list[list[int]]
    condorcet_winner: str | None
    majority_cycle: bool
    cycles: list[list[str]]
    share_single_peaked_axis: float
    share_single_peaked_best: float
    best_axis: list[str] | None
    n_best_axes: int | None


@dataclass(frozen=True)
class OpinionGroups:
    """PCA and k-means opinion groups of the participant x option rating matrix at one wave."""

    n: int
    k: int | None
    silhouette: float
    silhouette_by_k: dict[str, float]
    sizes: list[int]
    centroids: list[list[float]]
    centroids_2d: list[list[float]]
    explained_variance_ratio: list[float]
    components: list[list[float]]


@dataclass(frozen=True)
class OptionSet:
    """The policy options considered together, at T1 and T2.  See :func:`option_set`."""

    option_keys: list[str]
    axis_order: list[str] | None
    n_ratings_t1: dict[str, int]
    n_ratings_t2: dict[str, int]
    mean_rating_t1: dict[str, float]
    mean_rating_t2: dict[str, float]
    order_t1: list[str]
    order_t2: list[str]
    kendall_tau: float
    kendall_p: float
    preferences_t1: Preferences
    preferences_t2: Preferences
    groups_t1: OpinionGroups
    groups_t2: OpinionGroups
    migration: list[list[int]]
    n_migration: int


def _unique_rankings(rankings: ArrayLike, m: int) -> tuple[np.ndarray, FloatArray]:
    """Distinct complete rankings as 0-based positions (U x m) and how many gave each.

    Rows with a NaN, or that are not a permutation of 1..m, are left out.
    """
    r = np.asarray(rankings, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != m:
        raise ValueError(f"rankings must be a participant x {m} matrix, got shape {r.shape}")
    r = r[~np.isnan(r).any(axis=1)]
    r = r[np.all(np.sort(r, axis=1) == np.arange(1, m + 1), axis=1)]
    pos = (r - 1).astype(np.int64)
    if pos.shape[0] == 0:
        return np.zeros((0, m), dtype=np.int64), np.zeros(0)
    if m <= 15:  # m**m fits in int64: one integer per ranking sorts far faster than rows
        _, first, counts = np.unique(
            pos @ (m ** np.arange(m)), return_index=True, return_counts=True
        )
        return pos[first], counts.astype(np.float64)
    uniq, counts = np.unique(pos, axis=0, return_counts=True)
    return uniq, counts.astype(np.float64)


def _single_peaked(order: np.ndarray, axis_pos: np.ndarray) -> npt.NDArray[np.bool_]:
    """Which rankings (options best first, U x m) are single-peaked on the axis.

    A strict ranking is single-peaked w.r.t. an axis iff for every k its k best options are
    contiguous on the axis: max - min of their axis positions equals k - 1.
    """
    ap = axis_pos[order]
    spread = np.maximum.accumulate(ap, axis=1) - np.minimum.accumulate(ap, axis=1)
    return np.all(spread == np.arange(order.shape[1]), axis=1)


@functools.lru_cache(maxsize=MAX_OPTIONS_FOR_AXIS_SEARCH)
def _axis_tables(m: int) -> tuple[FloatArray, np.ndarray, np.ndarray, np.ndarray]:
    """Lookup tables for the best-axis search with 2 <= m <= 8 options (cached per m).

    A ranking is single-peaked exactly on the axes built by putting its best option down
    and adding each next option at the left or the right end: 2^(m-1) directed axes, one
    direction of each of 2^(m-2) undirected axes if the second option always goes right.
    Under left/right pattern b the (k+1)-th best option lands at axis position
    ``slots[b, k]``.  A directed axis (option indices a_0..a_(m-1)) is coded by its first
    m - 1 entries, sum_s a_s m^s (the last entry follows), so that a code -> permutation
    table of m^(m-1) entries (2.1 M for m = 8) stays small.

    Returns ``place`` (pattern x rank weights m^slot, 0 for the last slot) so that
    ``order @ place.T`` gives the codes, ``index`` (code -> permutation number in
    lexicographic order), ``perms`` (all permutations) and ``reverse`` (permutation number
    of the reversed axis).
    """
    n_patterns = 2 ** (m - 2)
    bits = (np.arange(n_patterns)[:, None] >> np.arange(m - 2)) & 1
    left = np.concatenate([np.zeros((n_patterns, 1), dtype=np.int64), bits], axis=1)
    n_left = left.sum(axis=1)[:, None]
    slots = np.empty((n_patterns, m), dtype=np.int64)
    slots[:, :1] = n_left
    slots[:, 1:] = np.where(
        left == 1, n_left - np.cumsum(left, axis=1), n_left + np.cumsum(1 - left, axis=1)
    )
    place = np.where(slots < m - 1, float(m) ** slots, 0.0)
    perms = np.array(list(itertools.permutations(range(m))), dtype=np.int64)
    powers = m ** np.arange(m - 1, dtype=np.int64)
    index = np.zeros(m ** (m - 1), dtype=np.uint16)  # m! <= 40320 fits
    index[perms[:, :-1] @ powers] = np.arange(perms.shape[0])
    reverse = index[perms[:, :0:-1] @ powers].astype(np.int64)
    return place, index, perms, reverse


def _best_axis(order: np.ndarray, counts: FloatArray, m: int) -> tuple[float, np.ndarray, int]:
    """(best count, best axis as option indices, number of tied axes) over all m!/2 axes.

    Instead of testing every ranking against every axis (m!/2 x U), each distinct ranking
    adds its count to the 2^(m-2) axes it is single-peaked on (U x 2^(m-2) table lookups).
    Ties go to the axis that comes first in lexicographic order of option indices.
    """
    if m == 1:
        return float(counts.sum()), np.zeros(1, dtype=np.int64), 1
    place, index, perms, reverse = _axis_tables(m)
    # Float matmul goes through BLAS; the codes (< m^(m-1) <= 8^7) are exact in float64.
    codes = (order.astype(np.float64) @ place.T).astype(np.intp)
    directed = np.bincount(
        index[codes].ravel(), weights=np.repeat(counts, place.shape[0]), minlength=perms.shape[0]
    )
    # Each ranking fed one direction of each axis it fits: the axis total is both directions.
    scores = directed + directed[reverse]
    best = int(np.argmax(scores))
    top = float(scores[best])
    return top, perms[best], int(np.count_nonzero(scores == top)) // 2


def _preferences(rankings: ArrayLike, keys: list[str], axis_pos: np.ndarray | None) -> Preferences:
    m = len(keys)
    pos, counts = _unique_rankings(rankings, m)
    n = float(counts.sum())
    order = np.argsort(pos, axis=1)
    if n == 0:
        return Preferences(
            n_rankings=0,
            borda={key: NAN for key in keys},
            pairwise=[[0] * m for _ in range(m)],
            condorcet_winner=None,
            majority_cycle=False,
            cycles=[],
            share_single_peaked_axis=NAN,
            share_single_peaked_best=NAN,
            best_axis=None,
            n_best_axes=None,
        )
    borda = counts @ (m - 1 - pos) / n
    above = (pos[:, :, None] < pos[:, None, :]).astype(np.float64)
    pairwise = np.rint(np.einsum("u,uab->ab", counts, above)).astype(np.int64)
    beats = pairwise > pairwise.T
    winners = np.flatnonzero(beats.sum(axis=1) == m - 1)
    _, component = connected_components(beats.astype(np.int8), directed=True, connection="strong")
    sizes = np.bincount(component)
    cycles = [[keys[i] for i in np.flatnonzero(component == c)] for c in np.flatnonzero(sizes > 1)]
    share_axis = (
        NAN if axis_pos is None else float(counts[_single_peaked(order, axis_pos)].sum() / n)
    )
    if m <= MAX_OPTIONS_FOR_AXIS_SEARCH:
        top, axis, n_best = _best_axis(order, counts, m)
        if axis_pos is not None and axis_pos[axis[0]] > axis_pos[axis[-1]]:
            axis = axis[::-1]  # same axis; shown in the direction of the given one
        best_share, best_axis = top / n, [keys[i] for i in axis]
    else:
        best_share, best_axis, n_best = NAN, None, None
    return Preferences(
        n_rankings=int(n),
        borda={key: _f(v) for key, v in zip(keys, borda, strict=True)},
        pairwise=[[int(v) for v in row] for row in pairwise],
        condorcet_winner=keys[int(winners[0])] if winners.size == 1 else None,
        majority_cycle=bool(cycles),
        cycles=cycles,
        share_single_peaked_axis=share_axis,
        share_single_peaked_best=_f(best_share),
        best_axis=best_axis,
        n_best_axes=n_best,
    )


def _opinion_groups(
    ratings: np.ndarray,
    *,
    k_values: Sequence[int],
    random_state: int,
    fit_sample_size: int,
    silhouette_sample_size: int,
) -> tuple[OpinionGroups, np.ndarray]:
    """Opinion groups at one wave and each participant's group (-1: incomplete ratings)."""
    complete = ~np.isnan(ratings).any(axis=1)
    x = ratings[complete]
    n, m = x.shape
    labels_all = np.full(ratings.shape[0], -1, dtype=np.int64)
    evr: list[float] = []
    components: list[list[float]] = []
    pca: PCA | None = None
    if n >= 2 and m >= 1 and float(np.ptp(x, axis=0).max()) > 0:
        with _quiet():
            pca = PCA(n_components=min(2, m, n), random_state=random_state).fit(x)
        evr = _flist(pca.explained_variance_ratio_)
        components = [_flist(row) for row in pca.components_]
    empty = OpinionGroups(
        n=int(n),
        k=None,
        silhouette=NAN,
        silhouette_by_k={},
        sizes=[],
        centroids=[],
        centroids_2d=[],
        explained_variance_ratio=evr,
        components=components,
    )
    if pca is None or n < 3:
        return empty, labels_all

    # k-means on a fixed-seed subsample, then every participant is assigned to the nearest
    # centroid: same groups for the same data, and linear time at 100,000 participants.
    fit_x = x
    if n > fit_sample_size:
        pick = np.random.default_rng(random_state).choice(n, fit_sample_size, replace=False)
        fit_x = x[np.sort(pick)]
    scores: dict[int, float] = {}
    labelings: dict[int, np.ndarray] = {}
    for k in k_values:
        if k < 2 or k >= min(n, fit_x.shape[0]):
            continue
        with _quiet():
            km = KMeans(n_clusters=k, n_init=3, random_state=random_state).fit(fit_x)
            labels = km.predict(x) if fit_x is not x else km.labels_
            if np.unique(labels).size < k:
                continue  # fewer distinct answer patterns than groups
            try:
                score = silhouette_score(
                    x,
                    labels,
                    sample_size=silhouette_sample_size if n > silhouette_sample_size else None,
                    random_state=random_state,
                )
            except ValueError:  # the silhouette sample fell into a single group
                continue
        scores[k] = float(score)
        labelings[k] = labels
    if not scores:
        return empty, labels_all
    best_k = max(scores, key=lambda k: (scores[k], -k))
    labels = labelings[best_k]
    # Largest group first, so that group 0 means the same thing in every report.
    sizes = np.bincount(labels, minlength=best_k)
    rank = np.empty(best_k, dtype=np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(best_k)
    labels = rank[labels]
    sizes = np.bincount(labels, minlength=best_k)
    centroids = np.stack(
        [np.bincount(labels, weights=x[:, j], minlength=best_k) / sizes for j in range(m)], axis=1
    )
    labels_all[complete] = labels
    return (
        OpinionGroups(
            n=int(n),
            k=best_k,
            silhouette=scores[best_k],
            silhouette_by_k={str(k): v for k, v in scores.items()},
            sizes=[int(v) for v in sizes],
            centroids=[_flist(row) for row in centroids],
            centroids_2d=[_flist(row) for row in pca.transform(centroids)],
            explained_variance_ratio=evr,
            components=components,
        ),
        labels_all,
    )


def _option_means(ratings: np.ndarray) -> tuple[FloatArray, np.ndarray]:
    answered = ~np.isnan(ratings)
    n = answered.sum(axis=0)
    with _quiet():
        means = np.where(answered, ratings, 0.0).sum(axis=0) / n
    return np.where(n > 0, means, np.nan), n


def _order(means: FloatArray, keys: list[str]) -> list[str]:
    """Options by mean rating, highest first; ties keep the given order, unrated go last."""
    sortable = np.where(np.isnan(means), -np.inf, means)
    return [keys[i] for i in np.lexsort((np.arange(len(keys)), -sortable))]


def option_set(
    ratings_t1: ArrayLike,
    ratings_t2: ArrayLike,
    rankings_t1: ArrayLike,
    rankings_t2: ArrayLike,
    *,
    option_keys: Sequence[str],
    axis_order: Sequence[str] | None = None,
    k_values: Sequence[int] = (2, 3, 4, 5),
    random_state: int = 0,
    fit_sample_size: int = 20_000,
    silhouette_sample_size: int = 2_000,
) -> OptionSet:
    """The options as a set: orders, social choice, single-peakedness and opinion groups.

    Inputs (rows = participants aligned across waves, columns = options in ``option_keys``
    order): ``ratings_*`` float ratings with NaN for missing; ``rankings_*`` rank positions
    (1 = best).  A ranking row counts only if it is a complete permutation of 1..m (a row
    with any NaN is a missing ranking).  Pass the participants to analyse (e.g. those who
    completed both waves); each statistic uses what is available at its wave.

    * ``mean_rating_*``, ``n_ratings_*``: mean rating per option over those who rated it;
      ``order_*``: options by mean rating, highest first.  ``kendall_tau``/``kendall_p``:
      ``scipy.stats.kendalltau`` (tau-b) between the T1 and T2 means, i.e. between the two
      orders with ties kept as ties; NaN with fewer than 2 options rated at both waves.
    * ``preferences_*`` (:class:`Preferences`), from the rankings:
      ``borda`` = mean Borda points per participant (m - position: best m - 1, worst 0);
      ``pairwise[a][b]`` = number ranking option a above option b; a beats b when
      pairwise[a][b] > pairwise[b][a]; ``condorcet_winner`` beats every other option (None
      if there is none); ``cycles`` = the strongly connected components with more than one
      option of the majority relation, each containing a majority cycle (``majority_cycle``
      says whether there is any).  Single-peakedness (List, Luskin, Fishkin & McLean 2013):
      a ranking is single-peaked on an axis if for every k its k best options are adjacent
      on the axis.  ``share_single_peaked_axis`` is the share of participants single-peaked
      on ``axis_order`` (NaN without one); ``share_single_peaked_best`` the largest share
      over all m!/2 orderings (an ordering and its reverse are the same), ``best_axis`` the
      first ordering attaining it (in lexicographic order of option positions in
      ``option_keys``; shown in the direction of ``axis_order``)
      and ``n_best_axes`` how many orderings tie for it.  The search runs for up to
      ``MAX_OPTIONS_FOR_AXIS_SEARCH`` (8) options, otherwise NaN/None.
    * ``groups_*`` (:class:`OpinionGroups`), over participants with every option rated at
      that wave: PCA (``sklearn.decomposition.PCA``, 2 components) and k-means
      (``sklearn.cluster.KMeans``, n_init=3, ``random_state``) for k in ``k_values``,
      keeping the k with the highest silhouette (``sklearn.metrics.silhouette_score`` on a
      fixed-seed sample of ``silhouette_sample_size`` participants; ties: smaller k).
      Above ``fit_sample_size`` participants k-means is fitted on a fixed-seed subsample and
      everyone is assigned to the nearest centroid.  Groups are numbered by size, largest
      first; ``centroids`` are the groups' mean ratings (option space, ``option_keys``
      order), ``centroids_2d`` their PCA coordinates, ``components`` the PCA loadings and
      ``explained_variance_ratio`` their share of variance.  k = None when no k is usable
      (fewer than 3 complete rows, no spread, or fewer distinct rows than groups).
    * ``migration[g1][g2]``: participants in T1 group g1 and T2 group g2 (both waves
      grouped); ``n_migration`` their number.  The two waves are clustered separately, so
      group numbers are not matched across waves.
    """
    keys = [str(k) for k in option_keys]
    m = len(keys)
    if m == 0 or len(set(keys)) != m:
        raise ValueError("option_keys must be non-empty and unique")
    r1 = np.asarray(ratings_t1, dtype=np.float64)
    r2 = np.asarray(ratings_t2, dtype=np.float64)
    for name, mat in (("ratings_t1", r1), ("ratings_t2", r2)):
        if mat.ndim != 2 or mat.shape[1] != m:
            raise ValueError(f"{name} must be a participant x {m} matrix, got {mat.shape}")
    axis_pos: np.ndarray | None = None
    if axis_order is not None:
        axis = [str(k) for k in axis_order]
        if sorted(axis) != sorted(keys):
            raise ValueError("axis_order must contain each option key exactly once")
        axis_pos = np.empty(m, dtype=np.int64)
        axis_pos[[keys.index(k) for k in axis]] = np.arange(m)

    mean1, n1 = _option_means(r1)
    mean2, n2 = _option_means(r2)
    both = ~(np.isnan(mean1) | np.isnan(mean2))
    tau = p_tau = NAN
    if both.sum() >= 2:
        with _quiet():
            res = sps.kendalltau(mean1[both], mean2[both])
        tau, p_tau = _f(res.statistic), _f(res.pvalue)

    group_kwargs: dict[str, Any] = {
        "k_values": tuple(k_values),
        "random_state": random_state,
        "fit_sample_size": fit_sample_size,
        "silhouette_sample_size": silhouette_sample_size,
    }
    # One thread: OpenMP k-means spin-waits badly when the machine (a Celery worker host)
    # is busy, and one thread also keeps the floating-point reductions reproducible.
    with threadpool_limits(limits=1):
        groups1, labels1 = _opinion_groups(r1, **group_kwargs)
        groups2, labels2 = _opinion_groups(r2, **group_kwargs)
    migration: list[list[int]] = []
    n_migration = 0
    if groups1.k is not None and groups2.k is not None and labels1.size == labels2.size:
        grouped = (labels1 >= 0) & (labels2 >= 0)
        table = np.bincount(
            labels1[grouped] * groups2.k + labels2[grouped], minlength=groups1.k * groups2.k
        ).reshape(groups1.k, groups2.k)
        migration = [[int(v) for v in row] for row in table]
        n_migration = int(grouped.sum())

    return OptionSet(
        option_keys=keys,
        axis_order=None if axis_order is None else [str(k) for k in axis_order],
        n_ratings_t1={k: int(v) for k, v in zip(keys, n1, strict=True)},
        n_ratings_t2={k: int(v) for k, v in zip(keys, n2, strict=True)},
        mean_rating_t1={k: _f(v) for k, v in zip(keys, mean1, strict=True)},
        mean_rating_t2={k: _f(v) for k, v in zip(keys, mean2, strict=True)},
        order_t1=_order(mean1, keys),
        order_t2=_order(mean2, keys),
        kendall_tau=tau,
        kendall_p=p_tau,
        preferences_t1=_preferences(rankings_t1, keys, axis_pos),
        preferences_t2=_preferences(rankings_t2, keys, axis_pos),
        groups_t1=groups1,
        groups_t2=groups2,
        migration=migration,
        n_migration=n_migration,
    )


# --------------------------------------------------------------------------------------------
# small groups
# --------------------------------------------------------------------------------------------


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


def _one_sample(values: FloatArray) -> tuple[float, float, float]:
    """(mean, t, p) of ``scipy.stats.ttest_1samp(values, 0)``; t, p NaN for n < 2 or no spread."""
    if values.size == 0:
        return NAN, NAN, NAN
    mean = float(values.mean())
    if values.size < 2 or np.ptp(values) == 0:
        return mean, NAN, NAN
    with _quiet():
        res = sps.ttest_1samp(values, 0.0)
    return mean, _f(res.statistic), _f(res.pvalue)


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
    only the summary is reported.
    """
    a1 = _as_float(x1, "x1")
    a2 = _as_float(x2, "x2")
    ids = np.asarray(group_ids)
    if not (a1.shape == a2.shape == ids.shape):
        raise ValueError("x1, x2 and group_ids must have the same length")
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    ok = ~(np.isnan(a1) | np.isnan(a2)) & (codes >= 0)
    codes, x, y = codes[ok], a1[ok], a2[ok]
    n_all = len(uniques)
    size = np.bincount(codes, minlength=n_all)
    keep = size >= max(int(min_size), 2)
    present = size > 0
    with _quiet():
        m1 = np.bincount(codes, weights=x, minlength=n_all) / size
        m2 = np.bincount(codes, weights=y, minlength=n_all) / size
        # Two-pass variance (deviations from the group mean) avoids cancellation.
        v1 = np.bincount(codes, weights=(x - m1[codes]) ** 2, minlength=n_all) / (size - 1)
        v2 = np.bincount(codes, weights=(y - m2[codes]) ** 2, minlength=n_all) / (size - 1)
    homog = v2 - v1
    polar = np.sign(m1 - midpoint) * (m2 - m1)
    mean_h, t_h, p_h = _one_sample(homog[keep])
    mean_p, t_p, p_p = _one_sample(polar[keep])
    groups: list[SmallGroup] = []
    if per_group:
        # Thousands of groups at 100,000 participants: build the rows from whole columns.
        defined = size >= 2
        shown = np.flatnonzero(present)
        labels = _labels(uniques)
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
        n_participants=int(codes.size),
        n_groups=int(keep.sum()),
        n_groups_too_small=int((present & ~keep).sum()),
        mean_homogenization=_f(mean_h),
        t_homogenization=t_h,
        p_homogenization=p_h,
        mean_polarization=_f(mean_p),
        t_polarization=t_p,
        p_polarization=p_p,
        groups=groups,
    )
