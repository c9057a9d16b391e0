"""The journey's writes called directly (no HTTP): each owns its transaction, replays safely,
and stores nothing for a step the participant has left."""

import random
from typing import Any

import pytest
from django.http import QueryDict

from surveys.definition.spec import PollSpec, poll_spec
from surveys.journey import actions, invitations, tokens
from surveys.journey.flow import Place
from surveys.journey.forms import GivenReason, page_form
from surveys.models import Answer, Participant, Poll, Reason
from tests.factories import make_poll

pytestmark = pytest.mark.django_db
Step = Participant.Step
T1: list[dict[str, str]] = [
    {"q-rate_exit": "3", "q-rate_aid": "dk", "q-rate_escalate": "8"},
    {"q-rank.exit": "2", "q-rank.aid": "1", "q-rank.escalate": "3"},
    {"q-k_capital": "lviv"},
    {"q-leaning": "left"},
]


def consent(poll: Poll, key: str = "entry-1") -> Participant:
    return actions.give_consent(
        poll=poll,
        spec=poll_spec(poll),
        participant=None,
        entry_key=key,
        language="en",
        welcome_seconds=12.0,
        rng=random.Random(1),
    )


def submit(participant: Participant, step: str, page: int, values: dict[str, Any]) -> Place:
    participant.refresh_from_db()
    spec = poll_spec(participant.poll)
    posted = QueryDict(mutable=True)
    posted.update({"wave": "1" if step == Step.T1 else "2", **values})
    form = page_form(posted, spec=spec, participant=participant, place=(step, page))
    assert form.is_valid(), form.errors
    return actions.submit_questionnaire_page(
        participant_id=participant.pk,
        spec=spec,
        wave=form.expected_wave,
        page=page,
        given=form.given(),
        rng=random.Random(1),
    )


def through_t1(participant: Participant) -> Place:
    place = Place(Step.T1, 0)
    for page, values in enumerate(T1):
        place = submit(participant, Step.T1, page, values)
    return place


def at_deliberation(poll: Poll, key: str) -> Participant:
    participant = consent(poll, key)
    through_t1(participant)
    spec = poll_spec(poll)
    for page in range(len(spec.positions) + 1):
        actions.advance_briefing(participant_id=participant.pk, spec=spec, page=page)
    participant.refresh_from_db()
    assert participant.step == Step.DELIBERATION
    return participant


@pytest.fixture
def poll() -> Poll:
    return make_poll(design={"control_share": 0.0, "group_size": 4})


def test_consent_starts_t1_and_a_replayed_form_finds_the_same_participant(poll: Poll) -> None:
    first = consent(poll)
    again = consent(poll)
    assert first.pk == again.pk and Participant.objects.count() == 1
    assert (first.step, first.page) == (Step.T1, 0)
    assert sorted(first.option_order) == sorted(poll_spec(poll).option_keys())
    assert first.step_times == {"welcome": 12.0}


def test_a_page_submitted_twice_stores_one_answer_set(poll: Poll) -> None:
    participant = consent(poll)
    assert submit(participant, Step.T1, 0, T1[0]) == Place(Step.T1, 1)
    # The same page again (a double click, Back then submit) is a replay, not a second set.
    assert submit(participant, Step.T1, 0, {**T1[0], "q-rate_exit": "4"}) == Place(Step.T1, 1)
    rows = Answer.objects.filter(participant=participant, wave=1)
    assert rows.count() == 3
    assert rows.get(question__key="rate_exit").value == 4


def test_the_last_t1_page_assigns_the_arm_and_opens_the_briefing(poll: Poll) -> None:
    participant = consent(poll)
    assert through_t1(participant) == Place(Step.BRIEFING, 0)
    participant.refresh_from_db()
    assert participant.arm == Participant.Arm.TREATMENT
    assert participant.group is not None and participant.t1_completed_at is not None
    assert sorted(participant.position_order) == ["A", "B"]
    assert participant.briefed_at is not None


