"""Breakdowns by a number question's bins: the ranges' labels and who falls in which."""

import numpy as np
import pytest

from results.compute.breakdowns import bin_labels, breakdown_codes, breakdown_values
from results.compute.loading import PollData
from tests.results.test_compute import spec_question


def test_bins_are_labelled_as_ranges_with_the_values_below_the_first_bound_first():
    assert bin_labels((18, 30, 45, 65)) == ["<18", "18-29", "30-44", "45-64", "65+"]
    assert bin_labels((0.5, 1, 2.5)) == ["<0.5", "0.5-<1", "1-<2.5", "2.5+"]
    assert bin_labels((100,)) == ["<100", "100+"]


@pytest.mark.parametrize(
    ("t1", "t2", "label"),
    [
        (17, np.nan, "<18"),
        (18, np.nan, "18-29"),
        (29.5, np.nan, "18-29"),  # a range holds everything below the next bound
        (30, np.nan, "30-44"),
        (np.nan, 65, "65+"),  # asked at T2 only
        (99, 20, "65+"),  # T1 wins
    ],
)
def test_a_number_falls_in_the_range_of_its_lower_bound(t1: float, t2: float, label: str):
    age = spec_question(id=1, key="AGE", kind="number", waves="both", bins=(18, 30, 45, 65))
    values = np.array([[[t1, np.nan], [t2, np.nan]]])
    data = PollData(
        poll_id=1,
        min_subgroup_size=5,
        questions=[age],
        option_axis={},
        participant_ids=np.array([1, 2]),
        arm=np.zeros(2, dtype=np.int8),
        group=np.full(2, -1),
        weight=np.full(2, np.nan),
        values=values,
        dont_know=np.zeros((1, 2, 2), dtype=bool),
        answered=~np.isnan(values),
    )
    codes = breakdown_codes(data, age)
    assert breakdown_values(age)[int(codes[0]) - 1] == label
    assert np.isnan(codes[1])  # no answer: in no range
