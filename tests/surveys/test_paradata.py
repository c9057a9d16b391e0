"""Paradata rules, without a database: page times capped, flags for speed and straight-lining."""

from datetime import UTC, datetime, timedelta

from surveys.journey import paradata

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_seconds_on_a_page_are_capped_and_never_negative() -> None:
    assert paradata.seconds_between(START, START + timedelta(seconds=42.26)) == 42.3
    assert paradata.seconds_between(START, START + timedelta(hours=3)) == paradata.PAGE_SECONDS_CAP
    assert paradata.seconds_between(START, START - timedelta(seconds=5)) == 0.0
    assert paradata.seconds_between(None, START) == 0.0


def test_seconds_add_up_per_key_without_changing_the_given_times() -> None:
    times = {"A": 10.0}
    added = paradata.add_seconds(times, "A", 2.25)
    assert added == {"A": 12.2} or added == {"A": 12.3}
    assert paradata.add_seconds(added, "B", 1.0)["B"] == 1.0
    assert times == {"A": 10.0}


def test_straightlining_needs_a_grid_of_three_with_one_value() -> None:
    assert paradata.straightlined([[5, 5, 5]])
    assert not paradata.straightlined([[5, 5]])
    assert not paradata.straightlined([[5, 5, 6], [1, 2]])
    assert paradata.straightlined([[1, 2, 3], [7, 7, 7, 7]])
    assert not paradata.straightlined([])


def test_too_fast_compares_the_whole_time_with_the_minimum() -> None:
    done = START + timedelta(seconds=59)
    assert paradata.too_fast(consented_at=START, completed_at=done, min_seconds=60)
    assert not paradata.too_fast(consented_at=START, completed_at=done, min_seconds=59)
    assert not paradata.too_fast(consented_at=None, completed_at=done, min_seconds=60)


def test_a_flag_is_set_once_and_cleared_without_touching_others() -> None:
    flags = paradata.with_flag(["too_fast"], "straightlining_t1", True)
    assert flags == ["too_fast", "straightlining_t1"]
    assert paradata.with_flag(flags, "straightlining_t1", True) == flags
    assert paradata.with_flag(flags, "too_fast", False) == ["straightlining_t1"]
