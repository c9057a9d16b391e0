"""Tests of results.stats: library twins to 1e-9, hand-checked examples, degenerate data.

Pure numerics: no database, runs with ``-p no:django``.  Every warning is an error here, so
a test also fails if a function prints a RuntimeWarning on degenerate data.
"""

import gc
import itertools
import json
import math
import warnings
from dataclasses import asdict, is_dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.regression.linear_model import OLS, WLS
from statsmodels.stats.contingency_tables import SquareTable, mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from results import stats
from results.stats.options import _single_peaked

pytestmark = pytest.mark.filterwarnings("error")

TOL = {"rtol": 1e-9, "atol": 1e-12}
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AGRMT_FREQS = (30, 40, 210, 130, 530, 50, 10)


def close(actual: float, expected: float) -> bool:
    """Equal to 1e-9 relative, or both NaN (statistic undefined on both sides)."""
    if math.isnan(expected) or math.isinf(expected):
        return math.isnan(actual)
    return math.isclose(actual, expected, rel_tol=TOL["rtol"], abs_tol=TOL["atol"])


def same(a: object, b: object) -> bool:
    """Dataclass equality that treats NaN as equal to NaN."""
    return json.dumps(asdict(a)) == json.dumps(asdict(b))


def assert_json_friendly(value: object, path: str = "result") -> None:
    """Only plain Python scalars, lists and str-keyed dicts (what json.dumps writes)."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
        json.dumps(value)
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, f"{path}: key {key!r} is not a str"
            assert_json_friendly(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_json_friendly(item, f"{path}[{i}]")
    else:
        assert value is None or type(value) in (float, int, str, bool), (
            f"{path} is {type(value).__name__}"
        )


# --------------------------------------------------------------------------------------------
# data for property tests
# --------------------------------------------------------------------------------------------


@st.composite
def paired_items(draw: st.DrawFn, weighted: bool = False) -> dict:
    """A paired rating item: ties, equal answers, zero changes, missing, DK and tiny n."""
    scale_min = draw(st.sampled_from([0, 1]))
    scale_max = scale_min + draw(st.sampled_from([1, 2, 4, 6, 10]))
    n = draw(st.one_of(st.integers(0, 3), st.integers(4, 40), st.integers(51, 140)))
    answer = st.one_of(st.none(), st.integers(scale_min, scale_max))
    x1 = draw(st.lists(answer, min_size=n, max_size=n))
    shape = draw(st.sampled_from(["free", "same", "shift", "constant"]))
    if shape == "free":
        x2 = draw(st.lists(answer, min_size=n, max_size=n))
    elif shape == "same":  # every difference is zero
        x2 = list(x1)
    elif shape == "shift":  # every difference is the same
        x2 = [None if v is None else min(v + 1, scale_max) for v in x1]
    else:  # everyone gives the same answer at T2
        x2 = [scale_max] * n
    a1 = np.array([np.nan if v is None else v for v in x1], dtype=float)
    a2 = np.array([np.nan if v is None else v for v in x2], dtype=float)
    dk1 = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    dk1 &= np.isnan(a1)
    w = None
    if weighted:
        w = np.array(draw(st.lists(st.floats(0.2, 5.0), min_size=n, max_size=n)), dtype=float)
    return {
        "x1": a1,
        "x2": a2,
        "dk1": dk1,
        "scale_min": scale_min,
        "scale_max": scale_max,
        "weights": w,
    }


def complete(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    ok = ~np.isnan(case["x1"]) & ~np.isnan(case["x2"])
    w = case["weights"]
    if w is not None and ok.any():
        w = w[ok] / w[ok].mean()
    return case["x1"][ok], case["x2"][ok], w


def run_item(case: dict) -> stats.ItemChange:
    return stats.item_change(
        case["x1"],
        case["x2"],
        dk1=case["dk1"],
        dk2=None,
        scale_min=case["scale_min"],
        scale_max=case["scale_max"],
        weights=case["weights"],
    )


# --------------------------------------------------------------------------------------------
# item_change against scipy / statsmodels
# --------------------------------------------------------------------------------------------


@PROPERTY
@given(paired_items())
def test_item_change_matches_scipy_ttest_rel(case: dict) -> None:
    x, y, _ = complete(case)
    result = run_item(case)
    assert result.n_pairs == x.size
    d = y - x
    if x.size == 0:
        assert math.isnan(result.mean_diff) and math.isnan(result.t)
        return
    assert close(result.mean_t1, float(np.mean(x)))
    assert close(result.mean_t2, float(np.mean(y)))
    assert close(result.mean_diff, float(np.mean(d)))
    if x.size < 2 or np.ptp(d) == 0:
        # sd(d) = 0 or undefined: t is 0/0 or x/0, reported as NaN rather than inf.
        assert math.isnan(result.t) and math.isnan(result.p_t)
        return
    expected = sps.ttest_rel(y, x)
    ci = expected.confidence_interval(0.95)
    assert close(result.t, float(expected.statistic))
    assert close(result.p_t, float(expected.pvalue))
    assert close(result.df, float(expected.df))
    assert close(result.ci_low, float(ci.low))
    assert close(result.ci_high, float(ci.high))


def wilcoxon_by_enumeration(d: np.ndarray) -> float:
    """Two-sided p of the sign-flip permutation test, enumerating all 2^n flips."""
    nonzero = d[d != 0]
    ranks = sps.rankdata(np.abs(nonzero))
    observed = ranks[nonzero > 0].sum()
    null = np.array(list(itertools.product([0, 1], repeat=nonzero.size))) @ ranks
    less, greater = np.mean(null <= observed + 1e-9), np.mean(null >= observed - 1e-9)
    return float(min(1.0, 2 * min(less, greater)))


def scipy_uses_slow_permutations(d: np.ndarray) -> bool:
    """scipy's permutation branch: n <= 13 pairs with ties or zeros (seconds per call)."""
    nonzero = np.abs(d[d != 0])
    return d.size <= 13 and (nonzero.size < d.size or np.unique(nonzero).size < nonzero.size)


