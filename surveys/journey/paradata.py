"""Paradata: how long participants spend, and the quality flags researchers filter on.

Pure functions of timestamps and answers, so the rules are tested without a database.
"""

from collections.abc import Iterable
from datetime import datetime

# A page left open over lunch is not reading time: one page counts at most this long.
PAGE_SECONDS_CAP = 30 * 60
# Straight-lining needs a grid: fewer rating items in a section say nothing.
GRID_MINIMUM = 3

STRAIGHTLINING = "straightlining_t{wave}"
TOO_FAST = "too_fast"


def seconds_between(start: datetime | None, end: datetime) -> float:
    """Seconds from ``start`` to ``end``, capped per page; 0 when the start is unknown."""
    if start is None:
        return 0.0
    return round(min(max((end - start).total_seconds(), 0.0), PAGE_SECONDS_CAP), 1)


def add_seconds(times: dict[str, float], key: str, seconds: float) -> dict[str, float]:
    return {**times, key: round(times.get(key, 0.0) + seconds, 1)}


def straightlined(grids: Iterable[list[float]]) -> bool:
    """True when some rating grid of at least three answered items got one value throughout."""
    return any(len(values) >= GRID_MINIMUM and len(set(values)) == 1 for values in grids)


def too_fast(*, consented_at: datetime | None, completed_at: datetime, min_seconds: int) -> bool:
    if consented_at is None:
        return False
    return (completed_at - consented_at).total_seconds() < min_seconds


def with_flag(flags: list[str], flag: str, present: bool) -> list[str]:
    kept = [f for f in flags if f != flag]
    return [*kept, flag] if present else kept
