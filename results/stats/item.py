"""Change on one rating item between T1 and T2 (:func:`item_change`), computed from one joint
frequency table of the two waves.

Part of :mod:`results.stats` (see its docstring for the input and output conventions).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import stats as sps
from statsmodels.stats.contingency_tables import SquareTable, mcnemar

from results.stats.base import (
    MISSING_KINDS,
    NAN,
    ArrayLike,
    FloatArray,
    as_float_array,
    checked_weights,
    descr_ttest,
    float_list,
    hedges_correction,
    quiet,
    to_float,
)
from results.stats.dispersion import agreement_core, bimodality_from_counts, consensus_core

# scipy.stats.wilcoxon(method="auto") on n pairs (zeros included): exact null distribution
# for n <= 50 without ties or zeros; otherwise an exact sign-flip permutation test for
# n <= 13 and the normal approximation above.  _wilcoxon reproduces that choice.
_WILCOXON_EXACT_MAX_N = 50
_WILCOXON_PERMUTATION_MAX_N = 13


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
    # distributions (everyone who answered in that wave, DK, refused and skipped included)
    pct_oppose_t1: float
    pct_neutral_t1: float
    pct_support_t1: float
    pct_dk_t1: float
    pct_refused_t1: float
    pct_skipped_t1: float
    pct_oppose_t2: float
    pct_neutral_t2: float
    pct_support_t2: float
    pct_dk_t2: float
    pct_refused_t2: float
    pct_skipped_t2: float
    # the same over substantive answers only (what papers report)
    pct_oppose_valid_t1: float
    pct_neutral_valid_t1: float
    pct_support_valid_t1: float
    pct_oppose_valid_t2: float
    pct_neutral_valid_t2: float
    pct_support_valid_t2: float
    distribution_t1: list[float]
    distribution_t2: list[float]
    distribution_valid_t1: list[float]
    distribution_valid_t2: list[float]
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


# The states of a wave beyond the k scale points: k + MISSING_CODES[kind] - 1, so don't know k,
# refused k + 1, skipped k + 2, and not asked or no answer at all k + 3 (the last).
_EXTRA_STATES = len(MISSING_KINDS)
COLLAPSED_NAMES = ("oppose", "neutral", "support")


def _wave_states(
    x: FloatArray,
    dk: ArrayLike | None,
    scale_min: int,
    k: int,
    out: FloatArray,
    missing: ArrayLike | None = None,
) -> None:
    """Write each participant's state into ``out``: 0..k-1 scale point, k DK, k+1 refused,
    k+2 skipped, k+3 not asked or no answer."""
    if x.size:
        lo, hi = np.fmin.reduce(x), np.fmax.reduce(x)
        if not np.isnan(lo) and (lo < scale_min or hi > scale_min + k - 1):
            raise ValueError(f"answers must lie in [{scale_min}, {scale_min + k - 1}]")
    nothing = float(k + _EXTRA_STATES - 1)
    np.subtract(x, scale_min, out=out)
    np.fmin(out, nothing, out=out)  # fmin ignores NaN, so NaN becomes "no answer"
    # All states are >= 0, so truncation changes the sum iff some answer is not an integer.
    before = float(out.sum())
    np.trunc(out, out=out)
    if float(out.sum()) != before:
        raise ValueError("answers must be integers on the rating scale")
    if missing is not None:
        codes = np.asarray(missing)
        if codes.shape != x.shape:
            raise ValueError("missing kinds must have the same shape as the answers")
        if codes.size and (codes.min() < 0 or codes.max() > _EXTRA_STATES):
            raise ValueError(f"missing kinds must be codes 0..{_EXTRA_STATES}")
        # A kind wins over a number stored beside it, as a DK flag does.
        np.copyto(out, codes + (k - 1.0), where=codes > 0)
        return
    if dk is None:
        return
    flags = np.asarray(dk, dtype=bool)
    if flags.shape != x.shape:
        raise ValueError("don't-know flags must have the same shape as the answers")
    # The flag wins over any number stored beside it, as documented.
    np.copyto(out, float(k), where=flags)


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
        with quiet():
            return to_float(sps.wilcoxon(d_raw, zero_method="wilcox").pvalue), w_plus, w_minus
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
    with quiet():
        try:
            res = SquareTable(tab, shift_zeros=False).homogeneity(method="stuart_maxwell")
        except (np.linalg.LinAlgError, ValueError):
            return NAN
    return to_float(res.pvalue)


def item_change(
    x1: ArrayLike,
    x2: ArrayLike,
    *,
    dk1: ArrayLike | None = None,
    dk2: ArrayLike | None = None,
    missing1: ArrayLike | None = None,
    missing2: ArrayLike | None = None,
    scale_min: int = 0,
    scale_max: int = 10,
    weights: ArrayLike | None = None,
) -> ItemChange:
    """Everything a researcher reports about one rating item asked at T1 and T2.

    Inputs: ``x1``/``x2`` answers (NaN = missing or DK) on the integer scale
    ``scale_min..scale_max``; ``dk1``/``dk2`` optional DK flags, or ``missing1``/``missing2``
    the kind of each missing answer (codes of ``MISSING_KINDS``, 1 don't know .. 4 not asked;
    0 none; they replace the DK flags when given); ``weights`` optional.

    Populations:

    * ``n_t1``/``n_t2``, ``distribution_*`` and ``pct_*``: everyone who answered the item in
      that wave, **don't know, refused and skipped included** (denominator = substantive
      answers + DK + refused + skipped; not asked counts nowhere).  So ``sum(distribution_t1)
      + pct_dk_t1 + pct_refused_t1 + pct_skipped_t1 == 100``, as do the collapsed shares with
      the same three.  Weighted when weights are given.
    * ``pct_*_valid_*`` and ``distribution_valid_*``: the same over the substantive answers of
      the wave only (each triple sums to 100), what papers report.
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
    a1 = as_float_array(x1, "x1")
    a2 = as_float_array(x2, "x2")
    if a1.shape != a2.shape:
        raise ValueError("x1 and x2 must have the same length")
    w = checked_weights(weights, a1.size)
    k = smax - smin + 1
    s = k + _EXTRA_STATES
    nothing = float(s - 1)
    states1, states2, joint = _scratch_buffers(a1.size)
    _wave_states(a1, dk1, smin, k, states1, missing1)
    _wave_states(a2, dk2, smin, k, states2, missing2)
    if w is not None:
        # A NaN or zero weight takes the participant out of the item altogether.
        dropped = w == 0
        if dropped.any():
            np.copyto(states1, nothing, where=dropped)
            np.copyto(states2, nothing, where=dropped)
    states1 *= s
    states1 += states2
    np.copyto(joint, states1, casting="unsafe")  # exact: integral values below s * s
    counts = np.bincount(joint, minlength=s * s).reshape(s, s).astype(np.float64)
    wcounts = counts if w is None else np.bincount(joint, weights=w, minlength=s * s).reshape(s, s)
    with quiet():
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

    # -- wave distributions: everyone who answered in that wave (DK, refused and skipped
    # included: they were asked), and the same over substantive answers only
    per_wave = []
    asked = k + _EXTRA_STATES - 1  # the states before "not asked or no answer"
    for margin_w, margin_n in (
        (wcounts.sum(axis=1), counts.sum(axis=1)),
        (wcounts.sum(axis=0), counts.sum(axis=0)),
    ):
        answered = float(margin_w[:asked].sum())
        substantive = float(margin_w[:k].sum())
        dist = np.full(k, np.nan)
        missing_pct = np.full(_EXTRA_STATES - 1, np.nan)
        valid = np.full(k, np.nan)
        if answered > 0:
            dist = 100.0 * margin_w[:k] / answered
            missing_pct = 100.0 * margin_w[k:asked] / answered
        if substantive > 0:
            valid = 100.0 * margin_w[:k] / substantive
        per_wave.append(
            (int(margin_n[:asked].sum()), dist, missing_pct, dist @ onehot, valid, valid @ onehot)
        )

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
        a = agreement_core(margin, total_w)
        return (
            mean,
            var,
            a,
            (1.0 - a) / 2.0,
            consensus_core(margin, values, total_w, width),
            bimodality_from_counts(values, margin_n),
        )

    mean1, var1, agr1, pol1, cns1, bc1 = wave_shape(r1, r1_n)
    mean2, var2, agr2, pol2, cns2, bc2 = wave_shape(r2, r2_n)

    mean_d, sd_d, t, df, p_t, ci_low, ci_high = descr_ttest(d_values, d_w)
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
        with quiet():
            p_mcnemar = to_float(mcnemar(table, exact=True).pvalue)

    shares: dict[str, float] = {}
    for wave, (_, _, missing_pct, collapsed, _, collapsed_valid) in enumerate(per_wave, 1):
        for name, value in zip(COLLAPSED_NAMES, collapsed, strict=True):
            shares[f"pct_{name}_t{wave}"] = to_float(value)
            shares[f"pct_{name}_valid_t{wave}"] = to_float(
                collapsed_valid[COLLAPSED_NAMES.index(name)]
            )
        for name, value in zip(("dk", "refused", "skipped"), missing_pct, strict=True):
            shares[f"pct_{name}_t{wave}"] = to_float(value)
    (n1, dist1, _, _, valid1, _), (n2, dist2, _, _, valid2, _) = per_wave
    return ItemChange(
        scale_min=smin,
        scale_max=smax,
        weighted=weighted,
        n_t1=n1,
        n_t2=n2,
        n_pairs=n_pairs,
        mean_t1=to_float(mean1),
        mean_t2=to_float(mean2),
        mean_diff=to_float(mean_d),
        ci_low=ci_low,
        ci_high=ci_high,
        t=t,
        df=df,
        p_t=p_t,
        p_wilcoxon=p_wil,
        rank_biserial=to_float(rank_biserial),
        d_z=to_float(d_z),
        gross_change=to_float(gross),
        share_changed=to_float(changed),
        share_crossed=to_float(crossed),
        **shares,
        distribution_t1=float_list(dist1),
        distribution_t2=float_list(dist2),
        distribution_valid_t1=float_list(valid1),
        distribution_valid_t2=float_list(valid2),
        var_t1=to_float(var1),
        var_t2=to_float(var2),
        sd_t1=to_float(math.sqrt(var1)) if var1 >= 0 else NAN,
        sd_t2=to_float(math.sqrt(var2)) if var2 >= 0 else NAN,
        agreement_t1=to_float(agr1),
        agreement_t2=to_float(agr2),
        polarization_t1=to_float(pol1),
        polarization_t2=to_float(pol2),
        consensus_t1=to_float(cns1),
        consensus_t2=to_float(cns2),
        bimodality_t1=to_float(bc1),
        bimodality_t2=to_float(bc2),
        transition=[[int(v) for v in row] for row in transition],
        p_mcnemar=p_mcnemar,
        p_stuart_maxwell=_stuart_maxwell(transition),
    )
