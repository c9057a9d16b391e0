"""The journey's order as plain functions of the definition and the participant's place."""

from typing import Any

import pytest

from surveys.definition.files import save_poll, validate
from surveys.definition.spec import PollSpec, poll_spec
from surveys.journey import flow
from surveys.journey.flow import Place
from surveys.models import Participant
from tests.factories import make_poll, small_definition

pytestmark = pytest.mark.django_db
Step = Participant.Step
TREATMENT = Participant.Arm.TREATMENT
CONTROL = Participant.Arm.CONTROL


@pytest.fixture
def spec() -> PollSpec:
    return poll_spec(make_poll())


def over_time_spec(**schedule: Any) -> PollSpec:
    data = small_definition()
    data["slug"] = "over-time"
    data["schedule"] = schedule
    poll, _ = save_poll(data=validate(data, "<test>"), source="<test>")
    return poll_spec(poll)


def walk(spec: PollSpec, arm: str) -> list[Place]:
    place, seen = Place(Step.WELCOME, 0), [Place(Step.WELCOME, 0)]
    while place.step != Step.DONE:
        place = flow.next_place(spec, arm=arm, place=place)
        seen.append(place)
    return seen


def test_a_treatment_participant_in_one_sitting_reads_then_deliberates(spec: PollSpec) -> None:
    steps = [place.step for place in walk(spec, TREATMENT)]
    t1 = flow.page_count(spec, Step.T1, TREATMENT)
    briefing = len(spec.positions) + 1
    assert steps[: 1 + t1] == [Step.WELCOME] + [Step.T1] * t1
    assert steps[1 + t1 : 1 + t1 + briefing] == [Step.BRIEFING] * briefing
    assert Step.NEXT not in steps
    assert steps[1 + t1 + briefing] == Step.DELIBERATION
    # The wait is the step after deliberation; the actions skip it once T2 is open.
    assert steps[2 + t1 + briefing] == Step.WAIT
    assert steps[-1] == Step.DONE


def test_the_control_arm_is_always_told_what_happens_next_and_never_briefed(
    spec: PollSpec,
) -> None:
    steps = [place.step for place in walk(spec, CONTROL)]
    assert Step.NEXT in steps
    assert Step.BRIEFING not in steps and Step.DELIBERATION not in steps
    assert steps.index(Step.NEXT) == steps.index(Step.T1) + flow.page_count(spec, Step.T1, CONTROL)


def test_over_time_the_treatment_arm_is_told_too_and_the_wait_counts_in_progress() -> None:
    spec = over_time_spec(t2_after="P7D")
    assert spec.over_time
    assert Step.NEXT in flow.shown_steps(spec, TREATMENT)
    assert Step.WAIT in flow.shown_steps(spec, CONTROL)
    assert Step.WAIT not in flow.shown_steps(poll_spec(make_poll()), CONTROL)


def test_the_wait_is_skipped_once_t2_is_open() -> None:
    assert flow.past_wait(Place(Step.WAIT, 0), t2_open=True) == Place(Step.T2, 0)
    assert flow.past_wait(Place(Step.WAIT, 0), t2_open=False) == Place(Step.WAIT, 0)
    assert flow.past_wait(Place(Step.BRIEFING, 1), t2_open=True) == Place(Step.BRIEFING, 1)


def test_earlier_pages_of_the_current_step_may_be_seen_but_nothing_else() -> None:
    current = Place(Step.T1, 2)
    assert flow.may_view(arm=TREATMENT, current=current, wanted=Place(Step.T1, 0))
    assert flow.may_view(arm=TREATMENT, current=current, wanted=current)
    assert not flow.may_view(arm=TREATMENT, current=current, wanted=Place(Step.T1, 3))
    assert not flow.may_view(arm=TREATMENT, current=current, wanted=Place(Step.T2, 0))
    assert not flow.may_view(arm=TREATMENT, current=current, wanted=Place(Step.WELCOME, 0))
    # The control arm has no briefing at all, even at its own place's page number.
    assert not flow.may_view(arm=CONTROL, current=Place(Step.T2, 0), wanted=Place(Step.BRIEFING, 0))


def test_only_steps_left_behind_are_closed_never_a_skip_ahead() -> None:
    at_t2 = Place(Step.T2, 1)
    assert flow.is_closed(arm=TREATMENT, current=at_t2, wanted=Place(Step.DELIBERATION, 0))
    assert flow.is_closed(arm=TREATMENT, current=at_t2, wanted=Place(Step.T1, 0))
    assert not flow.is_closed(arm=TREATMENT, current=at_t2, wanted=Place(Step.T2, 0))
    assert not flow.is_closed(arm=TREATMENT, current=at_t2, wanted=Place(Step.DONE, 0))
    assert not flow.is_closed(
        arm=TREATMENT, current=Place(Step.T1, 0), wanted=Place(Step.DELIBERATION, 0)
    )
    # A step that is not in the arm's journey was never open to it.
    assert not flow.is_closed(arm=CONTROL, current=at_t2, wanted=Place(Step.DELIBERATION, 0))


def test_progress_counts_pages_before_and_ends_full(spec: PollSpec) -> None:
    places = walk(spec, TREATMENT)
    shown = [p for p in places if p.step in flow.shown_steps(spec, TREATMENT)]
    before = [flow.progress(spec, arm=TREATMENT, place=p)[0] for p in shown]
    total = flow.progress(spec, arm=TREATMENT, place=shown[0])[1]
    assert before == sorted(before) and before[0] == 0
    assert flow.progress(spec, arm=TREATMENT, place=Place(Step.DONE, 0)) == (total, total)


def test_urls_name_the_step_and_count_pages_from_one() -> None:
    assert flow.url_of("s", Place(Step.WELCOME, 0)) == "/p/s/"
    assert flow.url_of("s", Place(Step.T1, 0)) == "/p/s/t1/1/"
    assert flow.url_of("s", Place(Step.BRIEFING, 2)) == "/p/s/briefing/3/"
    assert flow.url_of("s", Place(Step.DELIBERATION, 0)) == "/p/s/deliberation/"
    assert flow.wave_of(Step.T2) == 2 and flow.wave_of(Step.BRIEFING) is None
