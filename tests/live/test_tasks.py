"""The moderator's deadlines through a real Celery worker on Redis: the task queued for the
room's version at its due moment advances the room on time, with no sweeper running."""

import datetime as dt
import subprocess
import time
from collections.abc import Callable

import pytest
from channels.layers import get_channel_layer

from surveys.live import moderator
from surveys.live.models import Room, RoomLog
from tests.live.conftest import make_room

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"not reached within {timeout} s")


def test_the_worker_opens_the_room_and_moves_on_at_each_deadline(
    celery_worker_process: subprocess.Popen,
) -> None:
    assert get_channel_layer() is not None
    room = make_room(starts_at=dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=2), item_seconds=3)
    assert moderator.open_room(room_id=room.pk) == []  # not yet: a task waits for the start

    wait_for(lambda: Room.objects.get(pk=room.pk).state == Room.State.ITEM, timeout=20)
    opened = Room.objects.get(pk=room.pk)
    # Opened on time: at the slot's start, not at the next sweep.
    assert opened.opened_at - room.slot.starts_at < dt.timedelta(seconds=1.5)

    wait_for(lambda: Room.objects.get(pk=room.pk).item_index == 1, timeout=20)
    moved = RoomLog.objects.filter(room=room, action="item").order_by("id")
    second_item = moved[1]
    assert second_item.at - opened.deadline < dt.timedelta(seconds=1.5)
    assert second_item.detail == {"item": 1}
    assert Room.objects.get(pk=room.pk).version == 2