@PROPERTY
@given(paired_items())
def test_item_change_matches_scipy_wilcoxon_and_rank_biserial(case: dict) -> None:
    x, y, _ = complete(case)
    result = run_item(case)
    d = y - x
    nonzero = d[d != 0]
    if nonzero.size == 0:
        assert math.isnan(result.p_wilcoxon) and math.isnan(result.rank_biserial)
        return
    if scipy_uses_slow_permutations(d):
        # Same exact distribution scipy enumerates; scipy itself is checked on a few cases
        # in test_small_sample_wilcoxon_matches_scipy_permutation_test.
        assert close(result.p_wilcoxon, wilcoxon_by_enumeration(d))
    else:
        assert close(result.p_wilcoxon, float(sps.wilcoxon(d, zero_method="wilcox").pvalue))
    ranks = sps.rankdata(np.abs(nonzero))
    w_plus, w_minus = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    assert close(result.rank_biserial, (w_plus - w_minus) / (w_plus + w_minus))


@pytest.mark.parametrize(
    "d",
    [
        [1, 1, 2, -1, 0, 3],
        [2, -2, 2, 1, 1, -3, 0, 0],
        [1, 1, 1, 1, -1, 2, 2, -3, 4],
        [-4, -3, -3, -2, 1, 0, -1, -2, -5],
    ],
)
def test_small_sample_wilcoxon_matches_scipy_permutation_test(d: list[int]) -> None:
    x = np.full(len(d), 5.0)
    result = stats.item_change(x, x + np.array(d, dtype=float))
    expected = sps.wilcoxon(np.array(d, dtype=float), zero_method="wilcox").pvalue
    assert close(result.p_wilcoxon, float(expected))


@PROPERTY
@given(paired_items())
def test_item_change_effect_size_gross_change_and_dispersion_match_numpy(case: dict) -> None:
    x, y, _ = complete(case)
    result = run_item(case)
    d = y - x
    n = x.size
    if n == 0:
        assert math.isnan(result.gross_change) and math.isnan(result.var_t1)
        return
    assert close(result.gross_change, float(np.mean(np.abs(d))))
    assert close(result.share_changed, float(np.mean(d != 0)))
    mid = (case["scale_min"] + case["scale_max"]) / 2
    crossed = ((x < mid) & (y > mid)) | ((x > mid) & (y < mid))
    assert close(result.share_crossed, float(np.mean(crossed)))
    if n < 2:
        assert math.isnan(result.var_t1) and math.isnan(result.d_z)
        return
    assert close(result.var_t1, float(np.var(x, ddof=1)))
    assert close(result.var_t2, float(np.var(y, ddof=1)))
    assert close(result.sd_t2, float(np.std(y, ddof=1)))
    sd = float(np.std(d, ddof=1))
    expected_dz = np.mean(d) / sd * (1 - 3 / (4 * (n - 1) - 1)) if sd > 0 else math.nan
    assert close(result.d_z, float(expected_dz))
    assert close(result.bimodality_t1, stats.bimodality_coefficient(x))
    assert close(result.bimodality_t2, stats.bimodality_coefficient(y))


@PROPERTY
@given(paired_items(weighted=True))
def test_weighted_item_change_matches_statsmodels_descrstatsw(case: dict) -> None:
    x, y, w = complete(case)
    result = run_item(case)
    assert result.weighted
    if x.size == 0:
        assert math.isnan(result.mean_t1)
        return
    d = y - x
    assert close(result.mean_t1, float(np.average(x, weights=w)))
    assert close(result.mean_diff, float(np.average(d, weights=w)))
    assert close(result.gross_change, float(np.average(np.abs(d), weights=w)))
    if x.size < 2:
        assert math.isnan(result.var_t1) and math.isnan(result.p_t)
        return
    assert close(result.var_t2, float(DescrStatsW(y, weights=w, ddof=1).var))
    if np.ptp(d) == 0:
        assert math.isnan(result.t)
        return
    described = DescrStatsW(d, weights=w, ddof=1)
    t, p, df = described.ttest_mean(0)
    low, high = described.tconfint_mean(0.05)
    assert close(result.t, float(t))
    assert close(result.p_t, float(p))
    assert close(result.df, float(df))
    assert close(result.ci_low, float(low))
    assert close(result.ci_high, float(high))
    # Wilcoxon stays unweighted: the same p as without weights.
    unweighted = run_item({**case, "weights": None})
    assert close(result.p_wilcoxon, unweighted.p_wilcoxon)


@PROPERTY
@given(paired_items())
def test_item_change_transition_tests_match_statsmodels(case: dict) -> None:
    x, y, _ = complete(case)
    result = run_item(case)
    mid = (case["scale_min"] + case["scale_max"]) / 2
    side_x = np.where(x < mid, 0, np.where(x == mid, 1, 2))
    side_y = np.where(y < mid, 0, np.where(y == mid, 1, 2))
    table = np.zeros((3, 3), dtype=int)
    np.add.at(table, (side_x, side_y), 1)
    assert result.transition == table.tolist()
    support_to_not = int(np.sum((side_x == 2) & (side_y != 2)))
    not_to_support = int(np.sum((side_x != 2) & (side_y == 2)))
    if support_to_not + not_to_support == 0:
        assert math.isnan(result.p_mcnemar)
    else:
        two_by_two = [[np.sum((side_x == 2) & (side_y == 2)), support_to_not]]
        two_by_two.append([not_to_support, np.sum((side_x != 2) & (side_y != 2))])
        assert close(result.p_mcnemar, float(mcnemar(np.array(two_by_two), exact=True).pvalue))
    used = (table.sum(0) + table.sum(1)) > 0
    reduced = table[np.ix_(used, used)].astype(float)
    expected = math.nan
    if reduced.shape[0] >= 2 and np.trace(reduced) < reduced.sum():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels warns on a singular covariance
            try:
                expected = float(SquareTable(reduced, shift_zeros=False).homogeneity().pvalue)
            except np.linalg.LinAlgError:
                expected = math.nan
    assert close(result.p_stuart_maxwell, expected)


