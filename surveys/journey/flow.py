"""Which step and page come next: plain functions of the poll's definition and the participant.

The journey is a sequence of places ``(step, page)``, pages counted from 0:

- treatment: welcome, T1 (a page per section), [next], briefing (a page per position in the
  assigned order, then the options with their arguments), [live], [deliberation], [wait], T2
  (a page per section), done;
- control: welcome, T1, next, [wait], T2, done.

``next`` says, after T1, what happens next in the participant's arm: always for the control arm
(who would otherwise meet the same questions again with no word of why), for the treatment arm
when the poll runs over time. ``wait`` is where a participant stays until their T2 opens; it is
skipped when T2 is already open (the actions decide that, as it depends on the clock). Both
steps are in every arm's list, so a schedule changed mid-poll never strands anyone.
``live`` (a session in a room at a set time) is shown when the poll's deliberation is live or
both, ``deliberation`` (the reasons) when it is async or both. A poll without positions (one
run on paper and imported, say) has no briefing.

A participant who has not been assigned yet (before the end of T1) is shown the longer
treatment journey in the progress bar; the control arm's bar then jumps ahead, never back.
"""

from typing import NamedTuple

from django.urls import reverse

from surveys.definition.spec import PollSpec
from surveys.models import Participant

Step = Participant.Step
QUESTIONNAIRES = {Step.T1: 1, Step.T2: 2}
TREATMENT_STEPS = (
    Step.WELCOME,
    Step.T1,
    Step.NEXT,
    Step.BRIEFING,
    Step.LIVE,
    Step.DELIBERATION,
    Step.WAIT,
    Step.T2,
    Step.DONE,
)
# Which deliberation modes (Poll.deliberation) pass through each deliberating step.
MODES = {Step.LIVE: ("live", "both"), Step.DELIBERATION: ("async", "both")}
CONTROL_STEPS = (Step.WELCOME, Step.T1, Step.NEXT, Step.WAIT, Step.T2, Step.DONE)


class Place(NamedTuple):
    step: str
    page: int


def steps_for(arm: str) -> tuple[str, ...]:
    return CONTROL_STEPS if arm == Participant.Arm.CONTROL else TREATMENT_STEPS


def shown_steps(spec: PollSpec, arm: str) -> tuple[str, ...]:
    """The steps a participant of ``arm`` passes through (``wait`` counted when the poll runs
    over time, though it is skipped for whoever arrives once T2 is open)."""
    mode = getattr(spec, "deliberation", "async")
    return tuple(
        step
        for step in steps_for(arm)
        if mode in MODES.get(step, (mode,))
        and (step != Step.BRIEFING or spec.positions)
        and (
            spec.over_time
            or (step != Step.WAIT and (step != Step.NEXT or arm == Participant.Arm.CONTROL))
        )
    )


def page_count(spec: PollSpec, step: str, arm: str = "") -> int:
    if step in QUESTIONNAIRES:
        return max(1, len(spec.pages(QUESTIONNAIRES[step], arm)))
    if step == Step.BRIEFING:
        return len(spec.positions) + 1
    return 1


def wave_of(step: str) -> int | None:
    return QUESTIONNAIRES.get(step)


def next_place(spec: PollSpec, *, arm: str, place: Place) -> Place:
    """The place after ``place``: the next page of the step, else the next shown step's first
    page (``wait`` included: the caller skips it when T2 is open, see ``past_wait``)."""
    if place.page + 1 < page_count(spec, place.step, arm):
        return Place(place.step, place.page + 1)
    steps = steps_for(arm)
    shown = set(shown_steps(spec, arm)) | {Step.WAIT}
    index = steps.index(place.step) + 1
    while index < len(steps) - 1 and steps[index] not in shown:
        index += 1
    return Place(steps[min(index, len(steps) - 1)], 0)


def past_wait(place: Place, *, t2_open: bool) -> Place:
    """``place``, or T2's first page when ``place`` is the wait and T2 is open already."""
    return Place(Step.T2, 0) if place.step == Step.WAIT and t2_open else place


def is_last_page(spec: PollSpec, place: Place, arm: str = "") -> bool:
    return place.page + 1 >= page_count(spec, place.step, arm)


def order_of(arm: str, place: Place) -> tuple[int, int]:
    """A sortable rank of a place in the journey of ``arm``."""
    steps = steps_for(arm)
    return (steps.index(place.step) if place.step in steps else -1, place.page)


def may_view(*, arm: str, current: Place, wanted: Place) -> bool:
    """A participant may look at their current place and at earlier pages of the same step.

    Earlier steps are closed: T1 is frozen once the participant has moved on (the briefing must
    not change T1 answers), and a skip ahead by URL is never allowed.
    """
    if wanted.step not in steps_for(arm) or wanted.step != current.step:
        return False
    return 0 <= wanted.page <= current.page


def is_closed(*, arm: str, current: Place, wanted: Place) -> bool:
    """True when ``wanted`` is a step of the journey the participant has left (browser Back
    to the deliberation from T2, say): what is sent there is no longer saved, so the page says
    so instead of showing a form that looks live."""
    steps = steps_for(arm)
    if wanted.step not in steps or wanted.step == current.step:
        return False
    return steps.index(wanted.step) < steps.index(current.step)


def progress(spec: PollSpec, *, arm: str, place: Place) -> tuple[int, int]:
    """(pages before this one, pages in the whole journey) for the progress bar."""
    steps = shown_steps(spec, arm)
    total = sum(page_count(spec, step, arm) for step in steps)
    if place.step == Step.DONE:
        return total, total
    index = steps.index(place.step) if place.step in steps else 0
    before = sum(page_count(spec, step, arm) for step in steps[:index])
    return before + place.page, total


def url_of(slug: str, place: Place) -> str:
    if place.step == Step.WELCOME:
        return reverse("surveys:entry", args=[slug])
    if place.step in (Step.NEXT, Step.LIVE, Step.DELIBERATION, Step.WAIT, Step.DONE):
        return reverse(f"surveys:{place.step}", args=[slug])
    return reverse(f"surveys:{place.step}", args=[slug, place.page + 1])


def current_place(participant: Participant) -> Place:
    return Place(participant.step, participant.page)