def test_t1_is_frozen_once_left(poll: Poll) -> None:
    participant = consent(poll)
    through_t1(participant)
    participant.refresh_from_db()
    before = list(Answer.objects.order_by("pk").values_list("value", flat=True))
    spec = poll_spec(poll)
    place = actions.submit_questionnaire_page(
        participant_id=participant.pk, spec=spec, wave=1, page=0, given=[]
    )
    assert place == Place(Step.BRIEFING, 0)
    assert list(Answer.objects.order_by("pk").values_list("value", flat=True)) == before


def test_the_briefing_records_time_on_each_position(poll: Poll) -> None:
    participant = consent(poll)
    through_t1(participant)
    participant.refresh_from_db()
    spec = poll_spec(poll)
    first = participant.position_order[0]
    assert actions.advance_briefing(participant_id=participant.pk, spec=spec, page=0) == Place(
        Step.BRIEFING, 1
    )
    participant.refresh_from_db()
    assert first in participant.position_seconds
    # A page ahead of the participant moves nothing.
    assert actions.advance_briefing(participant_id=participant.pk, spec=spec, page=2) == Place(
        Step.BRIEFING, 1
    )


def test_reasons_are_stored_once_and_the_participant_goes_on_to_t2(poll: Poll) -> None:
    participant = at_deliberation(poll, "a")
    spec: PollSpec = poll_spec(poll)
    given = [GivenReason("exit", "for", "Fewer deaths.")]
    assert actions.submit_reasons(participant_id=participant.pk, spec=spec, reasons=given) == Place(
        Step.T2, 0
    )
    # Sent again from a page kept by the browser: the step is closed, nothing changes.
    later = [GivenReason("exit", "against", "Changed my mind.")]
    assert actions.submit_reasons(participant_id=participant.pk, spec=spec, reasons=later) == Place(
        Step.T2, 0
    )
    assert list(Reason.objects.values_list("stance", "text")) == [("for", "Fewer deaths.")]


def test_a_reason_is_reported_once_per_reader_and_never_by_its_author(poll: Poll) -> None:
    author = at_deliberation(poll, "a")
    reader = at_deliberation(poll, "b")
    spec = poll_spec(poll)
    actions.submit_reasons(
        participant_id=author.pk, spec=spec, reasons=[GivenReason("exit", "for", "Peace.")]
    )
    reason = Reason.objects.get()
    author.refresh_from_db()
    assert not actions.report_reason(participant=author, reason_id=reason.pk)
    assert actions.report_reason(participant=reader, reason_id=reason.pk)
    assert not actions.report_reason(participant=reader, reason_id=reason.pk)
    reason.refresh_from_db()
    assert (reason.state, reason.report_count) == (Reason.State.REPORTED, 1)


def test_a_reason_of_another_group_cannot_be_reported(poll: Poll) -> None:
    author = at_deliberation(poll, "a")
    stranger = at_deliberation(poll, "b")
    Participant.objects.filter(pk=stranger.pk).update(group=99)
    stranger.refresh_from_db()
    actions.submit_reasons(
        participant_id=author.pk,
        spec=poll_spec(poll),
        reasons=[GivenReason("aid", "against", "Too slow.")],
    )
    assert not actions.report_reason(participant=stranger, reason_id=Reason.objects.get().pk)
    assert Reason.objects.get().report_count == 0


def test_the_return_link_can_be_kept_before_any_wait(poll: Poll) -> None:
    participant = at_deliberation(poll, "a")
    token = tokens.return_token(participant.public_id)
    assert invitations.returning_participant(token) is None
    actions.keep_return_link(participant_id=participant.pk)
    actions.keep_return_link(participant_id=participant.pk)
    found = invitations.returning_participant(token)
    assert found is not None and found.pk == participant.pk
    assert actions.return_for_t2(participant_id=participant.pk) == Place(Step.DELIBERATION, 0)


def test_the_language_choice_is_remembered_only_when_it_changes(poll: Poll) -> None:
    participant = consent(poll)
    actions.record_language(participant=participant, language="uk")
    assert Participant.objects.get(pk=participant.pk).language == "uk"
    unsaved = Participant(poll=poll, language="en")
    actions.record_language(participant=unsaved, language="uk")
    assert unsaved.pk is None and Participant.objects.count() == 1