@PROPERTY
@given(paired_items(weighted=True))
def test_item_change_distributions_and_shares_add_up(case: dict) -> None:
    result = run_item(case)
    assert_json_friendly(result)
    for wave in ("t1", "t2"):
        pct = [getattr(result, f"pct_{c}_{wave}") for c in ("oppose", "neutral", "support", "dk")]
        if getattr(result, f"n_{wave}") == 0:
            assert all(math.isnan(v) for v in pct)
            continue
        assert math.isclose(sum(pct), 100.0, abs_tol=1e-9)
        distribution = getattr(result, f"distribution_{wave}")
        assert len(distribution) == case["scale_max"] - case["scale_min"] + 1
        assert math.isclose(sum(distribution) + pct[3], 100.0, abs_tol=1e-9)


def test_item_change_distribution_counts_everyone_who_answered_including_dk() -> None:
    # Scale 0..4 (midpoint 2).  T1: answers 0, 1, 2, 4, DK, missing -> 5 answered (DK
    # included): oppose {0, 1} = 40%, neutral {2} = 20%, support {4} = 20%, DK = 20%.
    # T2: 4, 4, 2, 4, 3, missing -> 5 answered, support {4, 4, 4, 3} = 80%, neutral 20%.
    # Complete pairs: (0,4) (1,4) (2,2) (4,4): d = 4, 3, 0, 0; two cross oppose -> support.
    nan = np.nan
    x1 = np.array([0, 1, 2, 4, nan, nan])
    x2 = np.array([4, 4, 2, 4, 3, nan])
    dk1 = np.array([False, False, False, False, True, False])
    result = stats.item_change(x1, x2, dk1=dk1, dk2=None, scale_min=0, scale_max=4)
    assert (result.n_t1, result.n_t2, result.n_pairs) == (5, 5, 4)
    assert (result.pct_oppose_t1, result.pct_neutral_t1) == pytest.approx((40.0, 20.0))
    assert (result.pct_support_t1, result.pct_dk_t1) == pytest.approx((20.0, 20.0))
    assert result.distribution_t1 == pytest.approx([20.0, 20.0, 20.0, 0.0, 20.0])
    assert (result.pct_support_t2, result.pct_neutral_t2) == pytest.approx((80.0, 20.0))
    assert result.pct_dk_t2 == 0.0
    assert result.mean_diff == pytest.approx(7 / 4)
    assert result.gross_change == pytest.approx(7 / 4)
    assert result.share_changed == pytest.approx(0.5)
    assert result.share_crossed == pytest.approx(0.5)
    assert result.transition == [[0, 0, 2], [0, 1, 0], [0, 0, 1]]


def test_item_change_counts_a_dk_flag_on_a_real_answer_as_dk() -> None:
    x1 = np.array([3.0, 5.0, 7.0, 0.0])
    x2 = np.array([3.0, 6.0, 8.0, 0.0])
    dk1 = np.array([False, False, False, True])  # flagged although a 0 is recorded
    result = stats.item_change(x1, x2, dk1=dk1, dk2=None)
    assert result.n_pairs == 3
    assert result.pct_dk_t1 == pytest.approx(25.0)
    assert result.distribution_t1[0] == 0.0


def test_item_change_leaves_out_participants_with_zero_or_missing_weight() -> None:
    x1 = np.array([1.0, 2.0, 3.0, 9.0, 9.0])
    x2 = np.array([2.0, 2.0, 5.0, 0.0, 0.0])
    weights = np.array([1.0, 2.0, 1.0, 0.0, np.nan])
    result = stats.item_change(x1, x2, weights=weights)
    expected = stats.item_change(x1[:3], x2[:3], weights=weights[:3])
    assert same(result, expected)
    assert result.n_pairs == 3 and result.n_t1 == 3
    assert result.mean_t1 == pytest.approx((1 + 4 + 3) / 4)


@pytest.mark.parametrize(
    "bad",
    [np.array([0.0, 11.0]), np.array([-1.0, 3.0]), np.array([2.5, 3.0]), np.array([np.inf, 1])],
)
def test_item_change_rejects_answers_off_the_integer_scale(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="answers"):
        stats.item_change(bad, np.array([1.0, 2.0]), scale_min=0, scale_max=10)


def test_item_change_rejects_negative_weights() -> None:
    with pytest.raises(ValueError, match="weights"):
        stats.item_change(np.ones(2), np.ones(2), weights=np.array([1.0, -1.0]))


DEGENERATE = {
    "n = 0": (np.array([]), np.array([])),
    "n = 1": (np.array([3.0]), np.array([5.0])),
    "n = 2": (np.array([3.0, 4.0]), np.array([5.0, 4.0])),
    "all missing": (np.full(5, np.nan), np.full(5, np.nan)),
    "nobody answered T2": (np.array([1.0, 2.0, 3.0]), np.full(3, np.nan)),
    "all equal answers": (np.full(60, 7.0), np.full(60, 7.0)),
    "all zero differences": (np.arange(60.0) % 11, np.arange(60.0) % 11),
    "all differences equal": (np.arange(20.0) % 10, np.arange(20.0) % 10 + 1),
}


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", list(DEGENERATE))
def test_item_change_returns_nan_for_undefined_statistics_without_warnings(
    name: str, weighted: bool
) -> None:
    x1, x2 = DEGENERATE[name]
    weights = np.linspace(0.5, 2.0, x1.size) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = stats.item_change(x1, x2, dk1=np.zeros(x1.size, bool), weights=weights)
    assert_json_friendly(result)
    if name in ("n = 0", "all missing", "nobody answered T2", "n = 1"):
        assert math.isnan(result.t) and math.isnan(result.var_t1)
    if name in ("all equal answers", "all zero differences"):
        assert math.isnan(result.t) and math.isnan(result.p_wilcoxon)
        assert result.mean_diff == 0.0 and result.share_changed == 0.0
        assert math.isnan(result.p_mcnemar) and math.isnan(result.p_stuart_maxwell)
    if name == "all equal answers":
        assert result.var_t1 == 0.0 and math.isnan(result.bimodality_t1)
        assert result.agreement_t1 == 1.0 and result.consensus_t1 == 1.0
    if name == "all differences equal":
        assert result.mean_diff == 1.0 and math.isnan(result.t) and math.isnan(result.d_z)
        assert result.ci_low == result.ci_high == 1.0


