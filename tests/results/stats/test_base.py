"""results.stats.base: the helpers the measures share."""

import math

import pytest

from results import stats
from tests.results.stats.checks import STRICT_WARNINGS

pytestmark = STRICT_WARNINGS


def test_hedges_correction_hand_checked() -> None:
    # n = 10: J = 1 - 3 / (4 * 9 - 1) = 1 - 3/35 = 32/35.
    assert stats.hedges_correction(10) == pytest.approx(32 / 35)
    assert stats.hedges_correction(2) == 0.0
    assert math.isnan(stats.hedges_correction(1))
