"""What the tests of results.stats share: comparison to 1e-9 (NaN equal to NaN), the check
that results are plain JSON values, the check of a t test against scipy's, and the hypothesis
strategy of a paired rating item."""

import json
import math
from dataclasses import asdict, is_dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from results import stats

# Every warning is an error, so a test fails if a function warns on degenerate data; but not the
# report of a file another test left open that the garbage collector happens to close during
# this one (it says nothing of the code under test).
STRICT_WARNINGS = [
    pytest.mark.filterwarnings("error"),
    pytest.mark.filterwarnings("default::pytest.PytestUnraisableExceptionWarning"),
]
TOL = {"rtol": 1e-9, "atol": 1e-12}
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
AGRMT_FREQS = (30, 40, 210, 130, 530, 50, 10)


def close(actual: float, expected: float) -> bool:
    """Equal to 1e-9 relative, or both NaN (statistic undefined on both sides)."""
    if math.isnan(expected) or math.isinf(expected):
        return math.isnan(actual)
    return math.isclose(actual, expected, rel_tol=TOL["rtol"], abs_tol=TOL["atol"])


def assert_matches_t_test(
    expected: Any, *, t: float, df: float, p: float, ci: tuple[float, float]
) -> None:
    """t, df, p and the 95% interval of a result equal scipy's ``TtestResult`` to 1e-9."""
    interval = expected.confidence_interval(0.95)
    assert close(t, float(expected.statistic))
    assert close(df, float(expected.df))
    assert close(p, float(expected.pvalue))
    assert close(ci[0], float(interval.low))
    assert close(ci[1], float(interval.high))


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
