"""results.stats.groups: hand-checked small groups, and the one-pass, many-item computation equal
to a straightforward per-group one."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from results import stats
from results.stats.groups import one_sample
from tests.results.stats.checks import STRICT_WARNINGS, assert_json_friendly, close


def per_group_reference(
    x1: np.ndarray, x2: np.ndarray, ids: np.ndarray, midpoint: float, min_size: int
) -> dict[str, float]:
    """The measure as STATISTICS.md states it, one group at a time, with numpy and scipy."""
    ok = ~(np.isnan(x1) | np.isnan(x2)) & ~np.isnan(ids)
    homog, polar, too_small = [], [], 0
    for group in np.unique(ids[ok]):
        members = ok & (ids == group)
        a, b = x1[members], x2[members]
        if a.size < max(min_size, 2):
            too_small += 1
            continue
        homog.append(np.var(b, ddof=1) - np.var(a, ddof=1))
        polar.append(np.sign(a.mean() - midpoint) * (b.mean() - a.mean()))
    out = {"n_groups": len(homog), "too_small": too_small, "n": int(ok.sum())}
    for name, values in (("h", np.array(homog)), ("p", np.array(polar))):
        out[f"mean_{name}"] = float(values.mean()) if values.size else math.nan
        if values.size >= 2 and np.ptp(values) > 0:
            res = sps.ttest_1samp(values, 0.0)
            out[f"t_{name}"], out[f"p_{name}"] = float(res.statistic), float(res.pvalue)
        else:
            out[f"t_{name}"] = out[f"p_{name}"] = math.nan
    return out


@pytest.mark.parametrize("seed", range(6))
def test_small_groups_by_item_equals_a_per_group_computation_on_a_random_poll(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, items = int(rng.integers(20, 400)), 4
    ids = rng.integers(0, max(n // 6, 1), n).astype(float)
    ids[rng.random(n) < 0.1] = np.nan  # participants without a group
    x1 = rng.integers(0, 11, (items, n)).astype(float)
    x2 = np.clip(x1 + rng.integers(-2, 3, (items, n)), 0, 10)
    x1[rng.random((items, n)) < 0.15] = np.nan
    x2[rng.random((items, n)) < 0.15] = np.nan
    results = stats.small_groups_by_item(x1, x2, ids, midpoints=[5.0] * items, min_size=3)
    for j, result in enumerate(results):
        expected = per_group_reference(x1[j], x2[j], ids, 5.0, 3)
        single = stats.small_groups(x1[j], x2[j], ids, midpoint=5.0, min_size=3)
        assert repr(single) == repr(result)  # repr: NaN fields compare unequal
        assert result.n_groups == expected["n_groups"]
        assert result.n_groups_too_small == expected["too_small"]
        assert result.n_participants == expected["n"]
        for name, field in (("h", "homogenization"), ("p", "polarization")):
            for stat in ("mean", "t", "p"):
                got, want = getattr(result, f"{stat}_{field}"), expected[f"{stat}_{name}"]
                assert got == pytest.approx(want, rel=1e-12, abs=1e-14, nan_ok=True)


def test_small_groups_by_item_without_per_group_rows_keeps_the_summary() -> None:
    rng = np.random.default_rng(7)
    x1 = rng.integers(0, 11, (3, 300)).astype(float)
    x2 = rng.integers(0, 11, (3, 300)).astype(float)
    ids = rng.integers(0, 40, 300)
    full = stats.small_groups_by_item(x1, x2, ids, midpoints=[5.0] * 3)
    summary = stats.small_groups_by_item(x1, x2, ids, midpoints=[5.0] * 3, per_group=False)
    for a, b in zip(full, summary, strict=True):
        assert a.groups and not b.groups
        assert {**a.__dict__, "groups": []} == b.__dict__


def test_small_groups_by_item_rejects_misaligned_input() -> None:
    with pytest.raises(ValueError, match="item x participant"):
        stats.small_groups_by_item(np.zeros(3), np.zeros(3), np.zeros(3), midpoints=[5.0])
    with pytest.raises(ValueError, match="one midpoint per item"):
        stats.small_groups_by_item(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(3), midpoints=[5])


@pytest.mark.parametrize("seed", range(20))
def test_one_sample_t_equals_scipy_ttest_1samp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(rng.normal(), rng.uniform(0.1, 5), int(rng.integers(2, 200)))
    mean, t, p = one_sample(values)
    res = sps.ttest_1samp(values, 0.0)
    assert mean == pytest.approx(values.mean(), rel=1e-13)
    assert t == pytest.approx(res.statistic, rel=1e-12)
    assert p == pytest.approx(res.pvalue, rel=1e-10, abs=1e-300)


@STRICT_WARNINGS[0]  # as in every other test of results.stats
@STRICT_WARNINGS[1]
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


@STRICT_WARNINGS[0]  # as in every other test of results.stats
@STRICT_WARNINGS[1]
def test_small_groups_with_string_ids_and_no_complete_groups() -> None:
    x = np.array([1.0, 2.0, 3.0])
    result = stats.small_groups(x, x, np.array(["g1", None, "g2"], dtype=object), midpoint=5)
    assert result.n_groups == 0 and result.n_groups_too_small == 2
    assert math.isnan(result.mean_homogenization) and math.isnan(result.p_polarization)
    assert {g.group for g in result.groups} == {"g1", "g2"}
    assert_json_friendly(result)
