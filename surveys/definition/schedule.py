"""When things happen in a poll over time: plain functions of the poll's schedule and a moment.

A poll with a schedule runs over days: T1 opens and closes at set times, and T2 opens either at
one date for everyone (``t2_opens``) or a fixed delay after each participant's own T1
(``t2_after``). The same rule holds for both arms, so that the control arm answers T2 in the
same window as the treatment arm. A poll without ``t2_opens`` or ``t2_after`` runs in one
sitting, as before schedules existed.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils.dateparse import parse_duration
from django.utils.duration import duration_iso_string


@dataclass(frozen=True)
class Schedule:
    t1_opens: datetime | None = None
    t1_closes: datetime | None = None
    t2_opens: datetime | None = None
    t2_after: timedelta | None = None
    deliberation_closes: datetime | None = None

    @classmethod
    def of(cls, poll: Any) -> "Schedule":
        return cls(
            t1_opens=poll.t1_opens,
            t1_closes=poll.t1_closes,
            t2_opens=poll.t2_opens,
            t2_after=poll.t2_after,
            deliberation_closes=poll.deliberation_closes,
        )

    @property
    def over_time(self) -> bool:
        """Whether T2 has its own time: participants then leave after T1 and come back."""
        return self.t2_opens is not None or self.t2_after is not None


def t2_opens_for(schedule: Schedule, *, t1_completed_at: datetime | None) -> datetime | None:
    """When this participant's T2 opens; None when it is open as soon as T1 is done."""
    if schedule.t2_opens is not None:
        return schedule.t2_opens
    if schedule.t2_after is not None and t1_completed_at is not None:
        return t1_completed_at + schedule.t2_after
    return None


def t2_is_open(schedule: Schedule, *, t1_completed_at: datetime | None, now: datetime) -> bool:
    opens = t2_opens_for(schedule, t1_completed_at=t1_completed_at)
    return opens is None or now >= opens


def t1_not_yet_open(schedule: Schedule, *, now: datetime) -> bool:
    return schedule.t1_opens is not None and now < schedule.t1_opens


def t1_closed(schedule: Schedule, *, now: datetime) -> bool:
    return schedule.t1_closes is not None and now >= schedule.t1_closes


def problems(schedule: Schedule) -> list[str]:
    """What is inconsistent in a schedule, in words an organiser can act on.

    T2 may open before T1 closes (people who start late then answer T2 at once after T1, still
    in the same window as everyone else); what cannot work is a T2 before T1 even opens, a T1
    that closes before it opens, or a deliberation that ends after T2 has started.
    """
    found = []
    s = schedule
    if s.t2_opens is not None and s.t2_after is not None:
        found.append("Give either a date for the second questionnaire or a delay, not both.")
    if s.t1_opens and s.t1_closes and s.t1_closes <= s.t1_opens:
        found.append("The first questionnaire closes before it opens.")
    if s.t1_opens and s.t2_opens and s.t2_opens <= s.t1_opens:
        found.append("The second questionnaire opens before the first one does.")
    if s.t2_after is not None and s.t2_after <= timedelta(0):
        found.append("The delay before the second questionnaire must be longer than zero.")
    if s.deliberation_closes is not None:
        if not s.over_time:
            found.append(
                "A deliberation end is set, but the second questionnaire has no date or delay."
            )
        elif s.t2_opens and s.deliberation_closes > s.t2_opens:
            found.append("The deliberation closes after the second questionnaire opens.")
        if s.t1_opens and s.deliberation_closes <= s.t1_opens:
            found.append("The deliberation closes before the first questionnaire opens.")
    return found


# The definition file's ``schedule``: times as ISO 8601 text with an offset, the delay as an
# ISO 8601 duration. Stored canonically (UTC times, Django's duration text) so that load, dump,
# load gives identical data.
MOMENTS = ("t1_opens", "t1_closes", "t2_opens", "deliberation_closes")
FIELDS = (*MOMENTS, "t2_after")


def as_text(value: Any) -> Any:
    """YAML reads an unquoted 2026-12-01T09:00:00Z as a datetime: give it back as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def read_definition(raw: dict[str, Any]) -> tuple[Schedule, list[tuple[str, str]]]:
    """(schedule, [(key, problem)]) from a definition's ``schedule`` mapping."""
    values: dict[str, Any] = {}
    found: list[tuple[str, str]] = []
    for key in MOMENTS:
        if key not in raw:
            continue
        try:
            moment = datetime.fromisoformat(str(raw[key]))
        except ValueError:
            found.append((key, f"'{raw[key]}' is not an ISO 8601 date and time"))
            continue
        if moment.tzinfo is None:
            found.append((key, "give the time with its UTC offset, e.g. +00:00 or Z"))
            continue
        values[key] = moment.astimezone(UTC)
    if "t2_after" in raw:
        delay = parse_duration(str(raw["t2_after"]))
        if delay is None:
            found.append(("t2_after", f"'{raw['t2_after']}' is not an ISO 8601 duration"))
        else:
            values["t2_after"] = delay
    timing = Schedule(**values)
    if not found:
        found = [("", problem) for problem in problems(timing)]
    return timing, found


def to_definition(timing: Schedule) -> dict[str, str]:
    """The canonical ``schedule`` mapping; empty when the poll has none."""
    result = {
        key: getattr(timing, key).astimezone(UTC).isoformat()
        for key in MOMENTS
        if getattr(timing, key) is not None
    }
    if timing.t2_after is not None:
        result["t2_after"] = duration_iso_string(timing.t2_after)
    return {key: result[key] for key in FIELDS if key in result}
