"""results.stats.dispersion: agreement, consensus and bimodality against golden values, scipy
and hand-checked examples."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from results import stats
from tests.results.stats.checks import (
    AGRMT_FREQS,
    STRICT_WARNINGS,
    close,
)

pytestmark = STRICT_WARNINGS


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
