"""The email reminder: asked for only on the see-you page, stored apart from the answers, sent
once when the participant's T2 opens (also with two workers at once), then deleted; deleted
too when the poll closes or the participant withdraws."""

import email
import threading
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.mail.backends.locmem import EmailBackend
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from surveys.journey import actions, reminders, tokens
from surveys.models import Participant, Poll, ReminderAddress
from tests.surveys.test_schedule import finish_t1, in_days, scheduled_poll

Step = Participant.Step


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


def waiting(poll: Poll, *, lang: str = "en") -> tuple[Client, Participant]:
    client = Client()
    participant, location = finish_t1(client, poll, arm="control")
    client.post(location, {})
    if lang != "en":
        client.get(f"/p/{poll.slug}/wait/", {"lang": lang})
    participant.refresh_from_db()
    assert participant.step == Step.WAIT
    return client, participant


def ask_for_reminder(client: Client, poll: Poll, address: str) -> Any:
    return client.post(f"/p/{poll.slug}/reminder/", {"action": "send", "email": address})


def waiting_with_reminder(
    address: str = "me@example.org", *, lang: str = "en"
) -> tuple[Poll, Client, Participant]:
    """A poll whose T2 opens in three days, and one participant waiting for it who left
    ``address`` for the reminder."""
    poll = scheduled_poll(t2_opens=in_days(3))
    client, participant = waiting(poll, lang=lang)
    ask_for_reminder(client, poll, address)
    return poll, client, participant


def open_t2(poll: Poll) -> None:
    Poll.objects.filter(pk=poll.pk).update(t2_opens=timezone.now() - timedelta(minutes=1))


@pytest.mark.django_db
def test_the_address_is_asked_only_on_the_see_you_page_and_kept_apart() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    client = Client()
    participant, location = finish_t1(client, poll, arm="control")
    # Not on the page before the wait, and not taken from anyone who is not waiting.
    assert 'type="email"' not in client.get(location).content.decode()
    assert ask_for_reminder(client, poll, "early@example.org").status_code == 302
    assert not ReminderAddress.objects.exists()
    client.post(location, {})
    wait = client.get(f"/p/{poll.slug}/wait/").content.decode()
    assert 'type="email"' in wait and "send me a reminder" in wait.lower()
    response = ask_for_reminder(client, poll, "me@example.org")
    assert response["Location"] == f"/p/{poll.slug}/wait/?reminder=saved#reminder"
    page = client.get(response["Location"]).content.decode()
    assert "We will remind you at <strong>me@example.org</strong>" in page
    stored = ReminderAddress.objects.get()
    assert (stored.participant_id, stored.email, stored.site) == (
        participant.pk,
        "me@example.org",
        "http://testserver",
    )
    # Nothing of it is in the participant's row or their answers.
    participant.refresh_from_db()
    assert "me@example.org" not in str(vars(participant))
    assert not participant.answers.filter(value__icontains="example.org").exists()
    # A second address replaces the first: one row per participant.
    ask_for_reminder(client, poll, "new@example.org")
    assert list(ReminderAddress.objects.values_list("email", flat=True)) == ["new@example.org"]


@pytest.mark.django_db
def test_a_wrong_address_is_named_in_the_participants_language_and_stores_nothing() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    client, _ = waiting(poll, lang="uk")
    response = ask_for_reminder(client, poll, "not an address<script>")
    assert response.status_code == 400
    page = response.content.decode()
    assert "Введіть адресу електронної пошти" in page
    assert 'aria-invalid="true"' in page and "&lt;script&gt;" in page and "<script>" not in page
    assert not ReminderAddress.objects.exists()


@pytest.mark.django_db
def test_the_participant_can_delete_the_address_again() -> None:
    poll, client, _ = waiting_with_reminder()
    response = client.post(f"/p/{poll.slug}/reminder/", {"action": "forget"})
    assert response["Location"].endswith("?reminder=forgotten#reminder")
    assert not ReminderAddress.objects.exists()
    assert "Your email address is deleted" in client.get(response["Location"]).content.decode()


@pytest.mark.django_db
def test_the_reminder_is_sent_once_when_t2_opens_with_the_return_link_then_deleted() -> None:
    poll, _, participant = waiting_with_reminder(lang="uk")
    assert reminders.send_due_reminders() == 0
    assert mail.outbox == [] and ReminderAddress.objects.count() == 1
    open_t2(poll)
    assert reminders.send_due_reminders() == 1
    assert reminders.send_due_reminders() == 0  # a retry, or beat's next run
    (message,) = mail.outbox
    assert message.to == ["me@example.org"]
    link = f"http://testserver/r/{tokens.return_token(participant.public_id)}/"
    assert link in message.body
    assert message.subject.startswith("Друга анкета відкрита")
    assert not ReminderAddress.objects.exists()
    # The link in the email works: it leads to T2.
    assert Client().get(link.removeprefix("http://testserver"))["Location"] == (
        f"/p/{poll.slug}/t2/1/"
    )


@pytest.mark.django_db
def test_with_a_delay_each_reminder_is_due_from_the_participants_own_t1() -> None:
    poll = scheduled_poll(t2_after="P2D")
    early_client, early = waiting(poll)
    late_client, _late = waiting(poll)
    ask_for_reminder(early_client, poll, "early@example.org")
    ask_for_reminder(late_client, poll, "late@example.org")
    Participant.objects.filter(pk=early.pk).update(
        t1_completed_at=timezone.now() - timedelta(days=2, minutes=1)
    )
    assert reminders.send_due_reminders() == 1
    assert [m.to for m in mail.outbox] == [["early@example.org"]]
    assert list(ReminderAddress.objects.values_list("email", flat=True)) == ["late@example.org"]


