"""Draft, open, closed: with confirmation, and opening only when the readiness check passes."""

from collections.abc import Iterator

import pytest
from django.urls import reverse
from django.utils import translation

from surveys.admin.lifecycle import TransitionError, change_status
from surveys.models import Poll
from tests.factories import make_poll
from tests.surveys.admin_fixtures import client_for, staff

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def in_english() -> Iterator[None]:
    # The messages are translated: a Ukrainian page an earlier test served leaves its language
    # active in the thread.
    with translation.override("en"):
        yield


def test_a_ready_draft_opens_and_closes_and_reopens() -> None:
    poll = make_poll(status="draft")
    user = staff("olga", polls=(poll,))
    assert change_status(poll_id=poll.pk, transition="open", by=user).status == "open"
    assert change_status(poll_id=poll.pk, transition="close", by=user).status == "closed"
    assert change_status(poll_id=poll.pk, transition="reopen", by=user).status == "open"


def test_an_unready_draft_refuses_to_open_and_stays_draft() -> None:
    poll = make_poll(status="draft")
    poll.positions.filter(key="B").delete()
    with pytest.raises(TransitionError, match="At least two positions"):
        change_status(poll_id=poll.pk, transition="open", by=None)
    poll.refresh_from_db()
    assert poll.status == Poll.Status.DRAFT


def test_a_draft_cannot_be_closed() -> None:
    poll = make_poll(status="draft")
    with pytest.raises(TransitionError, match="A draft poll cannot be closed"):
        change_status(poll_id=poll.pk, transition="close", by=None)


def test_opening_in_the_admin_asks_for_confirmation_first() -> None:
    poll = make_poll(status="draft")
    client = client_for(staff("olga", polls=(poll,)))
    url = reverse("admin:surveys_poll_lifecycle", args=[poll.pk, "open"])
    page = client.get(url).content.decode()
    assert "Yes, open the poll" in page and "hidden from participants until the poll closes" in page
    poll.refresh_from_db()
    assert poll.status == Poll.Status.DRAFT
    response = client.post(url)
    assert response.status_code == 302
    poll.refresh_from_db()
    assert poll.status == Poll.Status.OPEN


def test_opening_an_unready_poll_in_the_admin_shows_the_checklist() -> None:
    poll = make_poll(status="draft")
    poll.options.filter(key="escalate").delete()
    client = client_for(staff("olga", polls=(poll,)))
    response = client.post(
        reverse("admin:surveys_poll_lifecycle", args=[poll.pk, "open"]), follow=True
    )
    page = response.content.decode()
    assert "not ready to open" in page and "A ranking of at least three options" in page
    poll.refresh_from_db()
    assert poll.status == Poll.Status.DRAFT


def test_results_are_hidden_from_participants_until_close_unless_chosen() -> None:
    poll = make_poll(status="open")
    assert not poll.results_visible_to_participants()
    poll.results_public = True
    assert poll.results_visible_to_participants()
    poll.results_public = False
    poll.status = Poll.Status.CLOSED
    assert poll.results_visible_to_participants()
