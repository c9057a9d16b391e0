"""results.stats.dri against scipy's spearmanr pair by pair, without a database."""

import numpy as np
import pytest
from scipy import stats as sps

from results.stats import dri


def by_scipy(considerations: np.ndarray, preferences: np.ndarray) -> tuple[float, int, list]:
    """DRI, pairs left out and individual DRI, one spearmanr call per pair."""
    n = considerations.shape[0]
    gaps: dict[tuple[int, int], float] = {}
    left = 0
    for a in range(n):
        for b in range(a + 1, n):
            rows = (considerations[a], considerations[b], preferences[a], preferences[b])
            if any(np.ptp(r) == 0 for r in rows):
                left += 1
                continue
            r_c = sps.spearmanr(considerations[a], considerations[b]).statistic
            r_p = sps.spearmanr(preferences[a], preferences[b]).statistic
            gaps[(a, b)] = abs(r_c - r_p)
    lam = np.sqrt(2) / 2
    mean_d = np.mean([g / np.sqrt(2) for g in gaps.values()])
    individual = []
    for i in range(n):
        own = [g for (a, b), g in gaps.items() if i in (a, b)]
        individual.append((lam - 2 * np.mean(own) / np.sqrt(2)) / lam if own else np.nan)
    return (lam - 2 * mean_d) / lam, left, individual


def test_ratings_with_ties_and_constant_raters_match_scipy_in_blocks():
    rng = np.random.default_rng(3)
    considerations = rng.integers(-5, 6, size=(40, 12)).astype(float)  # a -5..5 scale
    preferences = rng.integers(0, 11, size=(40, 5)).astype(float)  # option ratings, ties
    considerations[7] = 2.0  # a constant rater
    preferences[11] = 4.0  # one who rates every option alike
    expected, left, individual = by_scipy(considerations, preferences)
    result = dri.group_dri(considerations, preferences, block_rows=7)
    assert result.n == 40 and result.pairs_left_out == left == 39 + 38
    assert result.pairs + result.pairs_left_out == 40 * 39 // 2
    assert result.dri == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(result.individual, individual, atol=1e-12)
    assert np.isnan(result.individual[7]) and np.isnan(result.individual[11])


def test_only_the_order_of_preferences_counts():
    rng = np.random.default_rng(5)
    considerations = rng.normal(size=(9, 6))
    ranks = np.argsort(rng.random((9, 5)), axis=1) + 1.0
    a = dri.group_dri(considerations, ranks)
    b = dri.group_dri(considerations, 10 * ranks**2)  # same order, other values
    assert a.dri == pytest.approx(b.dri, abs=1e-12)


def test_points_are_every_pair_or_a_fixed_sample_of_distinct_pairs():
    rng = np.random.default_rng(9)
    considerations = rng.integers(1, 12, size=(60, 8)).astype(float)
    preferences = np.argsort(rng.random((60, 5)), axis=1).astype(float)
    total, points = dri.pair_points(considerations, preferences, limit=10_000)
    assert total == 60 * 59 // 2 == len(points)
    r_c = sps.spearmanr(considerations[0], considerations[1]).statistic
    r_p = sps.spearmanr(preferences[0], preferences[1]).statistic
    assert points[0] == pytest.approx([r_c, r_p], abs=1e-12)
    # The mean gap of all points gives the DRI.
    assert 1 - 2 * np.mean(np.abs(points[:, 0] - points[:, 1])) == pytest.approx(
        dri.group_dri(considerations, preferences).dri, abs=1e-12
    )
    total, sample = dri.pair_points(considerations, preferences, limit=100, seed=1)
    again = dri.pair_points(considerations, preferences, limit=100, seed=1)[1]
    assert total == 1770 and sample.shape == (100, 2)
    np.testing.assert_array_equal(sample, again)
    assert len({tuple(p) for p in sample.tolist()}) > 90


def test_individual_change_is_scipys_paired_t_test():
    rng = np.random.default_rng(11)
    t1, t2 = rng.normal(0.2, 0.3, 25), rng.normal(0.35, 0.3, 25)
    t1[3] = np.nan  # no individual DRI at T1: left out
    change = dri.individual_change(t1, t2)
    keep = ~np.isnan(t1)
    reference = sps.ttest_rel(t2[keep], t1[keep])
    interval = reference.confidence_interval()
    assert change.n == 24 and change.df == 23
    assert change.t == pytest.approx(reference.statistic, abs=1e-12)
    assert change.p == pytest.approx(reference.pvalue, abs=1e-12)
    assert (change.ci_low, change.ci_high) == pytest.approx((interval.low, interval.high))
    assert np.isnan(dri.individual_change(np.ones(3), np.ones(3)).t)


def test_over_max_pairs_the_dri_is_a_reproducible_estimate_with_exact_counts():
    rng = np.random.default_rng(21)
    position = rng.normal(size=300)
    considerations = np.rint(position[:, None] * rng.normal(size=10) + rng.normal(size=(300, 10)))
    preferences = position[:, None] * np.linspace(-1, 1, 5) + rng.normal(size=(300, 5))
    considerations[0] = 1.0  # a constant rater: 299 pairs left out, counted exactly
    exact = dri.group_dri(considerations, preferences)
    estimate = dri.group_dri(considerations, preferences, max_pairs=20_000)
    again = dri.group_dri(considerations, preferences, max_pairs=20_000)
    assert not exact.sampled and estimate.sampled
    assert (estimate.pairs, estimate.pairs_left_out) == (exact.pairs, exact.pairs_left_out)
    assert (exact.pairs, exact.pairs_left_out) == (299 * 298 // 2, 299)
    assert estimate.dri == again.dri
    # Standard error of 1 - 2 mean|r_C - r_P| over 20,000 pairs: well under 0.01.
    assert abs(estimate.dri - exact.dri) < 0.01
    assert np.nanmean(np.abs(np.subtract(estimate.individual, exact.individual))) < 0.1


# by_scipy averages no pairs for the group of one (numpy warns; the value is NaN either way).
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_individual_dri_of_many_groups_at_once_equals_scipy_group_by_group() -> None:
    """Groups of 1 to 12 (a constant rater in some, ties everywhere), batched side by side
    and, past max_batch, one at a time: each participant's value is scipy's within their
    group."""
    rng = np.random.default_rng(11)
    sizes = [1, 2, 3, 5, 7, 9, 12, 4]
    groups = np.repeat(np.arange(len(sizes)) * 10, sizes)
    rng.shuffle(groups)  # members of a group need not be next to each other
    n = groups.size
    considerations = rng.integers(1, 6, (n, 6)).astype(float)
    considerations[3] = 4.0  # a constant rater
    preferences = rng.integers(0, 4, (n, 5)).astype(float)
    values = dri.individual_in_groups(considerations, preferences, groups, max_batch=8)
    for label in np.unique(groups):
        rows = np.flatnonzero(groups == label)
        *_, expected = by_scipy(considerations[rows], preferences[rows])
        np.testing.assert_allclose(values[rows], expected, rtol=0, atol=1e-12)
    assert np.isnan(values[groups == 0]).all()  # a group of one has no pair


def test_equal_changes_built_by_different_sums_give_no_test() -> None:
    """0.3 - 0.1 and 0.4 - 0.2 differ in the last bit: no spread, so no t (not t = 1e16)."""
    change = dri.individual_change(np.array([0.1, 0.2]), np.array([0.3, 0.4]))
    assert change.mean_diff == pytest.approx(0.2)
    assert np.isnan(change.t) and np.isnan(change.p)
