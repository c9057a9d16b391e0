"""results.stats.comparisons: difference in differences, gap change and p adjustment against
scipy and statsmodels."""

import gc
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.regression.linear_model import OLS, WLS
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from results import stats
from tests.results.stats.checks import (
    PROPERTY,
    STRICT_WARNINGS,
    TOL,
    assert_json_friendly,
    assert_matches_t_test,
    close,
)

pytestmark = STRICT_WARNINGS


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
    assert_matches_t_test(
        sps.ttest_ind(dt, dc, equal_var=False),
        t=result.t_welch,
        df=result.df_welch,
        p=result.p_welch,
        ci=(result.ci_low, result.ci_high),
    )


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
    assert (result.n_a, result.n_b) == (da.size, db.size)
    if da.size and db.size:
        a, b = in_a & ~np.isnan(d), ~in_a & ~np.isnan(d)
        means = (x1[a].mean(), x2[a].mean(), x1[b].mean(), x2[b].mean())
        assert all(
            close(got, float(want))
            for got, want in zip(
                (result.mean_t1_a, result.mean_t2_a, result.mean_t1_b, result.mean_t2_b),
                means,
                strict=True,
            )
        )
        gap1, gap2 = means[0] - means[2], means[1] - means[3]
        assert close(result.gap_change, float(abs(gap2) - abs(gap1)))
        assert close(result.diff_change, float(da.mean() - db.mean()))
    if da.size < 2 or db.size < 2 or (np.ptp(da) == 0 and np.ptp(db) == 0):
        assert math.isnan(result.p_welch) and math.isnan(result.ci_low)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy's own precision warning on near-constant data
            expected = sps.ttest_ind(da, db, equal_var=False)
            assert_matches_t_test(
                expected,
                t=result.t_welch,
                df=result.df_welch,
                p=result.p_welch,
                ci=(result.ci_low, result.ci_high),
            )


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


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.floats(0, 1), st.just(math.nan)), st.sampled_from("abc")),
        max_size=20,
    )
)
def test_adjust_within_families_adjusts_each_family_as_multipletests_alone(
    cases: list[tuple[float, str]],
) -> None:
    p = [value for value, _ in cases]
    families = [family for _, family in cases]
    holm, bh = stats.adjust_within_families(p, families)
    for family in set(families):
        members = [j for j, f in enumerate(families) if f == family]
        values = np.array([p[j] for j in members])
        used = [j for j, v in zip(members, values, strict=True) if not math.isnan(v)]
        if not used:
            assert all(math.isnan(holm[j]) and math.isnan(bh[j]) for j in members)
            continue
        gc.freeze()
        try:
            expected_holm = multipletests([p[j] for j in used], method="holm")[1]
            expected_bh = multipletests([p[j] for j in used], method="fdr_bh")[1]
        finally:
            gc.unfreeze()
        for j, h, b in zip(used, expected_holm, expected_bh, strict=True):
            assert close(holm[j], float(h)) and close(bh[j], float(b))
