"""Helpers shared by the organiser-admin tests: people with roles, and a poll with activity."""

from datetime import timedelta
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
