"""Four members in one live room, each in their own Chromium context, against the real stack:
the ASGI server (daphne through runserver) and a Celery worker on Redis as a subprocess each,
the channel layer on Redis, PostgreSQL as the record.

The agenda moves on by its timer (seconds here) and by a majority's vote; the member who says
nothing is nudged, and only they read it; a message flagged by two members is hidden on every
page; a member who drops out and comes back gets exactly the messages they missed; the room's
questions reach the organisers' plenary page; and the transcript stored equals what was shown.
"""

import datetime as dt
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import signing
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from surveys.journey.access import COOKIE_SALT, cookie_name
from surveys.live import rooms
from surveys.live.models import Message, PanelQuestion, Room, SessionSlot
from surveys.models import Participant, Poll
from tests.conftest import ROOT, WORKER_FLAGS, worker_env
from tests.e2e.conftest import axe_violations, watch
from tests.factories import make_poll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PORT = 8153
BASE = f"http://127.0.0.1:{PORT}"
ITEM_SECONDS = 8
SLUG = "live-browser"
START_SECONDS = 180


def started(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def stopped(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_for(ready: Any, process: subprocess.Popen, what: str, log: Path) -> None:
    # Generous: the machine's two cores are shared with other test runs.
    deadline = time.monotonic() + START_SECONDS
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{what} did not start within {START_SECONDS} s; see {log}")
        time.sleep(0.5)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except OSError:
        return False
    return True


@pytest.fixture
def asgi_server(celery_on_redis: str, transactional_db: None, tmp_path: Path) -> Iterator[str]:
    """The whole app under daphne (runserver serves static files too) and a Celery worker for
    the moderator's deadlines, both on the test database, Redis as broker and channel layer."""
    from deliberate.celery import app

    env = {**worker_env(celery_on_redis), "DEBUG": "1"}
    worker = started(
        [sys.executable, "-m", "celery", "-A", "deliberate", "worker", *WORKER_FLAGS],
        env,
        tmp_path / "worker.log",
    )
    server = started(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{PORT}", "--noreload"],
        env,
        tmp_path / "server.log",
    )
    try:
        wait_for(lambda: app.control.ping(timeout=1), worker, "the worker", tmp_path)
        wait_for(lambda: _answers(f"{BASE}/"), server, "the ASGI server", tmp_path)
        yield BASE
    finally:
        stopped(server)
        stopped(worker)


def live_room_poll() -> tuple[Poll, SessionSlot, list[Participant]]:
    poll = make_poll(slug=SLUG)
    Poll.objects.filter(pk=poll.pk).update(deliberation="live", group_size=4)
    poll.refresh_from_db()
    slot = SessionSlot.objects.create(
        poll=poll,
        starts_at=timezone.now() + dt.timedelta(minutes=5),
        capacity=10,
        item_seconds=60,
        question_seconds=120,
    )
    people = []
    for _ in range(4):
        person = Participant.objects.create(
            poll=poll,
            arm=Participant.Arm.TREATMENT,
            step=Participant.Step.LIVE,
            language="en",
            consented_at=timezone.now(),
            group=1,
            group_language="en",
        )
        rooms.book(participant_id=person.pk, slot_id=slot.pk)
        people.append(person)
    return poll, slot, people


def member_page(browser: Any, person: Participant) -> Any:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    signer = signing.get_cookie_signer(salt=cookie_name(SLUG) + COOKIE_SALT)
    context.add_cookies(
        [{"name": cookie_name(SLUG), "value": signer.sign(person.public_id), "url": BASE}]
    )
    return context.new_page()


def shown_chat(page: Any) -> list[tuple[str, str]]:
    """(author, text) of the members' messages on the page, in order."""
    rows = page.locator("#messages li.message:not([class*='kind-']):not(.pending)")
    return [
        (row.locator(".author").inner_text(), row.locator(".text").inner_text())
        for row in rows.all()
    ]


def vote(pages: list[Any], then: str) -> None:
    """Three of the four vote to move on (a majority of those present); every page moves."""
    for page in pages[:3]:
        page.click("#vote-button")
    for page in pages:
        expect(page.locator("#phase")).to_have_text(then, timeout=10_000)


def post(page: Any, text: str) -> None:
    page.fill("#message-text", text)
    page.click("#composer button[type=submit]")


def test_four_members_deliberate_in_one_room(
    browser: Any, axe_script: Path, asgi_server: str
) -> None:
    poll, slot, people = live_room_poll()
    pages = [member_page(browser, person) for person in people]
    csp = [watch(page, axe_script) for page in pages]
    # In the lobby before the start: each arrival is recorded.
    for page in pages:
        page.goto(f"{BASE}/p/{SLUG}/live/")
        expect(page.locator("#lobby")).to_be_visible()
    # The slot starts (moved to now rather than waited for: the machine may be slow), and the
    # lobby pages, reloading themselves, go to the room.
    SessionSlot.objects.filter(pk=slot.pk).update(starts_at=timezone.now())
    for page in pages:
        expect(page.locator("#room")).to_be_visible(timeout=30_000)
    room = Room.objects.get(slot=slot)
    assert room.members.count() == 4
    a, b, c, d = pages
    for page in pages:
        expect(page.locator("#phase")).to_have_text("Option 1 of 3", timeout=10_000)
        expect(page.locator("#room")).to_have_attribute("data-connection", "online")
    names = [page.locator(".you strong").inner_text() for page in pages]

    # Item 1 (a minute): three members speak, two flag a message, and a majority moves on.
    post(a, "Talks need a way out for him.")
    post(b, "You are all fools.")
    post(c, "Pressure first, talks later.")
    for page in pages:
        chat = page.locator("#messages li.message:not([class*='kind-']):not(.pending)")
        expect(chat).to_have_count(3)
    # Two flags (a third of four, at least two) hide b's message on every page.
    rude = "You are all fools."
    for page in (a, c):
        page.locator("#messages li", has_text=rude).locator("button.flag").click()
    for page in pages:
        expect(page.locator("#messages li.is-hidden")).to_have_count(1)
        expect(page.locator("#messages")).not_to_contain_text(rude)
    # The organiser shortens the items from here on: the next ones run on a short timer.
    SessionSlot.objects.filter(pk=slot.pk).update(item_seconds=ITEM_SECONDS)
    vote(pages, "Option 2 of 3")

    # Item 2: three speak at once; the fourth, silent, is nudged at half time, and only they
    # read it; then the timer ends the item.
    post(a, "On aid: more of it, sooner.")
    post(b, "On aid: it only prolongs the war.")
    post(c, "On aid: with conditions.")
    nudge = d.locator("#messages li.kind-nudge")
    expect(nudge).to_have_count(1, timeout=ITEM_SECONDS * 1000)
    expect(nudge).to_contain_text(names[3])
    for page in (a, b, c):
        expect(page.locator("#messages li.kind-nudge")).to_have_count(0)
    for page in pages:
        expect(page.locator("#phase")).to_have_text("Option 3 of 3", timeout=ITEM_SECONDS * 1000)

    # d drops out; what is said meanwhile reaches them exactly once when they come back.
    d.context.set_offline(True)
    post(a, "While d is away, one.")
    post(c, "While d is away, two.")
    expect(a.locator("#messages")).to_contain_text("While d is away, two.")
    d.context.set_offline(False)
    d.reload()
    expect(d.locator("#room")).to_have_attribute("data-connection", "online")
    for text in ("While d is away, one.", "While d is away, two."):
        expect(d.locator("#messages li", has_text=text)).to_have_count(1)
    vote(pages, "Questions for the expert panel")

    # The question phase: a drafts, b and c vote.
    a.fill("#question-text", "Would an amnesty break international law?")
    a.click("#question-form button[type=submit]")
    for page in (b, c):
        row = page.locator("#question-list li", has_text="amnesty")
        row.locator("button").click()
        expect(row.locator(".voted")).to_be_visible()
    question = PanelQuestion.objects.get(room=room)
    deadline = time.monotonic() + 10
    while question.votes.count() < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    organiser = User.objects.create_user("organiser", is_staff=True)
    poll.organisers.add(organiser)
    admin = Client()
    admin.force_login(organiser)
    plenary = admin.get(f"/admin/live/room/plenary/{poll.pk}/").content.decode()
    assert "Would an amnesty break international law?" in plenary
    assert "2 votes" in plenary

    # What every page showed is the stored transcript (hidden text withheld alike).
    stored = [
        (m.member.pseudonym, "" if m.hidden_at else m.text)
        for m in Message.objects.filter(room=room, kind="chat").select_related("member")
    ]
    hidden = "This message was hidden after flags from the group, pending review."
    for page in pages:
        shown = [(who, "" if text == hidden else text) for who, text in shown_chat(page)]
        assert shown == stored
    assert all(found == [] for found in csp)
    assert axe_violations(a) == []
    for page in pages:
        page.context.close()