# --------------------------------------------------------------------------------------------
# agreement, consensus, bimodality, Hedges
# --------------------------------------------------------------------------------------------


def test_agreement_and_polarization_match_the_agrmt_golden_values() -> None:
    assert stats.agreement(AGRMT_FREQS) == pytest.approx(0.6113333, abs=1e-6)
    assert stats.polarization(AGRMT_FREQS) == pytest.approx(0.1943333, abs=1e-6)


def test_consensus_matches_the_agrmt_golden_value() -> None:
    assert stats.consensus(AGRMT_FREQS, np.arange(1, 8)) == pytest.approx(0.7256876, abs=1e-6)
    # Only the spacing of the values matters: a 0..6 or -3..3 coding gives the same.
    assert stats.consensus(AGRMT_FREQS, np.arange(-3, 4)) == pytest.approx(0.7256876, abs=1e-6)


def test_agreement_hand_checked_examples() -> None:
    # (10, 0, 10): one layer, pattern 101, K = 3, S = 2.  The only triple is 101: TDU = 1,
    # TU = 0, so U = ((K-2)*0 - (K-1)*1) / ((K-2)*1) = -2 and A = U (1 - (S-1)/(K-1)) = -1.
    assert stats.agreement([10, 0, 10]) == pytest.approx(-1.0)
    # (2, 1, 0, 1), K = 4.  Layer 1 (height 1, pattern 1101, S = 3, weight 3/4):
    # triples 123 = 110 (TU), 124 = 111 (-), 134 = 101 (TDU), 234 = 101 (TDU): TU = 1, TDU = 2,
    # U = (2*1 - 3*2) / (2*3) = -2/3, A1 = -2/3 * (1 - 2/3) = -2/9.
    # Layer 2 (height 1, pattern 1000, S = 1, weight 1/4): A2 = 1.
    # A = 3/4 * (-2/9) + 1/4 * 1 = -1/6 + 1/4 = 1/12.
    assert stats.agreement([2, 1, 0, 1]) == pytest.approx(1 / 12)
    # (1, 2, 1): layer 111 (weight 3/4, S = K, A = 0) + layer 010 (weight 1/4, A = 1) = 1/4.
    assert stats.agreement([1, 2, 1]) == pytest.approx(0.25)
    # Uniform: one full layer, A = 0; everybody in one category: A = 1.
    assert stats.agreement([5, 5, 5, 5, 5]) == 0.0
    assert stats.agreement([0, 0, 7, 0, 0]) == 1.0


def test_agreement_is_unchanged_by_scaling_the_frequencies() -> None:
    # Weighted (non-integer) frequencies: same layers, no rounding crumbs.
    assert stats.agreement(np.array(AGRMT_FREQS) * 0.1) == pytest.approx(0.6113333, abs=1e-6)


def test_agreement_is_nan_where_undefined_and_rejects_negative_frequencies() -> None:
    assert math.isnan(stats.agreement([1, 2]))
    assert math.isnan(stats.agreement([0, 0, 0]))
    assert math.isnan(stats.polarization([]))
    with pytest.raises(ValueError):
        stats.agreement([1, -1, 3])


