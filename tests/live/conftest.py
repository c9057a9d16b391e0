"""Fixtures of the live-room tests: a poll with a slot, a room and four seated members."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from surveys.live.models import Room, RoomMember, SessionSlot
from surveys.models import Participant, Poll
from tests.factories import make_poll


def make_room(
    *, poll: Poll | None = None, members: int = 4, group: int = 1, language: str = "en", **slot: Any
) -> Room:
    """A room in a slot that starts now, with ``members`` treatment participants seated."""
    poll = poll or make_poll(slug=f"live-{group}")
    settings: dict[str, Any] = {
        "starts_at": timezone.now(),
        "capacity": 40,
        "item_seconds": 60,
        "question_seconds": 60,
        **slot,
    }
    slot_row = SessionSlot.objects.create(poll=poll, **settings)
    room = Room.objects.create(poll=poll, slot=slot_row, language=language, group=group)
    for number in range(1, members + 1):
        participant = Participant.objects.create(
            poll=poll, arm="treatment", group=group, language=language, group_language=language
        )
        RoomMember.objects.create(room=room, participant=participant, pseudonym=f"Member {number}")
    return room


@pytest.fixture
def room(db: None) -> Room:
    return make_room()


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)
