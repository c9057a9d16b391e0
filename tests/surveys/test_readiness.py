"""The readiness checklist: each rule fails with a precise message and passes when fixed."""

import pytest

from surveys.definition.readiness import check_poll
from surveys.models import Poll, Question
from tests.factories import make_poll, small_definition

pytestmark = pytest.mark.django_db


def check(poll: Poll, key: str):
    return next(c for c in check_poll(poll).checks if c.key == key)


def test_a_complete_small_poll_passes_every_check() -> None:
    readiness = check_poll(make_poll())
    assert readiness.ready, [c.problems for c in readiness.failing]
    assert [c.key for c in readiness.checks] == [
        "positions",
        "paired",
        "ranking",
        "languages",
        "knowledge",
        "control",
        "schedule",
        "definition",
    ]


def test_a_poll_with_one_position_is_not_ready() -> None:
    poll = make_poll()
    poll.positions.filter(key="B").delete()
    result = check(poll, "positions")
    assert not result.ok
    assert result.problems == [
        "The poll has 1 position; add another, or remove it (then it has no briefing)."
    ]
    assert result.fix == "positions"


def test_a_poll_without_positions_is_ready_and_the_checklist_says_it_has_no_briefing() -> None:
    poll = make_poll()
    poll.options.update(position=None)
    poll.positions.all().delete()
    result = check(poll, "positions")
    assert result.ok and result.problems == []
    assert result.note == (
        "No briefing: the poll has no positions, so the treatment group goes from the first "
        "questionnaire to the deliberation without reading one."
    )
    assert check_poll(poll).ready, [c.problems for c in check_poll(poll).failing]


def test_a_paired_item_asked_once_and_an_unrated_option_are_named() -> None:
    poll = make_poll()
    Question.objects.filter(poll=poll, key="rate_exit").update(waves="t1")
    Question.objects.filter(poll=poll, key="rate_aid").delete()
    problems = check(poll, "paired").problems
    assert "Option 'aid' has no rating question." in problems
    assert any("'rate_exit' is a paired item" in p and "T1 only" in p for p in problems)


def test_ranking_needs_a_ranking_question_and_three_options() -> None:
    poll = make_poll()
    poll.questions.filter(kind="ranking").delete()
    poll.questions.filter(option__key="escalate").delete()
    poll.options.filter(key="escalate").delete()
    problems = check(poll, "ranking").problems
    assert problems == [
        "Add a question of kind 'ranking of the options'.",
        "A ranking needs at least three options; the poll has 2.",
    ]


def test_missing_translations_are_listed_with_where_they_are() -> None:
    poll = make_poll()
    option = poll.options.get(key="aid")
    option.text = {"en": "Aid only"}
    option.save()
    poll.title = {"en": "English only"}
    poll.save()
    problems = check(poll, "languages").problems
    assert "poll title: missing uk" in problems
    assert "options 'aid' text: missing uk" in problems


def test_a_knowledge_item_without_a_valid_answer_key_fails() -> None:
    poll = make_poll()
    Question.objects.filter(poll=poll, key="k_capital").update(answer="odesa")
    assert check(poll, "knowledge").problems == [
        "Knowledge item 'k_capital' has no valid answer key."
    ]


@pytest.mark.parametrize(("share", "ok"), [(0.0, True), (0.3, True), (0.05, False), (0.95, False)])
def test_control_share_must_leave_people_in_each_arm(share: float, ok: bool) -> None:
    poll = make_poll(design={**small_definition()["design"], "control_share": share})
    assert check(poll, "control").ok is ok


def test_control_share_is_checked_against_the_invitations_made() -> None:
    from surveys.journey.invitations import create_invitations

    poll = make_poll(
        design={"control_share": 0.5, "group_size": 8, "access": "invitation"}, status="draft"
    )
    create_invitations(poll=poll, count=10)
    result = check(poll, "control")
    assert not result.ok
    assert "With 10 invitations one arm gets fewer than 8 people" in result.problems[0]
    create_invitations(poll=poll, count=10)
    assert check(poll, "control").ok
