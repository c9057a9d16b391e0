"""The room's WebSocket through Channels' communicator: every message type, refusals, and the
exactly-once sync on (re)connect. The layer is the in-memory one (no REDIS_URL in tests); the
Redis layer is exercised by the fault test with a real server."""

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.core import signing

from deliberate.asgi import application
from surveys.journey.access import COOKIE_SALT, cookie_name
from surveys.live import actions
from surveys.live.consumers import CLOSE_REFUSED, CLOSE_REMOVED, MAX_FRAME_BYTES
from surveys.live.models import Message, Room, RoomMember
from tests.event_loops import in_own_thread
from tests.live.conftest import make_room

pytestmark = pytest.mark.django_db(transaction=True)
Event = dict[str, Any]


def cookie_for(member: RoomMember) -> bytes:
    name = cookie_name(member.room.poll.slug)
    value = signing.get_cookie_signer(salt=name + COOKIE_SALT).sign(member.participant.public_id)
    return f"{name}={value}".encode()


def communicator(
    room_id: int,
    cookie: bytes | None,
    origin: bytes = b"http://127.0.0.1",
    host: bytes = b"127.0.0.1",
) -> Any:
    headers = [(b"origin", origin), (b"host", host)] + ([(b"cookie", cookie)] if cookie else [])
    return WebsocketCommunicator(application, f"/ws/live/{room_id}/", headers=headers)


async def connected(member: RoomMember, since: int = 0) -> tuple[Any, list[Event]]:
    """A member's open socket after join; returns it and what the join sent (to 'synced')."""
    socket = communicator(member.room_id, cookie_for(member))
    ok, _ = await socket.connect()
    assert ok
    await socket.send_json_to({"type": "join", "since": since})
    return socket, await until(socket, "synced")


async def until(socket: Any, kind: str, timeout: float = 5) -> list[Event]:
    """Events up to and including the first of ``kind``."""
    events = []
    while True:
        event = await socket.receive_json_from(timeout=timeout)
        events.append(event)
        if event["type"] == kind:
            return events


async def state_where(socket: Any, check: Callable[[Event], bool]) -> Event:
    """The first state event that passes ``check`` (joins and votes send states in between)."""
    while True:
        state = (await until(socket, "state"))[-1]
        if check(state):
            return state


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    in_own_thread(async_to_sync(scenario))


@pytest.fixture
def members(db: None) -> list[RoomMember]:
    room = make_room()
    return list(RoomMember.objects.filter(room=room).select_related("room__poll", "participant"))


def test_join_gets_the_state_and_posts_reach_everyone_once(members: list[RoomMember]) -> None:
    first, second, *_ = members

    async def scenario() -> None:
        a, joined = await connected(first)
        state = joined[0]
        assert state["you"] == first.pk
        assert state["type"] == "state" and state["state"] == "item" and state["item"] == 0
        assert [item["key"] for item in state["items"]] == ["exit", "aid", "escalate"]
        assert [event["kind"] for event in joined if event["type"] == "message"] == ["prompt"]
        b, _ = await connected(second)
        # b's arrival changes who is present.
        await state_where(a, lambda state: all(m["present"] for m in state["members"][:2]))

        await a.send_json_to({"type": "post", "client_id": "c-1", "text": "Hello all"})
        ack = (await until(a, "ack"))[-1]
        assert ack == {"type": "ack", "client_id": "c-1", "seq": 2, "new": True}
        own = (await until(a, "message"))[-1]
        assert own["text"] == "Hello all" and own["client_id"] == "c-1"
        seen = (await until(b, "message"))[-1]
        assert (seen["seq"], seen["member"], seen["client_id"]) == (2, "Member 1", None)
        # A retry (the ack was lost) is acknowledged with the same seq and sent to no one.
        await a.send_json_to({"type": "post", "client_id": "c-1", "text": "Hello all"})
        assert await a.receive_json_from() == {
            "type": "ack",
            "client_id": "c-1",
            "seq": 2,
            "new": False,
        }
        await b.send_json_to({"type": "post", "client_id": "r", "text": "Hi", "reply_to": 2})
        reply = (await until(a, "message"))[-1]
        assert (reply["reply_to"], reply["seq"]) == (2, 3)
        assert await a.receive_nothing(timeout=0.3)
        await a.disconnect()
        await b.disconnect()

    run(scenario)
    assert Message.objects.filter(client_id="c-1").count() == 1


