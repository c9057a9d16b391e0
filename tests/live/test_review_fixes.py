"""Fixes of the live rooms' security review: one rate limit per member across transports,
votes and flags of present members only, restored messages reaching the room, revoked
participants' sockets, the socket's origin port, and votes for one's own question."""

import datetime as dt
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from surveys.live import actions, client, moderator
from surveys.live.consumers import CLOSE_REFUSED, CLOSE_REMOVED
from surveys.live.models import Message, PanelVote, RoomMember
from surveys.models import Participant
from tests.live.conftest import make_room
from tests.live.test_consumers import communicator, connected, cookie_for, run, until
from tests.live.test_views import client_of, opened, seated

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def one_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request of a test falls in one rate window (the clock would split a burst)."""
    monkeypatch.setattr(client.time, "time", lambda: 1_000_000.0)


def post(number: int) -> dict[str, Any]:
    return {"type": "post", "client_id": f"c-{number}", "text": f"message {number}"}


def test_the_socket_and_the_fallback_share_one_write_budget_per_member() -> None:
    room = opened(make_room(members=3))
    person = seated(room)[0]
    member = RoomMember.objects.select_related("room__poll", "participant").get(participant=person)
    answers: list[dict[str, Any]] = []

    async def scenario() -> None:
        # Two tabs of the same member: 4 posts on each socket.
        first, _ = await connected(member)
        second, _ = await connected(member)
        for number in range(8):
            socket = first if number % 2 else second
            await socket.send_json_to(post(number))
            answers.append((await until(socket, "ack"))[-1])
        await first.disconnect()
        await second.disconnect()

    run(scenario)
    assert [a["type"] for a in answers] == ["ack"] * 8
    browser = client_of(person)
    fallback = [
        browser.post("/p/live-1/live/send/", json.dumps(post(n)), content_type="application/json")
        for n in range(8, 20)
    ]
    assert [r.status_code for r in fallback] == [200, 200] + [400] * 10
    refused = fallback[-1].json()["events"][0]
    assert refused["code"] == "too_fast" and refused["client_id"] == "c-19"
    assert Message.objects.filter(room=room, member=member).count() == client.WRITE_COUNT
    # Another member has a budget of their own.
    other = RoomMember.objects.filter(room=room).exclude(pk=member.pk).first()
    assert client.handle(member=other, payload=post(99))[0]["type"] == "ack"


def test_reads_have_a_looser_budget_and_the_polling_fallback_is_limited_too() -> None:
    room = opened(make_room(members=2))
    person = seated(room)[0]
    member = RoomMember.objects.get(participant=person)
    pings = [client.handle(member=member, payload={"type": "ping"}) for _ in range(20)]
    assert all(p == [{"type": "pong"}] for p in pings)
    browser = client_of(person)
    polls = [browser.get("/p/live-1/live/events/?since=0") for _ in range(12)]
    assert [r.status_code for r in polls] == [200] * 10 + [429] * 2
    assert polls[-1].json()["events"][0]["code"] == "too_fast"
    # Writes are counted apart from reads.
    assert client.handle(member=member, payload=post(1))[0]["type"] == "ack"
    assert Message.objects.filter(room=room, member=member).count() == 1


def joined_room(members: int) -> tuple[Any, list[RoomMember]]:
    """An opened room whose members have all joined (so all are present)."""
    room = opened(make_room(members=members))
    seats = list(RoomMember.objects.filter(room=room).order_by("pk"))
    for seat in seats:
        actions.join(member=seat)
    return room, [RoomMember.objects.get(pk=seat.pk) for seat in seats]


def test_move_on_votes_of_removed_or_departed_members_do_not_count(admin_user: Any) -> None:
    room, seats = joined_room(6)
    for voter in seats[:2]:
        assert actions.vote_move_on(member=voter) is False
    actions.remove_member(member_id=seats[0].pk, user=admin_user)
    # The second voter leaves: not heard from for longer than the presence window.
    RoomMember.objects.filter(pk=seats[1].pk).update(
        last_seen_at=timezone.now() - dt.timedelta(seconds=moderator.PRESENT_SECONDS + 5)
    )
    # 1 of the 4 present members wants to move on: no majority (before, 3 votes > 4 / 2).
    assert actions.vote_move_on(member=seats[2]) is False
    room.refresh_from_db()
    assert room.item_index == 0
    state = moderator.room_state(room)
    assert (state["move_on_votes"], state["move_on_voters"]) == (1, [seats[2].pk])
    assert state["move_on_needed"] == 3
    # Two more present members make 3 of 4: the room moves on.
    assert actions.vote_move_on(member=seats[3]) is False
    assert actions.vote_move_on(member=seats[4]) is True
    room.refresh_from_db()
    assert room.item_index == 1


def test_flags_of_a_removed_member_do_not_help_hide_a_message(admin_user: Any) -> None:
    _, seats = joined_room(4)
    message = actions.post_message(member=seats[0], client_id="m-1", text="An opinion")[0]
    actions.flag_message(member=seats[1], seq=message.seq)
    actions.remove_member(member_id=seats[1].pk, user=admin_user)
    # Threshold for 3 present is 2: the removed member's flag is not one of them.
    actions.flag_message(member=seats[2], seq=message.seq)
    message.refresh_from_db()
    assert message.hidden_at is None
    actions.flag_message(member=seats[3], seq=message.seq)
    message.refresh_from_db()
    assert message.hidden_by == Message.HiddenBy.FLAGS


def test_a_message_shown_again_reaches_members_already_in_the_room(admin_user: Any) -> None:
    room = opened(make_room(members=3))
    people = seated(room)
    author, reader, poller = (
        RoomMember.objects.select_related("room__poll", "participant").get(participant=p)
        for p in people
    )
    message = actions.post_message(member=author, client_id="m-1", text="Worth reading")[0]
    polling = client_of(people[2])
    assert polling.get(f"/p/live-1/live/events/?since={message.seq}").status_code == 200
    seen: list[dict[str, Any]] = []

    async def scenario() -> None:
        socket, joined = await connected(reader)
        assert joined[-1]["last_seq"] == message.seq
        await database_sync_to_async(actions.hide_message)(message_id=message.pk, user=admin_user)
        seen.append((await until(socket, "hidden"))[-1])
        await database_sync_to_async(actions.unhide_message)(message_id=message.pk, user=admin_user)
        seen.append((await until(socket, "shown"))[-1])
        await socket.disconnect()

    run(scenario)
    assert seen[0] == {"type": "hidden", "seq": message.seq, "by": "organiser"}
    shown = seen[1]
    assert (shown["seq"], shown["text"], shown["hidden"]) == (message.seq, "Worth reading", False)
    assert shown["client_id"] is None  # another member's message: no client id
    # The polling client, which already has this seq, is told to draw its text again.
    events = polling.get(f"/p/live-1/live/events/?since={message.seq}").json()["events"]
    restored = [e for e in events if e["type"] == "shown"]
    assert [(e["seq"], e["text"]) for e in restored] == [(message.seq, "Worth reading")]
    assert not [e for e in events if e["type"] == "hidden"]
    # A reconnecting socket's sync says the same.
    synced = client.handle(member=poller, payload={"type": "sync", "since": message.seq})
    assert [e["text"] for e in synced if e["type"] == "shown"] == ["Worth reading"]


def test_flags_before_an_organiser_showed_a_message_again_do_not_hide_it_again(
    admin_user: Any,
) -> None:
    _, seats = joined_room(6)
    message = actions.post_message(member=seats[0], client_id="m-1", text="Contested")[0]
    for flagger in seats[1:3]:
        actions.flag_message(member=flagger, seq=message.seq)
    message.refresh_from_db()
    assert message.hidden_by == Message.HiddenBy.FLAGS  # 2 flags of 6 present
    actions.unhide_message(message_id=message.pk, user=admin_user)
    # One more flag: before, old 2 + 1 reached the threshold and overrode the review.
    actions.flag_message(member=seats[3], seq=message.seq)
    message.refresh_from_db()
    assert message.hidden_at is None
    # Enough new flags after the review hide it again.
    actions.flag_message(member=seats[4], seq=message.seq)
    message.refresh_from_db()
    assert message.hidden_by == Message.HiddenBy.FLAGS


def test_a_revoked_participants_open_socket_can_no_longer_post() -> None:
    room = opened(make_room(members=2))
    member = RoomMember.objects.select_related("room__poll", "participant").first()
    answers: list[dict[str, Any]] = []
    closed: list[Any] = []

    async def scenario() -> None:
        socket, _ = await connected(member)
        await database_sync_to_async(Participant.objects.filter(pk=member.participant_id).update)(
            revoked_at=timezone.now()
        )
        await socket.send_json_to(post(1))
        answers.append((await until(socket, "error"))[-1])
        closed.append(await socket.receive_output(timeout=5))

    run(scenario)
    assert answers[0]["code"] == "removed" and answers[0]["client_id"] == "c-1"
    assert closed[0] == {"type": "websocket.close", "code": CLOSE_REMOVED}
    assert not Message.objects.filter(room=room, member=member).exists()


@pytest.mark.parametrize(
    ("origin", "host", "accepted"),
    [
        (b"http://127.0.0.1:8140", b"127.0.0.1:8140", True),  # the page's own origin
        (b"https://127.0.0.1", b"127.0.0.1", True),  # default ports (behind a TLS proxy)
        (b"http://localhost:9999", b"127.0.0.1:8140", False),  # another host and port
        (b"http://127.0.0.1:9999", b"127.0.0.1:8140", False),  # same host, another port
        (b"http://127.0.0.1:8140", b"127.0.0.1", False),  # a port where the site has none
        (b"http://127.0.0.1:x", b"127.0.0.1", False),  # not a port
    ],
)
def test_the_socket_accepts_only_the_pages_own_host_and_port(
    origin: bytes, host: bytes, accepted: bool
) -> None:
    member = RoomMember.objects.select_related("room__poll", "participant").get(
        room=make_room(members=1)
    )
    outcome: list[Any] = []

    async def scenario() -> None:
        socket = communicator(member.room_id, cookie_for(member), origin, host)
        outcome.append(await socket.connect())
        await socket.disconnect()

    run(scenario)
    assert outcome[0][0] is accepted
    if not accepted:
        assert outcome[0][1] == CLOSE_REFUSED


def test_a_member_cannot_vote_for_their_own_question() -> None:
    _, seats = joined_room(3)
    author, other = seats[0], seats[1]
    drafted = client.handle(
        member=author, payload={"type": "question_draft", "client_id": "q-1", "text": "Why?"}
    )
    question = drafted[0]["question"]
    refused = client.handle(member=author, payload={"type": "question_vote", "question": question})
    assert refused[0]["code"] == "own_question" and refused[0]["field"] == "question"
    assert not PanelVote.objects.filter(question_id=question).exists()
    assert (
        client.handle(member=other, payload={"type": "question_vote", "question": question}) == []
    )
    assert list(
        PanelVote.objects.filter(question_id=question).values_list("member", flat=True)
    ) == [other.pk]
