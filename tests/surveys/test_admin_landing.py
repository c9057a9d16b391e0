"""The organisers' landing page (the admin's index): their polls with status, completions today,
reasons waiting and the next step; nobody sees a poll they do not organise or read."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from results.models import Grant
from surveys.admin.landing import start_of_today
from surveys.models import Participant, Poll, Reason
from tests.factories import make_poll
from tests.surveys.admin_fixtures import client_for, poll_with_activity, staff

pytestmark = pytest.mark.django_db


def lines_of(user: object) -> dict[str, object]:
    response = client_for(user).get(reverse("admin:index"))  # type: ignore[arg-type]
    assert response.status_code == 200
    return {line.poll.slug: line for line in response.context["poll_lines"]}


def test_each_poll_shows_its_counts_and_moderation_comes_first() -> None:
    poll = poll_with_activity("alpha")
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.OPEN)
    # One completion yesterday: counted in all, not today.
    yesterday = start_of_today() - timedelta(hours=2)
    Participant.objects.create(
        poll=poll,
        arm="control",
        consented_at=yesterday,
        completed_at=yesterday,
        step=Participant.Step.DONE,
    )
    user = staff("olga", polls=(poll,))
    line = lines_of(user)["alpha"]
    completed = poll.participants.completed()
    assert line.completed == completed.count() == 2
    assert line.completed_today == completed.filter(completed_at__gte=start_of_today()).count()
    assert line.completed_today == 1
    assert line.reported == poll.reasons.filter(state=Reason.State.REPORTED).count() == 1
    assert line.next_step == "Moderate 1 reported reason"
    assert line.next_url.endswith(f"?poll__id__exact={poll.pk}&state=reported")

    page = client_for(user).get(reverse("admin:index")).content.decode()
    assert "Your polls" in page and "Moderate 1 reported reason" in page


def test_the_next_step_follows_the_polls_state() -> None:
    draft = make_poll(slug="draft-one")
    Poll.objects.filter(pk=draft.pk).update(status=Poll.Status.DRAFT)
    invite = make_poll(slug="invite-one")
    Poll.objects.filter(pk=invite.pk).update(status=Poll.Status.OPEN, access=Poll.Access.INVITATION)
    closed = make_poll(slug="closed-one")
    Poll.objects.filter(pk=closed.pk).update(status=Poll.Status.CLOSED)
    lines = lines_of(staff("olga", polls=(draft, invite, closed)))
    assert lines["draft-one"].next_url == reverse("admin:surveys_poll_checklist", args=[draft.pk])
    assert lines["invite-one"].next_step == "Invite participants"
    assert lines["closed-one"].next_url == reverse("admin:surveys_poll_results", args=[closed.pk])


def test_only_the_users_own_polls_are_listed_and_a_reader_is_sent_to_results() -> None:
    mine, theirs, granted = make_poll(slug="mine"), make_poll(slug="theirs"), make_poll(slug="read")
    staff("other", polls=(theirs,))
    user = staff("olga", polls=(mine,))
    Grant.objects.create(user=user, poll=granted)
    lines = lines_of(user)
    assert set(lines) == {"mine", "read"}
    assert lines["read"].next_url == reverse("admin:surveys_poll_results", args=[granted.pk])
    assert timezone.is_aware(start_of_today())
