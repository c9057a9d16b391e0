"""Withdrawal: a participant leaves a poll and takes everything they gave with them; only the
fact that someone withdrew is kept, and results recompute without them. Attackers cannot
withdraw anyone else."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from results.compute.recompute import recompute_poll, stale_poll_ids
from results.models import ResultSnapshot
from surveys.journey import actions, tokens
from surveys.models import (
    Answer,
    Participant,
    Poll,
    Reason,
    ReasonReport,
    ReminderAddress,
    Withdrawal,
)
from tests.factories import make_poll
from tests.surveys.test_journey import start, walk
from tests.surveys.test_schedule import finish_t1, in_days, scheduled_poll

pytestmark = pytest.mark.django_db
Step = Participant.Step


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


def waiting(poll: Poll) -> tuple[Client, Participant]:
    """A control participant who finished T1 and waits for T2 (with a return link)."""
    client = Client()
    participant, location = finish_t1(client, poll, arm="control")
    client.post(location, {})
    participant.refresh_from_db()
    assert participant.step == Step.WAIT
    return client, participant


def withdraw_by_link(client: Client, poll: Poll, participant: Participant) -> Any:
    """What a participant does: open the return link, follow "withdraw", confirm."""
    token = tokens.return_token(participant.public_id)
    assert client.get(f"/r/{token}/")["Location"] == f"/p/{poll.slug}/wait/"
    wait = client.get(f"/p/{poll.slug}/wait/").content.decode()
    assert f'href="/p/{poll.slug}/withdraw/"' in wait
    confirm = client.get(f"/p/{poll.slug}/withdraw/")
    assert confirm.status_code == 200
    assert "This cannot be undone." in confirm.content.decode()
    assert Participant.objects.filter(pk=participant.pk).exists()  # a GET changes nothing
    return client.post(f"/p/{poll.slug}/withdraw/")


def test_withdrawing_by_the_return_link_deletes_everything_and_keeps_only_that_it_happened() -> (
    None
):
    poll = scheduled_poll(t2_opens=in_days(3))
    # A participant who wrote a reason, reported by someone, and reported another's.
    client, author = waiting(poll)
    _, other = waiting(poll)
    option = poll.options.first()
    mine = Reason.objects.create(
        poll=poll, participant=author, option=option, stance="for", text="Mine."
    )
    theirs = Reason.objects.create(
        poll=poll, participant=other, option=option, stance="against", text="Theirs."
    )
    ReasonReport.objects.create(reason=mine, participant=other)
    ReasonReport.objects.create(reason=theirs, participant=author)
    Reason.objects.filter(pk=theirs.pk).update(report_count=1, state=Reason.State.REPORTED)
    ReminderAddress.objects.create(
        participant=author, poll=poll, email="me@example.org", site="http://testserver"
    )
    answers = Answer.objects.filter(participant=author).count()
    assert answers > 0
    total_answers = Answer.objects.count()

    response = withdraw_by_link(client, poll, author)

    assert response.status_code == 302 and response["Location"] == f"/p/{poll.slug}/withdrawn/"
    assert response.cookies[f"dp-{poll.slug}"].value == ""  # the browser forgets them
    assert not Participant.objects.filter(pk=author.pk).exists()
    assert not Answer.objects.filter(participant_id=author.pk).exists()
    assert Answer.objects.count() == total_answers - answers
    assert not Reason.objects.filter(pk=mine.pk).exists()
    assert not ReasonReport.objects.filter(reason_id=mine.pk).exists()
    assert not ReminderAddress.objects.exists()
    # Their report no longer counts: the other reason is as it was before it.
    theirs.refresh_from_db()
    assert (theirs.report_count, theirs.state) == (0, Reason.State.VISIBLE)
    assert not ReasonReport.objects.filter(reason=theirs).exists()
    # What is kept: one row with the poll and the time, and hashes of links nobody else has.
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.poll_id == poll.pk
    assert withdrawal.return_token_hash == author.return_token_hash
    kept = {f.name for f in Withdrawal._meta.get_fields()}
    assert kept == {"id", "poll", "withdrawn_at", "return_token_hash", "invitation_token_hash"}
    # The other participant is untouched.
    assert Participant.objects.filter(pk=other.pk).exists()
    page = client.get(response["Location"])
    assert page.status_code == 200 and "You have withdrawn" in page.content.decode()
    # The return link now says so, politely, in the language asked for; so does the cookie's
    # old place, which sends them to the poll's start.
    token = tokens.return_token(author.public_id)
    again = Client().get(f"/r/{token}/", {"lang": "uk"})
    assert again.status_code == 410
    assert "Ви відмовилися від участі" in again.content.decode()
    assert client.get(f"/p/{poll.slug}/wait/")["Location"] == f"/p/{poll.slug}/"


def test_an_invited_participants_link_says_they_withdrew() -> None:
    from surveys.journey.invitations import create_invitations

    poll = make_poll(design={"access": "invitation"})
    (invitation,) = create_invitations(poll=poll, count=1)
    client = Client()
    assert client.get(f"/i/{invitation.token}/").status_code == 302
    participant = Participant.objects.get()
    start(client, poll)
    assert client.post(f"/p/{poll.slug}/withdraw/").status_code == 302
    assert not Participant.objects.filter(pk=participant.pk).exists()
    response = Client().get(f"/i/{invitation.token}/")
    assert response.status_code == 410 and "You have withdrawn" in response.content.decode()


def test_a_completed_participant_withdraws_and_results_recompute_without_them(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    poll = make_poll(design={"control_share": 0.5, "group_size": 4})
    clients = []
    for _ in range(3):
        client = Client()
        walk(client, poll, start(client, poll))
        clients.append(client)
    before = recompute_poll(poll.pk)
    assert before.n_participants == 3
    leaving = Participant.objects.completed().order_by("pk").first()
    assert leaving is not None
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = clients[0].post(f"/p/{poll.slug}/withdraw/")
    assert response.status_code == 302
    assert callbacks, "a recompute is scheduled on commit, as on completion"
    latest = ResultSnapshot.objects.filter(poll=poll).latest("computed_at")
    assert latest.pk != before.pk and latest.n_participants == 2
    assert leaving.public_id not in (latest.contributions or {})
    assert Participant.objects.completed().count() == 2
    assert Withdrawal.objects.filter(poll=poll).count() == 1


def test_a_withdrawal_makes_the_results_stale_for_the_reconciler() -> None:
    poll = make_poll(design={"control_share": 0.5, "group_size": 4})
    client = Client()
    walk(client, poll, start(client, poll))
    recompute_poll(poll.pk)
    assert stale_poll_ids() == []
    participant = Participant.objects.get()
    assert actions.withdraw(participant_id=participant.pk) is True
    assert poll.pk in stale_poll_ids()
    # A repeated withdrawal (a second POST, a second tab) finds nobody and records nothing.
    assert actions.withdraw(participant_id=participant.pk) is False
    assert Withdrawal.objects.count() == 1


def test_a_participant_in_progress_withdraws_without_a_recompute(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    poll = make_poll()
    client = Client()
    participant = start(client, poll)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(f"/p/{poll.slug}/withdraw/")
    assert callbacks == []
    assert not Participant.objects.filter(pk=participant.pk).exists()


# --- attacks ----------------------------------------------------------------------------------


def test_a_get_never_withdraws_and_a_cross_site_post_without_the_csrf_token_is_refused() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    client, participant = waiting(poll)
    csrf_checked = Client(enforce_csrf_checks=True)
    csrf_checked.cookies = client.cookies  # the victim's browser, cookie and all
    assert csrf_checked.get(f"/p/{poll.slug}/withdraw/").status_code == 200
    assert csrf_checked.post(f"/p/{poll.slug}/withdraw/").status_code == 403
    assert Participant.objects.filter(pk=participant.pk).exists()
    assert not Withdrawal.objects.exists()


def test_wrong_forged_or_other_polls_credentials_withdraw_nobody() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    _, victim = waiting(poll)
    attacker = Client()
    # No cookie: sent to the poll's start; nothing deleted.
    assert attacker.post(f"/p/{poll.slug}/withdraw/")["Location"] == f"/p/{poll.slug}/"
    # A forged cookie (the victim's public id, signed with a guessed key) is no participant.
    attacker.cookies[f"dp-{poll.slug}"] = f"{victim.public_id}:forged-signature"
    assert attacker.post(f"/p/{poll.slug}/withdraw/")["Location"] == f"/p/{poll.slug}/"
    # A forged return link is the one 404, not a way in.
    assert attacker.get(f"/r/{victim.public_id}/").status_code == 404
    assert attacker.get("/r/not-a-token/").status_code == 404
    # Their own participation elsewhere reaches only their own row.
    other_poll = make_poll(slug="other-poll")
    mine = start(attacker, other_poll)
    assert attacker.post(f"/p/{other_poll.slug}/withdraw/").status_code == 302
    assert not Participant.objects.filter(pk=mine.pk).exists()
    assert Participant.objects.filter(pk=victim.pk).exists()
    assert Withdrawal.objects.filter(poll=poll).count() == 0


def test_a_revoked_invitation_cannot_withdraw_through_an_old_cookie() -> None:
    poll = make_poll()
    client = Client()
    participant = start(client, poll)
    Participant.objects.filter(pk=participant.pk).update(revoked_at=timezone.now())
    assert client.post(f"/p/{poll.slug}/withdraw/")["Location"] == f"/p/{poll.slug}/"
    assert Participant.objects.filter(pk=participant.pk).exists()


def test_after_the_poll_closes_the_return_link_still_offers_withdrawal(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    _, participant = waiting(poll)
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.CLOSED)
    back = Client()
    response = back.get(f"/r/{tokens.return_token(participant.public_id)}/")
    closed = back.get(response["Location"])
    assert closed.status_code == 410
    assert f'href="/p/{poll.slug}/withdraw/"' in closed.content.decode()
    # A stranger at the closed poll is not offered it (nothing of theirs is there).
    stranger = Client().get(f"/p/{poll.slug}/")
    assert "/withdraw/" not in stranger.content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        assert back.post(f"/p/{poll.slug}/withdraw/").status_code == 302
    assert not Participant.objects.filter(pk=participant.pk).exists()
    assert Withdrawal.objects.filter(poll=poll).count() == 1