def test_a_reconnect_gets_exactly_the_missed_messages(members: list[RoomMember]) -> None:
    first, second, *_ = members

    async def scenario() -> None:
        a, _ = await connected(first)
        await a.send_json_to({"type": "post", "client_id": "1", "text": "one"})
        last = (await until(a, "message"))[-1]["seq"]
        await a.disconnect()  # the phone went to sleep
        b, _ = await connected(second)
        for number in ("two", "three"):
            await b.send_json_to({"type": "post", "client_id": number, "text": number})
            await until(b, "message")
        a, joined = await connected(first, since=last)
        assert [e["text"] for e in joined if e["type"] == "message"] == ["two", "three"]
        assert joined[-1] == {"type": "synced", "last_seq": last + 2}
        await b.send_json_to({"type": "post", "client_id": "four", "text": "four"})
        assert (await until(a, "message"))[-1]["seq"] == last + 3
        # A sync (the page woke up) resends what follows its seq, and nothing after it twice.
        await a.send_json_to({"type": "sync", "since": last + 2})
        synced = await until(a, "synced")
        assert [e["text"] for e in synced if e["type"] == "message"] == ["four"]
        assert await a.receive_nothing(timeout=0.5)
        await a.disconnect()
        await b.disconnect()

    run(scenario)


def test_bad_frames_are_answered_with_a_specific_error_and_store_nothing(
    members: list[RoomMember],
) -> None:
    first = members[0]
    sent: list[tuple[Any, str, str]] = [
        ("{not json", "malformed", "not valid JSON"),
        ("[1, 2]", "malformed", "JSON object"),
        ('{"type": 5}', "malformed", "JSON object"),
        ('{"type": "shout"}', "unknown_type", "shout"),
        ('{"type": "__init__"}', "unknown_type", "__init__"),
        (json.dumps({"type": "post", "client_id": "x", "text": "y" * 1001}), "too_long", "1000"),
        (json.dumps({"type": "post", "client_id": "x", "text": ""}), "invalid", "text"),
        (json.dumps({"type": "post", "text": "hi"}), "invalid", "client_id"),
        (json.dumps({"type": "flag", "seq": "1"}), "invalid", "seq"),
        (json.dumps({"type": "flag", "seq": 1}), "invalid", "seq"),  # the prompt: not a chat
        (json.dumps({"type": "question_vote", "question": 99}), "invalid", "question"),
        (json.dumps({"type": "join", "since": -1}), "invalid", "since"),
        ("x" * (MAX_FRAME_BYTES + 1), "too_large", str(MAX_FRAME_BYTES)),
    ]

    async def scenario() -> None:
        a, _ = await connected(first)
        for frame, code, words in sent:
            await a.send_to(text_data=frame)
            error = (await until(a, "error"))[-1]
            assert error["code"] == code, frame[:40]
            assert words in error["message"] or words == error.get("field"), error
        await a.disconnect()

    run(scenario)
    assert Message.objects.filter(member__isnull=False).count() == 0


def test_out_of_turn_posts_are_refused(db: None) -> None:
    room = make_room(turn_seconds=30)
    first, second, *_ = RoomMember.objects.filter(room=room).select_related(
        "room__poll", "participant"
    )

    async def scenario() -> None:
        a, _ = await connected(first)
        b, _ = await connected(second)
        await a.send_json_to({"type": "raise_hand"})
        turn = (await until(b, "turn"))[-1]
        assert (turn["member"], turn["member_id"]) == ("Member 1", first.pk)
        await b.send_json_to({"type": "post", "client_id": "b1", "text": "Me too"})
        error = (await until(b, "error"))[-1]
        assert error["code"] == "not_your_turn" and error["client_id"] == "b1"
        await a.send_json_to({"type": "post", "client_id": "a1", "text": "My point"})
        message = (await until(b, "message"))[-1]
        assert message["in_turn"] is True
        await a.send_json_to({"type": "lower_hand"})
        assert (await until(b, "turn"))[-1]["member"] is None
        await a.disconnect()
        await b.disconnect()

    run(scenario)
    assert list(Message.objects.filter(member__isnull=False).values_list("client_id")) == [("a1",)]