def test_consensus_hand_checked_examples() -> None:
    # (1, 0, 1) on 1..3: mu = 2, d_X = 2; each half contributes 0.5 * log2(1 - 1/2) = -0.5,
    # Cns = 1 - 1 = 0 (the two extremes).
    assert stats.consensus([1, 0, 1], [1, 2, 3]) == pytest.approx(0.0, abs=1e-15)
    # (1, 1, 0) on 1..3: mu = 1.5; |X - mu| / 2 = 0.25 for both: Cns = 1 + log2(0.75).
    assert stats.consensus([1, 1, 0], [1, 2, 3]) == pytest.approx(1 + math.log2(0.75))
    # Everyone in one category: defined as 1 (the formula is 0 * log 0 at the other end).
    assert stats.consensus([0, 0, 9], [1, 2, 3]) == 1.0
    assert math.isnan(stats.consensus([0, 0, 0], [1, 2, 3]))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-1e3, 1e3), st.integers(0, 3).map(float), st.just(math.nan)),
        max_size=60,
    )
)
def test_bimodality_coefficient_matches_scipy_skew_and_kurtosis(values: list[float]) -> None:
    x = np.array(values, dtype=float)
    x = x[~np.isnan(x)]
    result = stats.bimodality_coefficient(np.array(values, dtype=float))
    n = x.size
    if n < 4 or np.ptp(x) == 0:
        assert math.isnan(result)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's own precision warning on near-constant data
        g1 = sps.skew(x, bias=False)
        g2 = sps.kurtosis(x, bias=False)
    expected = (g1**2 + 1) / (g2 + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    assert close(result, float(expected))


def test_bimodality_coefficient_hand_checked_example() -> None:
    # Two equal clumps (0, 0, 1, 1): mean 1/2, m2 = 1/4, m3 = 0, m4 = 1/16, n = 4.
    # g1 = 0; g2 = ((n^2-1) m4/m2^2 - 3(n-1)^2) / ((n-2)(n-3)) = (15 - 27) / 2 = -6.
    # BC = (0 + 1) / (-6 + 3*9/2) = 1 / 7.5 = 2/15.
    assert stats.bimodality_coefficient([0, 0, 1, 1]) == pytest.approx(2 / 15)


def test_hedges_correction_hand_checked() -> None:
    # n = 10: J = 1 - 3 / (4 * 9 - 1) = 1 - 3/35 = 32/35.
    assert stats.hedges_correction(10) == pytest.approx(32 / 35)
    assert stats.hedges_correction(2) == 0.0
    assert math.isnan(stats.hedges_correction(1))


# --------------------------------------------------------------------------------------------
# difference in differences, gaps, multiple comparisons
# --------------------------------------------------------------------------------------------

changes = st.lists(
    st.one_of(st.integers(0, 10).map(float), st.just(math.nan)), min_size=0, max_size=40
)


@PROPERTY
@given(changes, changes, changes, changes)
def test_diff_in_diff_matches_scipy_welch_on_change_scores(
    a1: list[float], a2: list[float], b1: list[float], b2: list[float]
) -> None:
    nt, nc = min(len(a1), len(a2)), min(len(b1), len(b2))
    x1t, x2t = np.array(a1[:nt]), np.array(a2[:nt])
    x1c, x2c = np.array(b1[:nc]), np.array(b2[:nc])
    result = stats.diff_in_diff(x1t, x2t, x1c, x2c)
    assert_json_friendly(result)
    dt = (x2t - x1t)[~np.isnan(x2t - x1t)]
    dc = (x2c - x1c)[~np.isnan(x2c - x1c)]
    assert (result.n_treatment, result.n_control) == (dt.size, dc.size)
    if dt.size and dc.size:
        assert close(result.did, float(dt.mean() - dc.mean()))
    if dt.size < 2 or dc.size < 2 or (np.ptp(dt) == 0 and np.ptp(dc) == 0):
        assert math.isnan(result.p_welch)
        return
    expected = sps.ttest_ind(dt, dc, equal_var=False)
    ci = expected.confidence_interval(0.95)
    assert close(result.t_welch, float(expected.statistic))
    assert close(result.df_welch, float(expected.df))
    assert close(result.p_welch, float(expected.pvalue))
    assert close(result.ci_low, float(ci.low))
    assert close(result.ci_high, float(ci.high))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_weighted_diff_in_diff_matches_statsmodels_comparemeans(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x1t, x2t = rng.integers(0, 11, (2, 30)).astype(float)
    x1c, x2c = rng.integers(0, 11, (2, 25)).astype(float)
    wt, wc = rng.uniform(0.2, 3, 30), rng.uniform(0.2, 3, 25)
    result = stats.diff_in_diff(x1t, x2t, x1c, x2c, weights_treat=wt, weights_ctrl=wc)
    compare = CompareMeans(
        DescrStatsW(x2t - x1t, weights=wt * 30 / wt.sum()),
        DescrStatsW(x2c - x1c, weights=wc * 25 / wc.sum()),
    )
    _, p, _ = compare.ttest_ind(usevar="unequal")
    low, high = compare.tconfint_diff(usevar="unequal")
    assert close(result.p_welch, float(p))
    assert close(result.ci_low, float(low)) and close(result.ci_high, float(high))
    assert close(result.did, float(compare.d1.mean - compare.d2.mean))


@pytest.mark.parametrize("weighted", [False, True])
def test_diff_in_diff_cluster_p_matches_statsmodels_ols_with_clustered_errors(
    weighted: bool,
) -> None:
    rng = np.random.default_rng(3)
    nt, nc = 60, 40
    x1t, x2t = rng.integers(0, 11, (2, nt)).astype(float)
    x1c, x2c = rng.integers(0, 11, (2, nc)).astype(float)
    groups = rng.integers(0, 8, nt).astype(float)
    groups[:5] = np.nan  # not in a group: a cluster of one
    wt = rng.uniform(0.5, 2, nt) if weighted else None
    wc = rng.uniform(0.5, 2, nc) if weighted else None
    result = stats.diff_in_diff(
        x1t, x2t, x1c, x2c, weights_treat=wt, weights_ctrl=wc, clusters_treat=groups
    )
    y = np.r_[x2t - x1t, x2c - x1c]
    design = np.column_stack([np.ones(nt + nc), np.r_[np.ones(nt), np.zeros(nc)]])
    ids = np.r_[np.nan_to_num(groups, nan=-1), -np.arange(2, nc + 2)]
    ids[:5] = 100 + np.arange(5)
    if weighted:
        w = np.r_[wt * nt / wt.sum(), wc * nc / wc.sum()]
        model = WLS(y, design, weights=w)
    else:
        model = OLS(y, design)
    fit = model.fit(cov_type="cluster", cov_kwds={"groups": ids}, use_t=True)
    assert result.n_clusters == np.unique(ids).size
    assert close(result.did, float(fit.params[1]))
    assert close(result.se_cluster, float(fit.bse[1]))
    assert close(result.p_cluster, float(fit.pvalues[1]))
    assert close(result.ci_low_cluster, float(fit.conf_int()[1, 0]))


def test_diff_in_diff_without_clusters_or_data_reports_nan() -> None:
    empty = np.array([])
    result = stats.diff_in_diff(empty, empty, empty, empty, clusters_treat=empty)
    assert_json_friendly(result)
    assert (result.n_treatment, result.n_control) == (0, 0)
    assert math.isnan(result.did) and math.isnan(result.p_welch) and math.isnan(result.p_cluster)
    one = np.array([1.0])
    result = stats.diff_in_diff(one, one + 1, one, one)
    assert result.did == 1.0 and math.isnan(result.p_welch) and result.n_clusters is None


def test_gap_change_hand_checked_example() -> None:
    # A: T1 (8, 10) -> T2 (6, 8), change -2 each.  B: T1 (2, 4) -> T2 (3, 5), change +1 each.
    # gap_t1 = 9 - 3 = 6, gap_t2 = 7 - 4 = 3, gap_change = |3| - |6| = -3 (converged).
    x1 = np.array([8.0, 10.0, 2.0, 4.0, np.nan])
    x2 = np.array([6.0, 8.0, 3.0, 5.0, 1.0])
    in_a = np.array([True, True, False, False, True])
    in_b = ~in_a
    result = stats.gap_change(x1, x2, in_a, in_b)
    assert (result.n_a, result.n_b) == (2, 2)
    assert (result.gap_t1, result.gap_t2, result.gap_change) == (6.0, 3.0, -3.0)
    assert result.diff_change == -3.0
    assert math.isnan(result.p_welch)  # no spread in either group's change scores


@PROPERTY
@given(changes, changes, st.lists(st.booleans(), min_size=40, max_size=40))
def test_gap_change_welch_matches_scipy(a1: list[float], a2: list[float], side: list) -> None:
    n = min(len(a1), len(a2))
    x1, x2 = np.array(a1[:n]), np.array(a2[:n])
    in_a = np.array(side[:n], dtype=bool)
    result = stats.gap_change(x1, x2, in_a, ~in_a)
    d = x2 - x1
    da, db = d[in_a & ~np.isnan(d)], d[~in_a & ~np.isnan(d)]
    if da.size and db.size:
        gap1 = x1[in_a & ~np.isnan(d)].mean() - x1[~in_a & ~np.isnan(d)].mean()
        gap2 = x2[in_a & ~np.isnan(d)].mean() - x2[~in_a & ~np.isnan(d)].mean()
        assert close(result.gap_change, float(abs(gap2) - abs(gap1)))
    if da.size < 2 or db.size < 2 or (np.ptp(da) == 0 and np.ptp(db) == 0):
        assert math.isnan(result.p_welch)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's own precision warning on near-constant data
            expected = float(sps.ttest_ind(da, db, equal_var=False).pvalue)
        assert close(result.p_welch, expected)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.floats(0, 1), st.sampled_from([0.01, math.nan])), max_size=25))
