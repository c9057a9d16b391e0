"""results.stats.item: item_change against scipy and statsmodels to 1e-9, hand-checked
examples, degenerate data."""

import itertools
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.contingency_tables import SquareTable, mcnemar
from statsmodels.stats.weightstats import DescrStatsW

from results import stats
from tests.results.stats.checks import (
    PROPERTY,
    STRICT_WARNINGS,
    assert_json_friendly,
    assert_matches_t_test,
    close,
    complete,
    paired_items,
    run_item,
    same,
)

pytestmark = STRICT_WARNINGS


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
    assert_matches_t_test(
        sps.ttest_rel(y, x),
        t=result.t,
        df=result.df,
        p=result.p_t,
        ci=(result.ci_low, result.ci_high),
    )


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


def test_item_change_keeps_missing_kinds_apart_and_reports_substantive_shares() -> None:
    # Scale 0..4 (midpoint 2).  T1: 0, 1, 4, 4, DK, refused, skipped, not asked -> 7 asked:
    # oppose 2/7, support 2/7, DK, refused, skipped 1/7 each; among the 4 substantive answers
    # oppose 50%, neutral 0%, support 50%.  The one not asked is counted nowhere.
    nan = np.nan
    x1 = np.array([0, 1, 4, 4, nan, nan, nan, nan])
    x2 = np.array([1, 2, 4, 3, 2, 2, 2, 2])
    kinds = np.array([0, 0, 0, 0, 1, 2, 3, 4])
    result = stats.item_change(x1, x2, missing1=kinds, scale_min=0, scale_max=4)
    assert (result.n_t1, result.n_t2, result.n_pairs) == (7, 8, 4)
    asked = 100 / 7
    assert result.pct_oppose_t1 == pytest.approx(2 * asked)
    assert result.pct_support_t1 == pytest.approx(2 * asked)
    for kind in ("dk", "refused", "skipped"):
        assert getattr(result, f"pct_{kind}_t1") == pytest.approx(asked)
    assert (
        result.pct_oppose_valid_t1,
        result.pct_neutral_valid_t1,
        result.pct_support_valid_t1,
    ) == pytest.approx((50.0, 0.0, 50.0))
    assert result.distribution_valid_t1 == pytest.approx([25.0, 25.0, 0.0, 0.0, 50.0])
    # T2: 1, 2, 4, 3 and four 2s -> nothing missing, both share kinds agree.
    assert result.pct_neutral_t2 == result.pct_neutral_valid_t2 == pytest.approx(62.5)
    assert result.pct_refused_t2 == result.pct_skipped_t2 == result.pct_dk_t2 == 0.0


@PROPERTY
@given(paired_items(weighted=True), st.randoms(use_true_random=False))
def test_item_change_shares_of_every_kind_match_a_pandas_tally(case: dict, rnd: Any) -> None:
    n = case["x1"].size
    kinds = np.array([rnd.choice((0, 0, 0, 1, 2, 3, 4)) for _ in range(n)], dtype=np.int64)
    x1 = np.where(kinds > 0, np.nan, case["x1"])
    result = stats.item_change(
        x1,
        case["x2"],
        missing1=kinds,
        scale_min=case["scale_min"],
        scale_max=case["scale_max"],
        weights=case["weights"],
    )
    weights = case["weights"]
    frame = pd.DataFrame({"x": x1, "kind": kinds, "w": weights})
    frame = frame[frame["w"] > 0]
    mid = (case["scale_min"] + case["scale_max"]) / 2
    frame["side"] = np.select(
        [frame["x"] < mid, frame["x"] == mid, frame["x"] > mid],
        ["oppose", "neutral", "support"],
        default="",
    )
    frame.loc[frame["kind"] > 0, "side"] = frame["kind"].map({1: "dk", 2: "refused", 3: "skipped"})
    asked = frame[(frame["kind"].between(1, 3)) | frame["x"].notna()]
    valid = asked[asked["kind"] == 0]
    assert result.n_t1 == len(asked)

    def share(rows: pd.DataFrame, side: str) -> float:
        return (
            100 * rows.loc[rows["side"] == side, "w"].sum() / rows["w"].sum()
            if len(rows)
            else math.nan
        )

    for side in ("oppose", "neutral", "support", "dk", "refused", "skipped"):
        assert close(getattr(result, f"pct_{side}_t1"), share(asked, side))
    for side in ("oppose", "neutral", "support"):
        assert close(getattr(result, f"pct_{side}_valid_t1"), share(valid, side))