def test_strangers_and_members_of_other_rooms_are_refused_and_nothing_is_stored(
    members: list[RoomMember],
) -> None:
    room = members[0].room
    other = RoomMember.objects.select_related("room__poll", "participant").get(
        room=make_room(poll=room.poll, group=2, members=1)
    )
    forged = cookie_for(members[0])[:-2] + b"xx"

    async def scenario() -> None:
        for cookie, origin in [
            (cookie_for(other), b"http://127.0.0.1"),  # seated elsewhere
            (None, b"http://127.0.0.1"),
            (forged, b"http://127.0.0.1"),
            (cookie_for(members[0]), b"https://evil.example"),  # another site's page
        ]:
            socket = communicator(room.pk, cookie, origin)
            ok, code = await socket.connect()
            assert not ok, (cookie, origin)
            if origin == b"http://127.0.0.1":
                assert code == CLOSE_REFUSED
        socket = communicator(999_999, cookie_for(other))
        assert (await socket.connect())[0] is False

    run(scenario)
    assert not Message.objects.exists()
    assert not RoomMember.objects.filter(joined_at__isnull=False).exists()


def test_hands_votes_flags_questions_and_removal(members: list[RoomMember]) -> None:
    first, *_, fourth = members
    organiser = get_user_model().objects.create_user("organiser", password="x")

    async def scenario() -> None:
        sockets = [(await connected(member))[0] for member in members]
        a, b, c, d = sockets
        await a.send_json_to({"type": "raise_hand"})
        await state_where(b, lambda state: state["queue"] == [first.pk])
        await a.send_json_to({"type": "lower_hand"})
        await state_where(b, lambda state: state["queue"] == [])

        await a.send_json_to({"type": "post", "client_id": "rude", "text": "Rude words"})
        seq = (await until(d, "message"))[-1]["seq"]
        await b.send_json_to({"type": "flag", "seq": seq})
        await c.send_json_to({"type": "flag", "seq": seq})
        for socket in sockets:
            assert (await until(socket, "hidden"))[-1] == {
                "type": "hidden",
                "seq": seq,
                "by": "flags",
            }

        await c.send_json_to({"type": "question_draft", "client_id": "q", "text": "Who pays?"})
        ack = (await until(c, "ack"))[-1]
        await d.send_json_to({"type": "question_vote", "question": ack["question"]})
        state = await state_where(a, lambda state: any(q["votes"] for q in state["questions"]))
        assert state["questions"] == [
            {
                "id": ack["question"],
                "text": "Who pays?",
                "member": "Member 3",
                "member_id": members[2].pk,
                "votes": 1,
                "voters": [fourth.pk],
            }
        ]

        for socket in (a, b, c):
            await socket.send_json_to({"type": "vote_move_on"})
        state = await state_where(d, lambda state: state["item"] == 1)
        assert state["item"] == 1 and state["move_on_votes"] == 0

        await database_sync_to_async(actions.remove_member)(member_id=fourth.pk, user=organiser)
        error = (await until(d, "error"))[-1]
        assert error["code"] == "removed"
        assert (await d.receive_output(timeout=2))["code"] == CLOSE_REMOVED
        for socket in (a, b, c):
            await socket.disconnect()

    run(scenario)


def test_only_the_nudged_member_reads_the_nudge(members: list[RoomMember]) -> None:
    first, second, *_ = members

    async def scenario() -> None:
        a, _ = await connected(first)
        b, _ = await connected(second)
        await a.send_json_to({"type": "post", "client_id": "x", "text": "I spoke"})
        await until(b, "message")
        await until(a, "message")
        room = await database_sync_to_async(Room.objects.get)(pk=first.room_id)
        await database_sync_to_async(Room.objects.filter(pk=room.pk).update)(
            nudge_at=room.opened_at
        )
        await b.send_json_to({"type": "ping"})  # a client's ping ticks the moderator
        nudge = (await until(b, "nudge"))[-1]
        assert nudge["to"] == second.pk and "Member 2" in nudge["text"]
        # The others get its seq (their sequence stays gapless), not its text.
        stub = (await until(a, "nudge"))[-1]
        assert (stub["seq"], stub["to"], stub["text"]) == (nudge["seq"], second.pk, "")
        await a.disconnect()
        await b.disconnect()

    run(scenario)