def test_adjust_pvalues_matches_multipletests_and_passes_nan_through(p: list[float]) -> None:
    holm, bh = stats.adjust_pvalues(p)
    assert len(holm) == len(bh) == len(p)
    arr = np.array(p, dtype=float)
    used = ~np.isnan(arr)
    assert all(math.isnan(h) for h, u in zip(holm, used, strict=True) if not u)
    if used.any():
        # multipletests(method="holm") runs gc.collect() on every call; frozen objects are
        # skipped, which keeps this test fast.
        gc.freeze()
        try:
            expected_holm = multipletests(arr[used], method="holm")[1]
        finally:
            gc.unfreeze()
        expected_bh = multipletests(arr[used], method="fdr_bh")[1]
        np.testing.assert_allclose(np.array(holm)[used], expected_holm, **TOL)
        np.testing.assert_allclose(np.array(bh)[used], expected_bh, **TOL)
    assert all(type(v) is float for v in holm + bh)


# --------------------------------------------------------------------------------------------
# knowledge
# --------------------------------------------------------------------------------------------


def test_knowledge_hand_checked_example_and_scipy_paired_test() -> None:
    nan = np.nan
    # 4 participants x 3 items; item 3 not asked of participant 4 at T1.
    t1 = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, nan]])
    t2 = np.array([[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 1, 1]])
    result = stats.knowledge(t1, t2)
    # Index T1 = (1, 2, 0, 1), T2 = (2, 3, 1, 3); change = (1, 1, 1, 2).
    assert (result.mean_t1, result.mean_t2, result.mean_diff) == (1.0, 2.25, 1.25)
    expected = sps.ttest_rel([2, 3, 1, 3], [1, 2, 0, 1])
    assert close(result.p_t, float(expected.pvalue))
    # Item 3 at T1: asked of 3, nobody right -> 0%; item 1 at T2: 4 of 4 -> 100%.
    assert result.pct_correct_t1 == pytest.approx([75.0, 25.0, 0.0])
    assert result.pct_correct_t2 == pytest.approx([100.0, 75.0, 50.0])
    assert result.n_asked_t1 == [4, 4, 3]
    assert_json_friendly(result)


def test_weighted_knowledge_matches_descrstatsw() -> None:
    rng = np.random.default_rng(5)
    t1 = (rng.random((50, 6)) < 0.5).astype(float)
    t2 = (rng.random((50, 6)) < 0.7).astype(float)
    w = rng.uniform(0.3, 3, 50)
    result = stats.knowledge(t1, t2, weights=w)
    d = t2.sum(1) - t1.sum(1)
    t, p, _ = DescrStatsW(d, weights=w * 50 / w.sum(), ddof=1).ttest_mean(0)
    assert close(result.t, float(t)) and close(result.p_t, float(p))
    assert close(result.pct_correct_t2[0], float(100 * np.average(t2[:, 0], weights=w)))


def test_knowledge_did_is_diff_in_diff_of_the_index() -> None:
    rng = np.random.default_rng(6)
    t1, t2, c1, c2 = (rng.random((4, 30, 5)) < 0.5).astype(float)
    result = stats.knowledge_did(t1, t2, c1, c2)
    expected = stats.diff_in_diff(t1.sum(1), t2.sum(1), c1.sum(1), c2.sum(1))
    assert same(result, expected)


def test_knowledge_with_nobody_asked_reports_nan() -> None:
    empty = np.full((3, 2), np.nan)
    result = stats.knowledge(empty, empty)
    assert result.n_pairs == 0 and math.isnan(result.mean_diff)
    assert all(math.isnan(v) for v in result.pct_correct_t1)
    assert_json_friendly(result)


# --------------------------------------------------------------------------------------------
# options as a set
# --------------------------------------------------------------------------------------------

KEYS = ["a", "b", "c"]


def rankings_from(orders: list[str], keys: list[str]) -> np.ndarray:
    """Rank-position matrix (1 = best) from preference strings like 'abc'."""
    return np.array([[order.index(k) + 1 for k in keys] for order in orders], dtype=float)


