"""results.stats.knowledge: the knowledge index, its change and its difference in differences."""

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.weightstats import DescrStatsW

from results import stats
from tests.results.stats.checks import (
    STRICT_WARNINGS,
    assert_json_friendly,
    close,
    same,
)

pytestmark = STRICT_WARNINGS


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