@pytest.mark.django_db
def test_someone_who_came_back_on_their_own_gets_no_email_and_the_address_goes() -> None:
    poll, client, _ = waiting_with_reminder()
    open_t2(poll)
    assert client.get(f"/p/{poll.slug}/wait/")["Location"] == f"/p/{poll.slug}/t2/1/"
    reminders.send_due_reminders()
    assert mail.outbox == [] and not ReminderAddress.objects.exists()


@pytest.mark.django_db
def test_closing_the_poll_deletes_the_addresses() -> None:
    poll, client, _ = waiting_with_reminder()
    poll.refresh_from_db()
    poll.status = Poll.Status.CLOSED
    poll.save()  # what the admin does
    assert not ReminderAddress.objects.exists()
    # A poll closed around the models (a bulk update) is swept up by the next run.
    other = scheduled_poll(t2_opens=in_days(3))
    Poll.objects.filter(pk=other.pk).update(slug="other", status=Poll.Status.OPEN)
    client, _ = waiting(Poll.objects.get(pk=other.pk))
    ask_for_reminder(client, Poll.objects.get(pk=other.pk), "me@example.org")
    Poll.objects.filter(pk=other.pk).update(status=Poll.Status.CLOSED)
    assert ReminderAddress.objects.count() == 1
    assert reminders.send_due_reminders() == 0
    assert not ReminderAddress.objects.exists() and mail.outbox == []


@pytest.mark.django_db
def test_withdrawing_deletes_the_address() -> None:
    _, _, participant = waiting_with_reminder()
    actions.withdraw(participant_id=participant.pk)
    assert not ReminderAddress.objects.exists()


class SlowBackend(EmailBackend):
    """The test outbox, with a mail server that takes a while to answer: two workers then
    overlap for certain."""

    def send_messages(self, messages: Any) -> int:
        time.sleep(0.2)
        return super().send_messages(messages)


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_reminder_exactly_once() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    addresses = []
    for number in range(4):
        client, _ = waiting(poll)
        addresses.append(f"p{number}@example.org")
        ask_for_reminder(client, poll, addresses[-1])
    open_t2(poll)
    start = threading.Barrier(2)
    handled: list[int] = []

    def worker() -> None:
        from django.db import connection

        try:
            start.wait()
            handled.append(reminders.send_due_reminders())
        finally:
            connection.close()

    with override_settings(EMAIL_BACKEND=f"{__name__}.SlowBackend"):
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(addresses)
    assert sum(handled) == 4 and all(count > 0 for count in handled)  # both really worked
    assert not ReminderAddress.objects.exists()


@pytest.fixture
def mail_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker process writes its email to files here (Django's file backend)."""
    folder = tmp_path / "mail"
    monkeypatch.setenv("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
    monkeypatch.setenv("EMAIL_FILE_PATH", str(folder))
    return folder


def test_a_real_worker_sends_the_reminder_once_however_often_the_task_runs(
    mail_folder: Path, celery_worker_process: Any
) -> None:
    poll, _, participant = waiting_with_reminder()
    open_t2(poll)
    results = [reminders.send_due_reminders.delay() for _ in range(3)]
    deadline = time.monotonic() + 30
    while ReminderAddress.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # the other two runs finish too
    del results
    files = list(mail_folder.glob("*.log")) if mail_folder.exists() else []
    messages = [
        email.message_from_string(part)
        for path in files
        for part in path.read_text().split("-" * 79)
        if part.strip()
    ]
    assert len(messages) == 1
    assert messages[0]["To"] == "me@example.org"
    assert tokens.return_token(participant.public_id) in messages[0].get_payload()
    assert not ReminderAddress.objects.exists()


@pytest.mark.django_db
def test_a_poll_title_with_a_line_break_does_not_stop_the_reminders() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    Poll.objects.filter(pk=poll.pk).update(title={"en": "A small\npoll"})
    client, _ = waiting(poll)
    ask_for_reminder(client, poll, "me@example.org")
    open_t2(poll)
    assert reminders.send_due_reminders() == 1
    (message,) = mail.outbox
    assert message.subject == "The second questionnaire is open: A small poll"


class RefusingBackend(EmailBackend):
    """A mail server that refuses one recipient."""

    def send_messages(self, messages: Any) -> int:
        if any("refused@example.org" in message.to for message in messages):
            raise OSError("550 mailbox unavailable")
        return super().send_messages(messages)


@pytest.mark.django_db
def test_an_address_the_mail_server_refuses_stays_and_holds_back_no_other() -> None:
    poll = scheduled_poll(t2_opens=in_days(3))
    for address in ("refused@example.org", "fine@example.org"):
        client, _ = waiting(poll)
        ask_for_reminder(client, poll, address)
    open_t2(poll)
    with override_settings(EMAIL_BACKEND=f"{__name__}.RefusingBackend"):
        assert reminders.send_due_reminders() == 1
    assert [m.to for m in mail.outbox] == [["fine@example.org"]]
    assert list(ReminderAddress.objects.values_list("email", flat=True)) == ["refused@example.org"]


@pytest.mark.django_db
def test_without_celery_a_command_sends_the_due_reminders_once() -> None:
    poll, _, _ = waiting_with_reminder("cron@example.org")
    open_t2(poll)
    out = StringIO()
    call_command("sendreminders", stdout=out)
    call_command("sendreminders", stdout=out)
    assert [message.to for message in mail.outbox] == [["cron@example.org"]]
    assert out.getvalue().splitlines() == ["1 reminder(s) handled.", "0 reminder(s) handled."]
    assert not ReminderAddress.objects.exists()