def test_borda_and_condorcet_hand_checked_example() -> None:
    # 3 x "abc", 2 x "bca": Borda points (2 for first, 1, 0): a = 3*2 + 0 = 6, b = 3*1 + 2*2 = 7,
    # c = 0 + 2*1 = 2; per participant: 1.2, 1.4, 0.4.  Majorities: a > b 3:2, a > c 3:2,
    # b > c 5:0 -> a is the Condorcet winner although b has the higher Borda score.
    ranks = rankings_from(["abc"] * 3 + ["bca"] * 2, KEYS)
    ratings = np.array([[9, 5, 1]] * 3 + [[2, 8, 4]] * 2, dtype=float)
    result = stats.option_set(ratings, ratings, ranks, ranks, option_keys=KEYS, axis_order=KEYS)
    prefs = result.preferences_t1
    assert prefs.n_rankings == 5
    assert prefs.borda == pytest.approx({"a": 1.2, "b": 1.4, "c": 0.4})
    assert prefs.pairwise == [[0, 3, 3], [2, 0, 5], [2, 0, 0]]
    assert prefs.condorcet_winner == "a"
    assert not prefs.majority_cycle and prefs.cycles == []
    assert_json_friendly(result)


def test_condorcet_paradox_is_reported_as_a_majority_cycle() -> None:
    # abc, bca, cab: a > b 2:1, b > c 2:1, c > a 2:1 -> no winner, one cycle {a, b, c}.
    ranks = rankings_from(["abc", "bca", "cab"], KEYS)
    ratings = np.full((3, 3), 5.0)
    result = stats.option_set(ratings, ratings, ranks, ranks, option_keys=KEYS)
    assert result.preferences_t2.condorcet_winner is None
    assert result.preferences_t2.majority_cycle
    assert result.preferences_t2.cycles == [["a", "b", "c"]]


def test_single_peakedness_hand_checked_example() -> None:
    # Axis l - c - r.  "lcr", "clr" and "rcl" are single-peaked (each top-k set is an
    # interval); "lrc" is not ({l, r} is not adjacent).  Share on the axis: 3/4.
    # With three options a ranking is single-peaked unless its worst option is in the middle.
    # Worst options: r, r, l, c.  Middle l or c loses one ranking (3/4), middle r loses two:
    # best share 3/4, reached by two orderings (c-l-r... i.e. middle l, and l-c-r).
    keys = ["l", "c", "r"]
    ranks = rankings_from(["lcr", "clr", "rcl", "lrc"], keys)
    ratings = np.full((4, 3), np.nan)
    result = stats.option_set(ratings, ratings, ranks, ranks, option_keys=keys, axis_order=keys)
    prefs = result.preferences_t1
    assert prefs.share_single_peaked_axis == 0.75
    assert prefs.share_single_peaked_best == 0.75
    assert prefs.n_best_axes == 2
    assert prefs.best_axis is not None and prefs.best_axis[1] in ("l", "c")


def brute_force_single_peaked(orders: list[tuple[int, ...]], m: int) -> tuple[float, int]:
    """Best share and number of best axes by testing every ranking on every ordering."""

    def peaked(order: tuple[int, ...], axis: tuple[int, ...]) -> bool:
        where = [axis.index(o) for o in order]
        return all(max(where[: k + 1]) - min(where[: k + 1]) == k for k in range(m))

    axes = [p for p in itertools.permutations(range(m)) if p <= p[::-1]]
    scores = [sum(peaked(o, axis) for o in orders) for axis in axes]
    best = max(scores)
    return best / len(orders), scores.count(best)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda m: st.tuples(
            st.just(m), st.lists(st.permutations(range(m)), min_size=1, max_size=25)
        )
    )
)
def test_best_axis_search_matches_brute_force(data: tuple[int, list[list[int]]]) -> None:
    m, orders = data
    keys = [f"o{i}" for i in range(m)]
    ranks = np.array([[order.index(j) + 1 for j in range(m)] for order in orders], float)
    ratings = np.full(ranks.shape, np.nan)
    result = stats.option_set(ratings, ratings, ranks, ranks, option_keys=keys, axis_order=keys)
    prefs = result.preferences_t1
    share, n_best = brute_force_single_peaked([tuple(o) for o in orders], m)
    assert prefs.share_single_peaked_best == pytest.approx(share)
    assert prefs.n_best_axes == n_best
    assert prefs.share_single_peaked_axis <= prefs.share_single_peaked_best + 1e-12
    # The reported best axis really reaches the best share.
    axis_pos = np.array([prefs.best_axis.index(k) for k in keys])
    order_idx = np.argsort(ranks, axis=1)
    assert np.mean(_single_peaked(order_idx, axis_pos)) == pytest.approx(share)


def test_rankings_that_are_incomplete_or_not_permutations_are_left_out() -> None:
    ranks = np.array([[1, 2, 3], [1, np.nan, 2], [1, 1, 2], [np.nan] * 3, [3, 2, 1]], float)
    ratings = np.full((5, 3), np.nan)
    result = stats.option_set(ratings, ratings, ranks, ranks, option_keys=KEYS)
    assert result.preferences_t1.n_rankings == 2


def test_option_order_and_kendall_tau_follow_the_mean_ratings() -> None:
    r1 = np.array([[9, 5, 1, 3], [8, 6, 2, 4], [7, np.nan, 3, 2]], dtype=float)
    r2 = np.array([[2, 5, 9, 3], [1, 6, 8, 4], [3, 7, 9, 2]], dtype=float)
    keys = ["w", "x", "y", "z"]
    empty = np.full((3, 4), np.nan)
    result = stats.option_set(r1, r2, empty, empty, option_keys=keys, axis_order=keys)
    assert result.mean_rating_t1 == pytest.approx({"w": 8.0, "x": 5.5, "y": 2.0, "z": 3.0})
    assert result.n_ratings_t1 == {"w": 3, "x": 2, "y": 3, "z": 3}
    assert result.order_t1 == ["w", "x", "z", "y"]
    assert result.order_t2 == ["y", "x", "z", "w"]
    expected = sps.kendalltau([8.0, 5.5, 2.0, 3.0], [2.0, 6.0, 26 / 3, 3.0])
    assert close(result.kendall_tau, float(expected.statistic))
    assert close(result.kendall_p, float(expected.pvalue))
    assert result.preferences_t1.n_rankings == 0 and result.preferences_t1.condorcet_winner is None


