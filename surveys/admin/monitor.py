"""The live monitor: a funnel per arm, drop-off between stages, time per step, quality flags.

Counts come from one aggregate query per poll (grouped by arm); medians and flag counts from
one pass over two small JSON columns, read as plain values, never as model objects.
"""

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, OuterRef, Q, Subquery

from surveys.models import Answer, Participant, Poll, Withdrawal

Step = Participant.Step
Arm = Participant.Arm
AFTER_T1 = [Step.NEXT, Step.BRIEFING, Step.DELIBERATION, Step.WAIT, Step.T2, Step.DONE]
AFTER_BRIEFING = [Step.DELIBERATION, Step.WAIT, Step.T2, Step.DONE]
AFTER_DELIBERATION = [Step.WAIT, Step.T2, Step.DONE]

# (key, label, condition, only in the treatment arm)
STAGES: list[tuple[str, str, Q, bool]] = [
    ("invited", "Invited", Q(token_hash__isnull=False), False),
    (
        "started",
        "Started",
        Q(token_hash__isnull=True) | Q(consented_at__isnull=False) | ~Q(step=Step.WELCOME),
        False,
    ),
    ("consented", "Consented", Q(consented_at__isnull=False), False),
    ("t1_done", "T1 done", Q(step__in=AFTER_T1), False),
    ("briefed", "Briefed", Q(step__in=AFTER_BRIEFING, briefed_at__isnull=False), True),
    ("deliberated", "Deliberated", Q(step__in=AFTER_DELIBERATION, arm=Arm.TREATMENT), True),
    ("t2_done", "T2 done", Q(step=Step.DONE), False),
    ("completed", "Completed", Q(completed_at__isnull=False), False),
]
ARMS = [("all", "All"), (Arm.TREATMENT.value, "Treatment"), (Arm.CONTROL.value, "Control")]


@dataclass(frozen=True)
class Cell:
    arm: str
    count: int | None  # None where the stage does not apply to the arm
    drop: float | None  # percent lost since the arm's previous applicable stage


@dataclass(frozen=True)
class StageRow:
    key: str
    label: str
    cells: list[Cell]

    def count(self, arm: str) -> int | None:
        return next(cell.count for cell in self.cells if cell.arm == arm)


@dataclass(frozen=True)
class Monitor:
    stages: list[StageRow]
    arms: list[tuple[str, str]]
    median_seconds: list[tuple[str, float | None, int]]  # (step label, median, n)
    flags: list[tuple[str, int]]
    last_activity: datetime | None
    last_answer: datetime | None
    unassigned: int
    withdrawals: int  # participants who withdrew: their rows are gone, only the count stays


def _funnel_counts(poll: Poll) -> dict[str, dict[str, int]]:
    aggregates = {key: Count("pk", filter=condition) for key, _, condition, _ in STAGES}
    rows = Participant.objects.filter(poll=poll, revoked_at__isnull=True).values("arm")
    counts: dict[str, dict[str, int]] = {arm: Counter() for arm, _ in ARMS}
    counts[""] = Counter()
    for row in rows.annotate(**aggregates).order_by():
        arm = row.pop("arm")
        counts.setdefault(arm, Counter()).update(row)
        counts["all"].update(row)
    return counts


def _stages(counts: dict[str, dict[str, int]]) -> list[StageRow]:
    rows = []
    previous: dict[str, int | None] = {}
    for key, label, _, treatment_only in STAGES:
        cells = []
        for arm, _ in ARMS:
            applies = not treatment_only or arm == Arm.TREATMENT
            # Arms are assigned after consent, so the first stages are only known overall.
            known = arm == "all" or key not in ("invited", "started")
            count = counts[arm][key] if applies and known else None
            before = previous.get(arm)
            drop = 100 * (1 - count / before) if count is not None and before else None
            cells.append(Cell(arm=arm, count=count, drop=drop))
            if count is not None:
                previous[arm] = count
        rows.append(StageRow(key=key, label=label, cells=cells))
    return rows


def _timings_and_flags(poll: Poll) -> tuple[list[tuple[str, float | None, int]], Counter]:
    seconds: dict[str, list[float]] = {step.value: [] for step in Step}
    flags: Counter = Counter()
    values = Participant.objects.filter(poll=poll).values_list("step_times", "flags")
    for step_times, participant_flags in values.iterator(chunk_size=2000):
        for step, spent in (step_times or {}).items():
            if step in seconds and isinstance(spent, int | float):
                seconds[step].append(float(spent))
        flags.update(str(flag) for flag in participant_flags or [])
    medians = [
        (
            step.label,
            statistics.median(seconds[step]) if seconds[step] else None,
            len(seconds[step]),
        )
        for step in Step
        if step != Step.DONE
    ]
    return medians, flags


def poll_monitor(poll: Poll) -> Monitor:
    """Everything the live monitor shows, read in four queries."""
    counts = _funnel_counts(poll)
    medians, flags = _timings_and_flags(poll)
    activity: dict[str, Any] = Participant.objects.filter(poll=poll).aggregate(
        last=Max("updated_at")
    )
    # The newest answer and the number of withdrawals in one query, as two scalar subqueries.
    latest = (
        Answer.objects.filter(poll=OuterRef("pk"))
        .order_by()
        .values("poll")
        .annotate(m=Max("answered_at"))
    )
    withdrawn = (
        Withdrawal.objects.filter(poll=OuterRef("pk"))
        .order_by()
        .values("poll")
        .annotate(n=Count("pk"))
    )
    extra = Poll.objects.filter(pk=poll.pk).values(
        newest_answer=Subquery(latest.values("m")), withdrawn=Subquery(withdrawn.values("n"))
    )[0]
    return Monitor(
        stages=_stages(counts),
        arms=ARMS,
        median_seconds=medians,
        flags=sorted(flags.items(), key=lambda item: (-item[1], item[0])),
        last_activity=activity["last"],
        last_answer=extra["newest_answer"],
        unassigned=counts[""]["consented"],
        withdrawals=extra["withdrawn"] or 0,
    )
