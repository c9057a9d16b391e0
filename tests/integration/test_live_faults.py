"""A live room survives its ASGI server being killed: members post over real WebSockets to a
daphne subprocess on the Redis channel layer, the server gets SIGKILL mid-session, the room's
deadline passes while it is down (a real Celery worker moves the moderator on), the server comes
back and the members reconnect with the last seq they saw. No acknowledged message is lost,
none is delivered or stored twice, and the room is at the right item with the right deadline."""

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websockets
from django.core import signing

from surveys.journey.access import COOKIE_SALT, cookie_name
from surveys.live.models import Message, Room, RoomMember
from tests.conftest import ROOT, worker_env
from tests.event_loops import in_own_thread
from tests.integration.processes import PrivateRedis, Processes, wait_until
from tests.live.conftest import make_room

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
PORT = 8141
ITEM_SECONDS = 14
URL = f"ws://127.0.0.1:{PORT}/ws/live/"
DAPHNE = (sys.executable, "-m", "daphne", "-b", "127.0.0.1")
Event = dict[str, Any]


class Server:
    """``daphne deliberate.asgi:application`` as production runs it, on the private Redis."""

    def __init__(self, redis: PrivateRedis, tmp: Path) -> None:
        self.redis, self.tmp, self.process = redis, tmp, None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = open(self.tmp / f"daphne-{self.runs}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [*DAPHNE, "-p", str(PORT), "deliberate.asgi:application"],
            cwd=ROOT,
            env=worker_env(self.redis.url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.answers, 60, "daphne to answer /healthz")

    def answers(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"daphne exited; see {self.tmp}/daphne-{self.runs}.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


@pytest.fixture
def server(private_redis: PrivateRedis, tmp_path: Path) -> Any:
    running = Server(private_redis, tmp_path)
    try:
        yield running
    finally:
        running.stop()


class Member:
    """One member's client: what it saw (by seq) and which posts were acknowledged."""

    def __init__(self, seat: RoomMember) -> None:
        name = cookie_name(seat.room.poll.slug)
        value = signing.get_cookie_signer(salt=name + COOKIE_SALT).sign(seat.participant.public_id)
        self.cookie = f"{name}={value}"
        self.room_id = seat.room_id
        self.seen: list[int] = []
        self.acked: dict[str, int] = {}
        self.state: Event = {}
        self.socket: Any = None

    async def connect(self) -> None:
        self.socket = await websockets.connect(
            f"{URL}{self.room_id}/",
            origin=f"http://127.0.0.1:{PORT}",
            additional_headers={"Cookie": self.cookie},
        )
        await self.send({"type": "join", "since": self.contiguous()})
        await self.read_until(lambda event: event["type"] == "synced")

    def contiguous(self) -> int:
        """The last seq up to which nothing is missing (fan-out order is not seq order)."""
        seen, last = set(self.seen), 0
        while last + 1 in seen:
            last += 1
        return last

    async def send(self, frame: Event) -> None:
        await self.socket.send(json.dumps(frame))

    def take(self, event: Event) -> None:
        if event["type"] in ("message", "nudge"):
            self.seen.append(event["seq"])
        elif event["type"] == "ack" and "seq" in event:
            self.acked[event["client_id"]] = event["seq"]
        elif event["type"] == "state":
            self.state = event

    async def read_until(self, done: Any, timeout: float = 10) -> None:
        while True:
            event = json.loads(await asyncio.wait_for(self.socket.recv(), timeout))
            self.take(event)
            if done(event):
                return

    async def drain(self, seconds: float) -> None:
        """Read whatever arrives for a while (the connection may drop meanwhile)."""
        try:
            while True:
                self.take(json.loads(await asyncio.wait_for(self.socket.recv(), seconds)))
        except (TimeoutError, websockets.ConnectionClosed):
            return


def test_killing_the_asgi_server_loses_no_acknowledged_message_and_the_room_resumes(
    server: Server, processes: Processes
) -> None:
    processes.workers("live")
    server.start()
    room = make_room(item_seconds=ITEM_SECONDS, question_seconds=60)
    seats = list(RoomMember.objects.filter(room=room).select_related("room__poll", "participant"))
    members = [Member(seat) for seat in seats[:3]]

    async def before_the_crash() -> None:
        for member in members:
            await member.connect()
        for round_number in range(4):
            for number, member in enumerate(members):
                client_id = f"m{number}-{round_number}"
                await member.send({"type": "post", "client_id": client_id, "text": client_id})
                await member.read_until(
                    lambda event, c=client_id: event["type"] == "ack" and event["client_id"] == c
                )
        # Posts sent just before the crash: their acks may never arrive.
        for number, member in enumerate(members):
            await member.send({"type": "post", "client_id": f"late-{number}", "text": "late"})
        await asyncio.gather(*(member.drain(0.3) for member in members))

    in_own_thread(lambda: asyncio.run(before_the_crash()))
    opened = Room.objects.get(pk=room.pk)
    assert opened.state == Room.State.ITEM and opened.item_index == 0
    server.kill()  # SIGKILL: no goodbye to anyone

    # While the server is down, the item's deadline passes and the worker moves the room on.
    wait_until(lambda: Room.objects.get(pk=room.pk).item_index == 1, ITEM_SECONDS + 30, "item 1")
    moved = Room.objects.get(pk=room.pk)
    server.start()

    async def after_the_restart() -> None:
        for member in members:
            await member.connect()  # join with the last seq seen
        for number, member in enumerate(members):  # retry the posts whose ack may be lost
            await member.send({"type": "post", "client_id": f"late-{number}", "text": "late"})
            await member.read_until(lambda event: event["type"] == "ack")
        await asyncio.gather(*(member.drain(1.0) for member in members))
        for member in members:
            await member.socket.close()

    in_own_thread(lambda: asyncio.run(after_the_restart()))

    stored = list(Message.objects.filter(room=room).order_by("seq"))
    assert [message.seq for message in stored] == list(range(1, len(stored) + 1))
    for number, member in enumerate(members):
        # Each client saw every message exactly once.
        assert sorted(member.seen) == [m.seq for m in stored], number
        # Every acknowledged post is stored once, under the seq its ack gave.
        for client_id, seq in member.acked.items():
            assert Message.objects.get(member=seats[number], client_id=client_id).seq == seq
    assert Message.objects.filter(client_id__startswith="late-").count() == 3
    assert len({m.client_id for m in stored if m.member_id}) == 15
    # The moderator is where the worker put it, with that deadline, and says so to clients.
    assert (moved.item_index, moved.version) == (1, opened.version + 1)
    assert abs(moved.deadline - (opened.deadline + dt.timedelta(seconds=ITEM_SECONDS))) < (
        dt.timedelta(seconds=2)
    )
    # On this shared machine the restart may take longer than an item: compare the clients'
    # last state with the room as it is now.
    final = Room.objects.get(pk=room.pk)
    assert final.item_index >= 1
    for member in members:
        assert (member.state["version"], member.state["item"]) == (
            final.version,
            final.item_index,
        )
        assert member.state["deadline"] == final.deadline.isoformat()
    # One prompt per transition, in agenda order (the question phase's repeats the last item).
    prompts = [m.item_index for m in stored if m.kind == "prompt"]
    assert len(prompts) == final.version and prompts == sorted(prompts)