def two_camps(n: int, seed: int, flip: float) -> tuple[np.ndarray, np.ndarray]:
    """Ratings of 4 options by two camps; a share ``flip`` of camp 0 joins camp 1 at T2."""
    rng = np.random.default_rng(seed)
    camp = (np.arange(n) % 3 == 0).astype(int)  # one third in camp 1
    centre = np.array([[9.0, 8.0, 2.0, 1.0], [1.0, 2.0, 8.0, 9.0]])
    r1 = np.clip(np.round(centre[camp] + rng.normal(0, 0.7, (n, 4))), 0, 10)
    camp2 = np.where((camp == 0) & (rng.random(n) < flip), 1, camp)
    r2 = np.clip(np.round(centre[camp2] + rng.normal(0, 0.7, (n, 4))), 0, 10)
    return r1, r2


def test_opinion_groups_find_two_camps_and_their_migration() -> None:
    r1, r2 = two_camps(300, seed=1, flip=0.25)
    ranks = np.full((300, 4), np.nan)
    keys = ["p", "q", "r", "s"]
    result = stats.option_set(r1, r2, ranks, ranks, option_keys=keys, axis_order=keys)
    groups = result.groups_t1
    assert groups.k == 2 and groups.sizes == [200, 100]  # largest group first
    assert groups.centroids[0] == pytest.approx([9, 8, 2, 1], abs=0.3)
    assert len(groups.centroids_2d) == 2 and len(groups.centroids_2d[0]) == 2
    assert sum(groups.explained_variance_ratio) <= 1.0 + 1e-12
    assert groups.silhouette == groups.silhouette_by_k["2"]
    assert result.n_migration == 300
    assert sum(map(sum, result.migration)) == 300
    # About a quarter of camp 0 (200 people, T1 group 0) moved to the other camp at T2.
    other_camp = int(np.argmax([c[3] for c in result.groups_t2.centroids]))
    assert 25 <= result.migration[0][other_camp] <= 75
    assert result.migration[1][other_camp] >= 95  # camp 1 stays
    assert_json_friendly(result)


def test_opinion_groups_are_reproducible_and_subsampled_above_the_fit_size() -> None:
    r1, r2 = two_camps(600, seed=2, flip=0.1)
    ranks = np.full((600, 4), np.nan)
    kwargs = {"option_keys": list("pqrs"), "fit_sample_size": 200, "silhouette_sample_size": 100}
    first = stats.option_set(r1, r2, ranks, ranks, **kwargs)
    second = stats.option_set(r1, r2, ranks, ranks, **kwargs)
    assert same(first, second)
    assert first.groups_t1.k == 2 and sum(first.groups_t1.sizes) == 600


@pytest.mark.parametrize(
    "ratings",
    [
        np.full((0, 3), np.nan),
        np.array([[5.0, 5.0, 5.0]]),
        np.full((40, 3), 7.0),
        np.full((10, 3), np.nan),
        np.array([[1.0, 2, 3], [1, 2, 3], [3, 2, 1]]),
    ],
    ids=["n = 0", "n = 1", "all equal", "all missing", "two distinct rows"],
)
def test_option_set_survives_degenerate_ratings(ratings: np.ndarray) -> None:
    ranks = np.full(ratings.shape, np.nan)
    result = stats.option_set(ratings, ratings, ranks, ranks, option_keys=KEYS, axis_order=KEYS)
    assert_json_friendly(result)
    assert result.migration == [] or result.groups_t1.k is not None
    assert result.preferences_t1.n_rankings == 0
    assert math.isnan(result.preferences_t1.share_single_peaked_best)


# --------------------------------------------------------------------------------------------
# small groups
# --------------------------------------------------------------------------------------------


def test_small_groups_hand_checked_example() -> None:
    # Midpoint 5.  Group 1: T1 (6, 8) -> T2 (8, 10): m 7 -> 9, var 2 -> 2: H = 0,
    #   P = sign(7 - 5) * (9 - 7) = +2 (moved further to its side).
    # Group 2: T1 (2, 4) -> T2 (1, 5): m 3 -> 3, var 2 -> 8: H = +6, P = -1 * 0 = 0.
    # Group 3: T1 (1, 3, 5) -> T2 (2, 3, 4): m 3 -> 3, var 4 -> 1: H = -3, P = 0.
    # Group 4 has one complete pair: left out.  Mean H = 1, mean P = 2/3.
    nan = np.nan
    x1 = np.array([6, 8, 2, 4, 1, 3, 5, 7, 7], dtype=float)
    x2 = np.array([8, 10, 1, 5, 2, 3, 4, 7, nan], dtype=float)
    ids = np.array([1, 1, 2, 2, 3, 3, 3, 4, 4], dtype=float)
    result = stats.small_groups(x1, x2, ids, midpoint=5)
    assert (result.n_groups, result.n_groups_too_small, result.n_participants) == (3, 1, 8)
    assert [g.homogenization for g in result.groups[:3]] == pytest.approx([0, 6, -3])
    assert [g.polarization for g in result.groups[:3]] == pytest.approx([2, 0, 0])
    assert result.groups[0].group == "1"
    assert result.mean_homogenization == pytest.approx(1.0)
    assert result.mean_polarization == pytest.approx(2 / 3)
    expected = sps.ttest_1samp([0, 6, -3], 0)
    assert close(result.p_homogenization, float(expected.pvalue))
    assert close(result.t_polarization, float(sps.ttest_1samp([2, 0, 0], 0).statistic))
    assert_json_friendly(result)
    summary_only = stats.small_groups(x1, x2, ids, midpoint=5, per_group=False)
    assert summary_only.groups == []
    assert summary_only.p_homogenization == result.p_homogenization


def test_small_groups_with_string_ids_and_no_complete_groups() -> None:
    x = np.array([1.0, 2.0, 3.0])
    result = stats.small_groups(x, x, np.array(["g1", None, "g2"], dtype=object), midpoint=5)
    assert result.n_groups == 0 and result.n_groups_too_small == 2
    assert math.isnan(result.mean_homogenization) and math.isnan(result.p_polarization)
    assert {g.group for g in result.groups} == {"g1", "g2"}
    assert_json_friendly(result)
