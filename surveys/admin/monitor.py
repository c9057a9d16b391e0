"""The live monitor: the funnel from arrival to completion, per arm, with drop-off between
stages; where people came from (personal links or the open link); time per step; quality flags
in words.

Counts come from one aggregate query per poll (grouped by arm); medians and flag counts from
one pass over two small JSON columns, read as plain values, never as model objects.
"""

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from surveys.models import Answer, Participant, Poll, Withdrawal

Step = Participant.Step
Arm = Participant.Arm
AFTER_T1 = [Step.NEXT, Step.BRIEFING, Step.DELIBERATION, Step.WAIT, Step.T2, Step.DONE]
AFTER_BRIEFING = [Step.DELIBERATION, Step.WAIT, Step.T2, Step.DONE]
AFTER_DELIBERATION = [Step.WAIT, Step.T2, Step.DONE]

STARTED = Q(token_hash__isnull=True) | Q(consented_at__isnull=False) | ~Q(step=Step.WELCOME)
# (key, label, condition, only in the treatment arm). "invited" is not a stage: it counts the
# personal links made, while people also arrive through the open link; it is shown apart.
STAGES: list[tuple[str, Any, Q, bool]] = [
    ("invited", _("Invited"), Q(token_hash__isnull=False), False),
    ("invited_started", _("Opened their link"), Q(token_hash__isnull=False) & STARTED, False),
    ("started", _("Arrived"), STARTED, False),
    ("consented", _("Consented"), Q(consented_at__isnull=False), False),
    ("t1_done", _("First questionnaire (T1) done"), Q(step__in=AFTER_T1), False),
    ("briefed", _("Read the briefing"), Q(step__in=AFTER_BRIEFING, briefed_at__isnull=False), True),
    (
        "deliberated",
        _("Deliberated"),
        Q(step__in=AFTER_DELIBERATION, arm=Arm.TREATMENT),
        True,
    ),
    ("t2_done", _("Second questionnaire (T2) done"), Q(step=Step.DONE), False),
    ("completed", _("Completed"), Q(completed_at__isnull=False), False),
]
SOURCES = ("invited", "invited_started")
ARMS = [("all", _("All")), (Arm.TREATMENT.value, _("Treatment")), (Arm.CONTROL.value, _("Control"))]
# Funnel bars are as wide as their share of the first stage, in steps of 5% (a class each:
# the Content Security Policy allows no style attribute).
WIDTH_STEP = 5


def flag_sentence(flag: str, count: int, min_seconds: int) -> str:
    """A quality flag as organisers read it (the codes are for researchers' data)."""
    if flag == "too_fast":
        return ngettext(
            "%(count)d participant finished faster than the poll's minimum of %(seconds)d seconds.",
            "%(count)d participants finished faster than the poll's minimum of %(seconds)d "
            "seconds.",
            count,
        ) % {"count": count, "seconds": min_seconds}
    if flag.startswith("straightlining_t"):
        wave = flag.removeprefix("straightlining_t")
        return ngettext(
            "%(count)d participant gave every option the same rating in questionnaire T%(wave)s.",
            "%(count)d participants gave every option the same rating in questionnaire T%(wave)s.",
            count,
        ) % {"count": count, "wave": wave}
    return ngettext(
        "%(count)d participant flagged %(flag)s.", "%(count)d participants flagged %(flag)s.", count
    ) % {"count": count, "flag": flag}


@dataclass(frozen=True)
class FunnelBar:
    key: str
    label: str
    count: int
    share: float  # percent of the first stage
    drop: float | None  # percent lost since the previous stage
    width: int  # the share rounded to WIDTH_STEP, for the bar's class


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
    flags: list[tuple[str, int, str]]  # (code, count, sentence)
    funnel: list[FunnelBar]
    invited: int
    invited_started: int
    open_link: int
    last_activity: datetime | None
    last_answer: datetime | None
    unassigned: int
    withdrawals: int  # participants who withdrew: their rows are gone, only the count stays


def _funnel_counts(poll: Poll) -> dict[str, dict[str, int]]:
    aggregates = {key: Count("pk", filter=condition) for key, _label, condition, _t in STAGES}
    rows = Participant.objects.filter(poll=poll, revoked_at__isnull=True).values("arm")
    counts: dict[str, dict[str, int]] = {arm: Counter() for arm, _label in ARMS}
    counts[""] = Counter()
    for row in rows.annotate(**aggregates).order_by():
        arm = row.pop("arm")
        counts.setdefault(arm, Counter()).update(row)
        counts["all"].update(row)
    return counts


def _stages(counts: dict[str, dict[str, int]]) -> list[StageRow]:
    rows = []
    previous: dict[str, int | None] = {}
    for key, label, _condition, treatment_only in STAGES:
        if key in SOURCES:
            continue
        cells = []
        for arm, _label in ARMS:
            applies = not treatment_only or arm == Arm.TREATMENT
            # Arms are assigned after consent, so the first stages are only known overall.
            known = arm == "all" or key != "started"
            count = counts[arm][key] if applies and known else None
            before = previous.get(arm)
            drop = 100 * (1 - count / before) if count is not None and before else None
            cells.append(Cell(arm=arm, count=count, drop=drop))
            if count is not None:
                previous[arm] = count
        rows.append(StageRow(key=key, label=str(label), cells=cells))
    return rows


def _funnel(stages: list[StageRow]) -> list[FunnelBar]:
    """The stages everyone passes (all arms together), each as a bar of the first's width.
    Treatment-only stages are left out: the control arm skips them, so they are no funnel."""
    rows = [row for row in stages if row.count("all") is not None]
    first = rows[0].count("all") if rows else 0
    bars = []
    previous: int | None = None
    for row in rows:
        count = row.count("all") or 0
        share = 100 * count / first if first else 0.0
        drop = 100 * (1 - count / previous) if previous else None
        width = max(WIDTH_STEP, WIDTH_STEP * round(share / WIDTH_STEP)) if count else 0
        bars.append(FunnelBar(row.key, row.label, count, share, drop, width))
        previous = count
    return bars


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
    stages = _stages(counts)
    return Monitor(
        stages=stages,
        arms=[(arm, str(label)) for arm, label in ARMS],
        median_seconds=medians,
        flags=[
            (flag, count, flag_sentence(flag, count, poll.min_seconds or 0))
            for flag, count in sorted(flags.items(), key=lambda item: (-item[1], item[0]))
        ],
        funnel=_funnel(stages),
        invited=counts["all"]["invited"],
        invited_started=counts["all"]["invited_started"],
        open_link=counts["all"]["started"] - counts["all"]["invited_started"],
        last_activity=activity["last"],
        last_answer=extra["newest_answer"],
        unassigned=counts[""]["consented"],
        withdrawals=extra["withdrawn"] or 0,
    )
