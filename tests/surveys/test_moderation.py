"""Moderation: reported reasons first; hide and restore, each decision logged with who and when."""

import pytest
from django.urls import reverse

from surveys.admin.moderation import moderate_reasons
from surveys.models import ModerationDecision, Reason
from tests.surveys.admin_fixtures import client_for, poll_with_activity, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def reason() -> Reason:
    return poll_with_activity("alpha").reasons.get()


def test_hiding_logs_who_and_when_and_a_repeat_changes_nothing(reason: Reason) -> None:
    moderator = staff("olga", polls=(reason.poll,))
    reasons = Reason.objects.filter(pk=reason.pk)
    assert moderate_reasons(reasons=reasons, action="hide", moderator=moderator) == 1
    assert moderate_reasons(reasons=reasons, action="hide", moderator=moderator) == 0
    reason.refresh_from_db()
    assert reason.state == Reason.State.HIDDEN
    decision = ModerationDecision.objects.get()
    assert (decision.action, decision.moderator, decision.reason) == ("hide", moderator, reason)
    assert decision.decided_at is not None


def test_restoring_makes_a_reason_visible_and_takes_it_out_of_the_reported_queue(
    reason: Reason,
) -> None:
    moderator = staff("olga", polls=(reason.poll,))
    moderate_reasons(reasons=Reason.objects.all(), action="restore", moderator=moderator)
    reason.refresh_from_db()
    assert reason.state == Reason.State.VISIBLE
    assert list(ModerationDecision.objects.values_list("action", flat=True)) == ["restore"]


def test_an_unknown_action_is_refused(reason: Reason) -> None:
    with pytest.raises(ValueError, match="Unknown moderation action 'delete'"):
        moderate_reasons(reasons=Reason.objects.all(), action="delete", moderator=None)


def test_the_queue_lists_reported_reasons_first(reason: Reason) -> None:
    newer = Reason.objects.create(
        poll=reason.poll,
        participant=reason.poll.participants.exclude(pk=reason.participant_id).first(),
        option=reason.option,
        stance="against",
        text="A newer visible reason",
    )
    client = client_for(staff("olga", polls=(reason.poll,)))
    response = client.get(reverse("admin:surveys_reason_changelist"))
    shown = list(response.context["cl"].result_list)
    assert shown == [reason, newer]


def test_the_row_button_hides_and_then_restores(reason: Reason) -> None:
    user = staff("olga", polls=(reason.poll,))
    client = client_for(user)
    client.post(reverse("admin:surveys_reason_moderate", args=[reason.pk, "hide"]))
    reason.refresh_from_db()
    assert reason.state == Reason.State.HIDDEN
    page = client.get(reverse("admin:surveys_reason_changelist")).content.decode()
    assert "moderate-restore" in page
    client.post(reverse("admin:surveys_reason_moderate", args=[reason.pk, "restore"]))
    reason.refresh_from_db()
    assert reason.state == Reason.State.VISIBLE
    actions = ModerationDecision.objects.order_by("decided_at").values_list("action", "moderator")
    assert list(actions) == [("hide", user.pk), ("restore", user.pk)]


def test_a_get_on_the_moderation_url_changes_nothing(reason: Reason) -> None:
    client = client_for(staff("olga", polls=(reason.poll,)))
    client.get(reverse("admin:surveys_reason_moderate", args=[reason.pk, "hide"]))
    reason.refresh_from_db()
    assert reason.state == Reason.State.REPORTED
    assert not ModerationDecision.objects.exists()
