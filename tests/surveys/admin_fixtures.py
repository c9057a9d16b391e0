"""Helpers of the organiser-admin tests (not a test module): people with roles, a poll with
activity, and the fields a browser would post from a rendered form."""

from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from surveys.models import Participant, Poll, Reason
from tests.factories import make_poll


def staff(username: str, *, polls: tuple[Poll, ...] = (), can_add: bool = True) -> User:
    """A staff user who organises ``polls`` (and may create polls unless told otherwise)."""
    user = User.objects.create_user(username, password="x", is_staff=True)
    if can_add:
        user.user_permissions.add(Permission.objects.get(codename="add_poll"))
    for poll in polls:
        poll.organisers.add(user)
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def poll_with_activity(slug: str, **overrides: Any) -> Poll:
    """A poll with participants at several steps and one reported reason."""
    poll = make_poll(slug=slug, **overrides)
    now = timezone.now()
    Participant.objects.create(poll=poll, token_hash=f"{slug}-untouched".ljust(64, "0")[:64])
    Participant.objects.create(
        poll=poll,
        token_hash=f"{slug}-t1".ljust(64, "1")[:64],
        label="Alice",
        contact="alice@example.org",
        consented_at=now,
        step=Participant.Step.T1,
        step_times={"welcome": 30},
    )
    done = Participant.objects.create(
        poll=poll,
        arm=Participant.Arm.TREATMENT,
        consented_at=now - timedelta(minutes=20),
        briefed_at=now - timedelta(minutes=15),
        completed_at=now,
        step=Participant.Step.DONE,
        step_times={"welcome": 20, "t1": 300, "briefing": 200, "deliberation": 100, "t2": 250},
        flags=["too_fast"],
    )
    Reason.objects.create(
        poll=poll,
        participant=done,
        option=poll.options.first(),
        stance=Reason.Stance.FOR,
        text=f"A reason in {slug} <script>alert(1)</script>",
        state=Reason.State.REPORTED,
        report_count=2,
    )
    return poll


class _FormFields(HTMLParser):
    """The values a browser would submit for the form with ``form_id`` (or the first form)."""

    def __init__(self, form_id: str | None) -> None:
        super().__init__()
        self.form_id, self.inside, self.done = form_id, False, False
        self.data: list[tuple[str, str]] = []
        self.select: str | None = None
        self.multiple = False
        self.options: list[tuple[str, bool]] = []
        self.textarea: str | None = None
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        present = {key for key, _ in attrs}
        if tag == "form" and not self.done:
            self.inside = self.form_id is None or a.get("id") == self.form_id
        if not self.inside or "disabled" in present or not a.get("name"):
            if tag == "option" and self.select is not None:
                self.options.append((a.get("value", ""), "selected" in present))
            return
        # The inline formsets' blank template is never submitted by the admin's JavaScript.
        if "__prefix__" in a["name"]:
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in {"submit", "button", "image", "reset", "file"}:
                return
            if kind in {"checkbox", "radio"} and "checked" not in present:
                return
            self.data.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self.select, self.options = a["name"], []
            self.multiple = "multiple" in present
        elif tag == "textarea":
            self.textarea, self.text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside, self.done = False, True
        elif tag == "select" and self.select is not None:
            chosen = [value for value, selected in self.options if selected]
            if not chosen and not self.multiple and self.options:
                chosen = [self.options[0][0]]
            self.data.extend((self.select, value) for value in chosen)
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            # Browsers drop the one newline that follows <textarea>.
            self.data.append((self.textarea, self.text.removeprefix("\n")))
            self.textarea = None


def form_fields(html: str, form_id: str | None = None) -> dict[str, list[str]]:
    """Every field of a rendered form as the browser would post it: a complete, valid payload
    to replay as someone else, so a refused POST is refused for who sent it, not for what."""
    parser = _FormFields(form_id)
    parser.feed(html)
    fields: dict[str, list[str]] = {}
    for name, value in parser.data:
        fields.setdefault(name, []).append(value)
    return fields
