"""results.stats.options: rankings, Borda, Condorcet, single-peakedness and opinion groups."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from results import stats
from results.stats.options import single_peaked
from tests.results.stats.checks import (
    STRICT_WARNINGS,
    assert_json_friendly,
    close,
    same,
)

pytestmark = STRICT_WARNINGS


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
    assert np.mean(single_peaked(order_idx, axis_pos)) == pytest.approx(share)


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
