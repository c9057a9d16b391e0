"""The moderator's state machine and the room's write functions, on PostgreSQL."""

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from surveys.live import actions, moderator, tasks
from surveys.live.models import Message, Room, RoomLog, RoomMember
from tests.live.conftest import later, make_room

pytestmark = pytest.mark.django_db


def opened(room: Room) -> list[RoomMember]:
    """Every member joins and the room opens (its slot started); returns the members."""
    members = list(room.members.all())
    for member in members:
        actions.join(member=member)
    room.refresh_from_db()
    assert room.state == Room.State.ITEM
    return members


def fresh(room: Room) -> Room:
    return Room.objects.select_related("slot", "turn_member").get(pk=room.pk)


def test_a_room_waits_for_its_slot_then_walks_the_agenda_to_the_questions_and_closes(
    db: None,
) -> None:
    room = make_room(starts_at=later(120), item_seconds=60, question_seconds=30)
    assert moderator.tick(fresh(room)) == []
    assert fresh(room).state == Room.State.WAITING

    start = later(121)
    events = moderator.tick(fresh(room), now=start)
    room = fresh(room)
    assert (room.state, room.item_index, room.version) == ("item", 0, 1)
    assert room.deadline == start + dt.timedelta(seconds=60)
    assert room.nudge_at == start + dt.timedelta(seconds=30)
    prompt = room.messages.get()
    assert (prompt.seq, prompt.kind, prompt.member) == (1, "prompt", None)
    assert "Option exit" in prompt.text and "1 of 3" in prompt.text
    assert [event["type"] for event in events] == ["message", "state"]

    # Nothing is due a second before the deadline; at the deadline the next item opens.
    # (no member joined, so the half-time nudge has nobody to nudge).
    assert moderator.tick(fresh(room), now=room.deadline - dt.timedelta(seconds=1)) == []
    assert fresh(room).item_index == 0
    for expected in [("item", 1), ("item", 2), ("questions", 2), ("closed", 2)]:
        current = fresh(room)
        moderator.tick(current, now=current.deadline)
        room = fresh(room)
        assert (room.state, room.item_index) == expected
    assert room.version == 5 and room.closed_at is not None and room.deadline is None
    assert list(room.messages.values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    assert list(room.log.values_list("action", flat=True)) == [
        "open",
        "item",
        "item",
        "item",
        "questions",
        "close",
    ]
    assert moderator.tick(fresh(room), now=later(10_000)) == []


def test_a_uk_room_is_prompted_in_ukrainian(db: None) -> None:
    room = make_room(language="uk")
    opened(room)
    prompt = room.messages.get(kind="prompt")
    assert "Option exit (uk)" in prompt.text


def test_a_majority_of_present_members_moves_on(room: Room) -> None:
    members = opened(room)
    assert actions.vote_move_on(member=members[0]) is False
    assert actions.vote_move_on(member=members[0]) is False  # a second vote counts once
    assert actions.vote_move_on(member=members[1]) is False  # 2 of 4 is no majority
    assert fresh(room).item_index == 0
    assert actions.vote_move_on(member=members[2]) is True
    room = fresh(room)
    assert (room.state, room.item_index) == ("item", 1)
    # Members who went away (not seen for a while) do not count: 1 of 2 present is not enough,
    # 2 of 2 is.
    RoomMember.objects.filter(pk__in=[members[2].pk, members[3].pk]).update(
        last_seen_at=timezone.now() - dt.timedelta(seconds=moderator.PRESENT_SECONDS + 1)
    )
    assert actions.vote_move_on(member=members[0]) is False
    assert actions.vote_move_on(member=members[1]) is True
    assert fresh(room).item_index == 2
    assert room.log.filter(action="vote").count() == 5


def test_turns_come_from_the_raised_hands_and_others_wait(db: None) -> None:
    room = make_room(turn_seconds=30)
    first, second, third, _ = opened(room)
    # Without a turn anyone may write.
    actions.post_message(member=third, client_id="t-1", text="Before any turn")

    actions.raise_hand(member=first)
    room = fresh(room)
    assert room.turn_member_id == first.pk and room.turn_deadline is not None
    message, _created = actions.post_message(member=first, client_id="f-1", text="My turn")
    assert message.in_turn is True
    with pytest.raises(actions.Refused) as refused:
        actions.post_message(member=second, client_id="s-1", text="Out of turn")
    assert refused.value.code == "not_your_turn" and "Member 1" in refused.value.message
    assert not Message.objects.filter(client_id="s-1").exists()

    actions.raise_hand(member=second)
    actions.raise_hand(member=third)
    assert moderator.room_state(fresh(room))["queue"] == [second.pk, third.pk]
    # The turn ends at its deadline and passes to the first raised hand.
    moderator.tick(fresh(room), now=fresh(room).turn_deadline)
    assert fresh(room).turn_member_id == second.pk
    # The holder ends the turn early by lowering the hand; the next in the queue gets it.
    actions.lower_hand(member=second)
    assert fresh(room).turn_member_id == third.pk
    actions.lower_hand(member=third)
    room = fresh(room)
    assert room.turn_member_id is None and room.turn_deadline is None
    assert list(room.log.filter(action="turn").values_list("member_id", flat=True)) == [
        first.pk,
        second.pk,
        third.pk,
    ]


def test_hands_are_only_queued_when_turn_taking_is_off(room: Room) -> None:
    first, *_ = opened(room)
    actions.raise_hand(member=first)
    room = fresh(room)
    assert room.turn_member_id is None
    assert moderator.room_state(room)["queue"] == [first.pk]


def test_members_silent_on_an_item_are_nudged_once_at_half_time(room: Room) -> None:
    first, second, third, fourth = opened(room)
    actions.post_message(member=first, client_id="a", text="I think so")
    room = fresh(room)
    half_time = room.nudge_at
    events = moderator.tick(room, now=half_time)
    assert [event["to"] for event in events] == [second.pk, third.pk, fourth.pk]
    assert all(event["type"] == "nudge" for event in events)
    assert "Member 2" in events[0]["text"]
    # Once per item: the next tick (before the deadline) nudges nobody.
    assert moderator.tick(fresh(room), now=half_time + dt.timedelta(seconds=1)) == []
    assert fresh(room).nudge_at is None

    # A member reads their own nudge; the others' keep their seq without their text.
    def seen(member: RoomMember) -> list[str]:
        return [
            moderator.for_member(moderator.message_payload(m), member.pk)["text"][:9]
            for m in actions.messages_since(member=member, seq=1)
        ]

    assert seen(second) == ["I think s", "Member 2,", "", ""]
    assert seen(first) == ["I think s", "", "", ""]


def test_a_retried_post_is_stored_once_and_bad_posts_store_nothing(room: Room) -> None:
    first, second, *_ = opened(room)
    message, created = actions.post_message(member=first, client_id="x-1", text="  Hello  ")
    again, created_again = actions.post_message(member=first, client_id="x-1", text="Hello")
    assert (created, created_again, again.pk, message.text) == (True, False, message.pk, "Hello")
    reply, _ = actions.post_message(member=second, client_id="x-1", text="Hi", reply_to=message.seq)
    assert reply.reply_to_id == message.pk and reply.seq == message.seq + 1

    bad = [
        ({"client_id": "y", "text": "x" * 1001}, "too_long", "text"),
        ({"client_id": "y", "text": "   "}, "invalid", "text"),
        ({"client_id": "", "text": "fine"}, "invalid", "client_id"),
        ({"client_id": "y" * 65, "text": "fine"}, "invalid", "client_id"),
        ({"client_id": 5, "text": "fine"}, "invalid", "client_id"),
        ({"client_id": "y", "text": "fine", "reply_to": 999}, "invalid", "reply_to"),
        ({"client_id": "y", "text": "fine", "reply_to": "1"}, "invalid", "reply_to"),
    ]
    for fields, code, field in bad:
        with pytest.raises(actions.Refused) as refused:
            actions.post_message(member=first, **fields)
        assert (refused.value.code, refused.value.field) == (code, field)
    assert "1001 characters; at most 1000" in str(refused_text(first))
    assert fresh(room).last_seq == 3 and room.messages.count() == 3


def refused_text(member: RoomMember) -> str:
    try:
        actions.post_message(member=member, client_id="z", text="x" * 1001)
    except actions.Refused as refused:
        return refused.message
    raise AssertionError("an oversized message was accepted")


def test_nothing_is_posted_before_the_room_opens_or_after_it_closes(db: None) -> None:
    room = make_room(starts_at=later(600))
    member = room.members.first()
    actions.join(member=member)
    state = actions.join(member=member)
    assert (state["state"], state["deadline"]) == ("waiting", room.slot.starts_at.isoformat())
    with pytest.raises(actions.Refused) as refused:
        actions.post_message(member=member, client_id="early", text="Hello?")
    assert refused.value.code == "not_open"
    Room.objects.filter(pk=room.pk).update(state=Room.State.CLOSED)
    with pytest.raises(actions.Refused):
        actions.post_message(member=member, client_id="late", text="Bye")
    assert not room.messages.exists()


def test_enough_flags_hide_a_message_for_all_pending_review(room: Room) -> None:
    first, second, third, _ = opened(room)
    message, _ = actions.post_message(member=first, client_id="m", text="Something rude")
    with pytest.raises(actions.Refused) as refused:
        actions.flag_message(member=first, seq=message.seq)
    assert refused.value.code == "own_message"
    actions.flag_message(member=second, seq=message.seq)
    actions.flag_message(member=second, seq=message.seq)  # once per member
    message.refresh_from_db()
    assert message.hidden_at is None and message.flags.count() == 1
    actions.flag_message(member=third, seq=message.seq)  # max(2, ceil(4 / 3)) = 2
    message.refresh_from_db()
    assert message.hidden_at is not None and message.hidden_by == "flags"
    hide = room.log.get(action="hide")
    assert hide.detail == {"seq": message.seq, "flags": 2, "present": 4}
    payload = moderator.message_payload(
        actions.messages_since(member=second, seq=message.seq - 1)[0]
    )
    assert payload["hidden"] is True and payload["text"] == ""
    assert [actions.flag_threshold(n) for n in (1, 4, 6, 7, 10)] == [2, 2, 2, 3, 4]


def test_organisers_hide_show_and_remove_with_a_log(room: Room) -> None:
    first, *_ = opened(room)
    organiser = get_user_model().objects.create_user("organiser", password="x")
    message, _ = actions.post_message(member=first, client_id="m", text="Off topic")
    actions.hide_message(message_id=message.pk, user=organiser)
    message.refresh_from_db()
    assert message.hidden_by == "organiser"
    actions.unhide_message(message_id=message.pk, user=organiser)
    message.refresh_from_db()
    assert message.hidden_at is None
    actions.remove_member(member_id=first.pk, user=organiser)
    with pytest.raises(actions.Refused) as refused:
        actions.post_message(member=first, client_id="again", text="Let me back")
    assert refused.value.code == "removed"
    log = list(room.log.filter(actor=organiser).values_list("action", "member_id"))
    assert log == [("hide", None), ("unhide", None), ("remove", first.pk)]
    assert [m["id"] for m in moderator.room_state(fresh(room))["members"]] == [
        m.pk for m in room.members.exclude(pk=first.pk)
    ]


def test_questions_are_drafted_once_and_voted_up(room: Room) -> None:
    first, second, third, _ = opened(room)
    question = actions.draft_question(member=first, client_id="q1", text="What does it cost?")
    assert actions.draft_question(member=first, client_id="q1", text="again").pk == question.pk
    other = actions.draft_question(member=second, client_id="q2", text="Who pays?")
    actions.vote_question(member=third, question=other.pk)
    actions.vote_question(member=third, question=other.pk)
    actions.vote_question(member=first, question=other.pk)
    state = moderator.room_state(fresh(room))
    assert [(q["text"], q["votes"]) for q in state["questions"]] == [
        ("Who pays?", 2),
        ("What does it cost?", 0),
    ]
    with pytest.raises(actions.Refused) as refused:
        actions.draft_question(member=first, client_id="q3", text="x" * 301)
    assert refused.value.code == "too_long"
    with pytest.raises(actions.Refused):
        actions.vote_question(member=first, question=999_999)


def test_the_deadline_task_acts_only_on_its_version_and_only_once(room: Room) -> None:
    opened(room)
    room = fresh(room)
    version = room.version
    Room.objects.filter(pk=room.pk).update(deadline=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.run_due(room.pk, version - 1) == 0  # a task for a state already left
    assert fresh(room).item_index == 0
    assert tasks.run_due(room.pk, version) > 0
    assert tasks.run_due(room.pk, version) == 0  # delivered twice: the second does nothing
    room = fresh(room)
    assert (room.item_index, room.version) == (1, version + 1)
    assert room.log.filter(action="item").count() == 2


def test_the_sweeper_moves_every_room_whose_moment_passed(db: None) -> None:
    due = make_room(group=1)
    opened(due)
    waiting = make_room(group=2, starts_at=timezone.now() - dt.timedelta(seconds=5))
    not_yet = make_room(group=3, starts_at=later(300))
    Room.objects.filter(pk=due.pk).update(deadline=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.sweep() == 2
    assert fresh(due).item_index == 1
    assert fresh(waiting).state == Room.State.ITEM
    assert fresh(not_yet).state == Room.State.WAITING
    assert tasks.sweep() == 0
    assert RoomLog.objects.filter(action="open").count() == 2


def test_a_post_costs_a_handful_of_queries(room: Room, django_assert_max_num_queries: Any) -> None:
    """Posts are the hot path (a room of ten, every few seconds): lock the room, re-read the
    member, check the client id, take the seq, insert; presence is refreshed at most every
    TOUCH_SECONDS. (Inside the test's transaction the atomic block adds a savepoint pair.)"""
    first, *_ = opened(room)
    actions.post_message(member=first, client_id="warm", text="first")
    with django_assert_max_num_queries(5 + 2):
        actions.post_message(member=first, client_id="hot", text="second")
