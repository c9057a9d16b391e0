"""Shared helpers of the statistics package: input validation, weights, warnings, plain floats and
the one-sample t-tests the measures build on.

Part of :mod:`results.stats` (see its docstring for the input and output conventions).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as sps
from statsmodels.stats.weightstats import DescrStatsW

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
NAN = float("nan")

# Why an answer is missing, as an integer code per participant (0: not missing, or simply no
# answer stored). Don't know, refused and skipped were put to the participant: they count in a
# wave's "all answers" shares; not asked was not, and counts nowhere (as no answer).
MISSING_KINDS = ("dont_know", "refused", "skipped", "not_asked")
MISSING_CODES = {kind: code for code, kind in enumerate(MISSING_KINDS, 1)}


_quiet_state = threading.local()


@contextmanager
def quiet() -> Iterator[None]:
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


def to_float(value: Any) -> float:
    """Plain Python float; non-finite values (inf from a library on degenerate input) -> NaN."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return NAN
    return out if math.isfinite(out) else NAN


def float_list(values: ArrayLike) -> list[float]:
    return [to_float(v) for v in np.asarray(values, dtype=float).ravel()]


def as_float_array(x: ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def checked_weights(weights: ArrayLike | None, n: int) -> FloatArray | None:
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


def normalised_weights(w: FloatArray) -> FloatArray:
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


def descr_ttest(
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
    mean = to_float(ds.mean)
    if np.ptp(values) == 0:
        # A single distinct value: zero spread, so the t ratio is 0/0 or x/0.
        return mean, 0.0, NAN, to_float(n - 1), NAN, mean, mean
    with quiet():
        t, p, df = ds.ttest_mean(0.0)
        lo, hi = ds.tconfint_mean(alpha=0.05)
    return (
        mean,
        to_float(ds.std),
        to_float(t),
        to_float(df),
        to_float(p),
        to_float(lo),
        to_float(hi),
    )


def paired_ttest(
    x: FloatArray, y: FloatArray
) -> tuple[float, float, float, float, float, float, float]:
    """Unweighted counterpart of ``descr_ttest`` on raw pairs: ``scipy.stats.ttest_rel``."""
    d = y - x
    n = d.size
    if n == 0:
        return NAN, NAN, NAN, NAN, NAN, NAN, NAN
    mean = float(d.mean())
    if n < 2:
        return mean, NAN, NAN, NAN, NAN, NAN, NAN
    if np.ptp(d) == 0:
        return mean, 0.0, NAN, float(n - 1), NAN, mean, mean
    with quiet():
        res = sps.ttest_rel(y, x)
        ci = res.confidence_interval(0.95)
    sd = float(d.std(ddof=1))
    return (
        mean,
        sd,
        to_float(res.statistic),
        to_float(res.df),
        to_float(res.pvalue),
        to_float(ci.low),
        to_float(ci.high),
    )
