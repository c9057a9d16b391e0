"""The automated moderator: a state machine over a Room row, and what clients are told about it.

States: waiting -> item 0 -> item 1 ... -> questions -> closed. Every transition happens with
the room row locked (``SELECT ... FOR UPDATE``) inside the caller's transaction, bumps
``Room.version``, writes a RoomLog row and, once the transaction commits, publishes events to
the room's channel group and schedules the next deadline task for the new version. Raised hands,
votes and nudges do not bump the version: deadline tasks are keyed by (room, version), so a
task only acts on the state it was scheduled for.

``tick`` is the single entry for time: it applies whatever is due (the item's or the question
phase's deadline, the end of a turn, the nudge at half time) and is called by the deadline task,
the beat sweeper, and by the consumer on a client's ping (which keeps rooms moving in the
embedded default, where no worker runs).
"""

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from celery import current_app
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from surveys.live.models import Message, PanelQuestion, Room, RoomLog, RoomMember
from surveys.models import Option, localized

logger = logging.getLogger(__name__)

# A member counts as present when their client was heard from this recently (clients ping).
PRESENT_SECONDS = 60
Event = dict[str, Any]


def group_name(room_id: int) -> str:
    return f"live.room.{room_id}"


# ----------------------------------------------------------------- reading the room


def agenda(room: Room) -> list[Option]:
    return list(Option.objects.filter(poll_id=room.poll_id).order_by("order", "id"))


def present_members(room: Room, now: dt.datetime | None = None) -> list[RoomMember]:
    since = (now or timezone.now()) - dt.timedelta(seconds=PRESENT_SECONDS)
    return list(
        room.members.filter(removed_at__isnull=True, joined_at__isnull=False).filter(
            last_seen_at__gte=since
        )
    )


def hand_queue(room: Room) -> list[RoomMember]:
    return list(
        room.members.filter(removed_at__isnull=True, hand_raised_at__isnull=False).order_by(
            "hand_raised_at", "id"
        )
    )


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def message_payload(message: Message) -> Event:
    """A stored message as clients see it (hidden messages keep their place, not their text)."""
    hidden = message.hidden_at is not None
    return {
        "type": "nudge" if message.kind == Message.Kind.NUDGE else "message",
        "seq": message.seq,
        "kind": message.kind,
        "item": message.item_index,
        "member": message.member.pseudonym if message.member_id else None,
        "member_id": message.member_id,
        "to": message.to_member_id,
        "client_id": message.client_id,
        "text": "" if hidden else message.text,
        "reply_to": message.reply_to.seq if message.reply_to_id else None,
        "in_turn": message.in_turn,
        "hidden": hidden,
        "at": iso(message.created_at),
    }


def shown_payload(message: Message) -> Event:
    """A message an organiser showed again: the client draws its text in place of the stub."""
    return {**message_payload(message), "type": "shown"}


def reviewed_before(room_id: int, since: int) -> list[Event]:
    """For a client that has seqs up to ``since``: a ``hidden`` event for each of them hidden
    now, and a ``shown`` event (with the text) for each shown again by an organiser, so a
    client that missed either live (polling, reconnecting) draws what the room sees now."""
    reviewed = Message.objects.filter(room_id=room_id, seq__lte=since)
    logged = RoomLog.objects.filter(room_id=room_id, action=RoomLog.Action.UNHIDE)
    restored = {seq for seq in logged.values_list("detail__seq", flat=True) if isinstance(seq, int)}
    return [
        *(
            {"type": "hidden", "seq": seq}
            for seq in reviewed.filter(hidden_at__isnull=False).values_list("seq", flat=True)
        ),
        *(
            shown_payload(message)
            for message in reviewed.filter(hidden_at__isnull=True, seq__in=restored)
            .select_related("member", "reply_to")
            .order_by("seq")
        ),
    ]


def for_member(payload: Event, member_id: int) -> Event:
    """A message event as one member sees it: the client id only on their own; a nudge to
    someone else keeps its seq (so every client sees a gapless sequence) but not its text."""
    if payload.get("to") is not None and payload["to"] != member_id:
        payload = {**payload, "text": ""}
    if payload.get("member_id") != member_id:
        return {**payload, "client_id": None}
    return payload


def room_state(room: Room, now: dt.datetime | None = None) -> Event:
    """Everything a client needs to draw the room, except the messages."""
    now = now or timezone.now()
    items = agenda(room)
    present = {member.pk for member in present_members(room, now)}
    voters = list(
        room.move_on_votes.filter(item_index=room.item_index, member_id__in=present)
        .order_by("id")
        .values_list("member_id", flat=True)
    )
    questions = (
        PanelQuestion.objects.filter(room=room, hidden_at__isnull=True)
        .annotate(vote_count=Count("votes"))
        .select_related("member")
        .order_by("-vote_count", "id")
    )
    return {
        "type": "state",
        "room": room.pk,
        "state": room.state,
        "version": room.version,
        "item": room.item_index,
        "items": [
            {"key": option.key, "text": localized(option.text, room.language)} for option in items
        ],
        # A waiting room's clock counts down to its slot's start.
        "deadline": iso(
            room.deadline or (room.slot.starts_at if room.state == "waiting" else None)
        ),
        "now": iso(now),
        "turn": {
            "member_id": room.turn_member_id,
            "member": room.turn_member.pseudonym if room.turn_member_id else None,
            "deadline": iso(room.turn_deadline),
        },
        "turn_seconds": room.slot.turn_seconds,
        "queue": [member.pk for member in hand_queue(room)],
        "members": [
            {"id": member.pk, "pseudonym": member.pseudonym, "present": member.pk in present}
            for member in room.members.filter(removed_at__isnull=True)
        ],
        "move_on_votes": len(voters),
        "move_on_voters": voters,
        "move_on_needed": len(present) // 2 + 1,
        "questions": [
            {
                "id": question.pk,
                "text": question.text,
                "member": question.member.pseudonym,
                "member_id": question.member_id,
                "votes": question.vote_count,
                "voters": [vote.member_id for vote in question.votes.all()],
            }
            for question in questions.prefetch_related("votes")
        ],
        "last_seq": room.last_seq,
    }


# ----------------------------------------------------------------- publishing and scheduling


def publish(room_id: int, events: Iterable[Event]) -> None:
    """Send events to the room's group once the current transaction commits (never before:
    a client must never see what PostgreSQL might roll back)."""
    events = list(events)
    if not events:
        return

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            for event in events:
                async_to_sync(layer.group_send)(
                    group_name(room_id), {"type": "live.event", "event": event}
                )
        except Exception:
            # Fan-out is best effort: the rows are stored and clients catch up on sync.
            logger.exception("could not publish to room %s", room_id)

    transaction.on_commit(send)


def next_due(room: Room) -> dt.datetime | None:
    """The earliest moment something is due in this room."""
    if room.state == Room.State.CLOSED:
        return None
    opens = room.slot.starts_at if room.state == Room.State.WAITING else None
    moments = [
        m for m in (room.deadline, room.turn_deadline, room.nudge_at, opens) if m is not None
    ]
    return min(moments) if moments else None


def schedule(room: Room) -> None:
    """Queue a deadline task for the room's current version at its next due moment (after the
    transaction commits). Without a broker (eager mode) nothing is queued: clients' pings tick."""
    due = next_due(room)
    if due is None or current_app.conf.task_always_eager:
        return
    room_id, version = room.pk, room.version

    def send() -> None:
        try:
            # By name: surveys.live.tasks imports this module.
            current_app.send_task("live.run_due", (room_id, version), eta=due)
        except Exception:
            # The beat sweeper advances the room even if this task is never queued.
            logger.exception("could not queue the deadline of room %s", room_id)

    transaction.on_commit(send)


# ----------------------------------------------------------------- transitions


def log(room: Room, action: str, *, member: RoomMember | None = None, **detail: Any) -> None:
    RoomLog.objects.create(room=room, member=member, action=action, detail=detail)


def add_message(
    room: Room,
    *,
    kind: str,
    text: str,
    member: RoomMember | None = None,
    to_member: RoomMember | None = None,
    **fields: Any,
) -> Message:
    """Store a message with the room's next seq (the caller holds the room row lock)."""
    room.last_seq += 1
    Room.objects.filter(pk=room.pk).update(last_seq=room.last_seq)
    return Message.objects.create(
        room=room,
        member=member,
        to_member=to_member,
        kind=kind,
        text=text,
        seq=room.last_seq,
        item_index=room.item_index,
        **fields,
    )


def _changed(
    room: Room, now: dt.datetime, events: list[Event], *, turn: bool = False
) -> list[Event]:
    """Persist a transition: bump the version, save, and queue the state event (and the turn
    event when the turn changed) and the next deadline task."""
    room.version += 1
    room.save()
    state = room_state(room, now)
    events = [*events, state]
    if turn:
        events.append({"type": "turn", **state["turn"]})
    publish(room.pk, events)
    schedule(room)
    return events


def _prompt(room: Room, items: list[Option]) -> str:
    with translation.override(room.language):
        if room.state == Room.State.ITEM:
            option = items[room.item_index]
            return _(
                "Agenda item %(number)s of %(total)s: %(option)s. What are the strongest "
                "reasons for and against it? Please say why, and reply to each other."
            ) % {
                "number": room.item_index + 1,
                "total": len(items),
                # Option texts often end with a full stop; the prompt adds its own.
                "option": localized(option.text, room.language).rstrip().rstrip("."),
            }
        if room.state == Room.State.QUESTIONS:
            return _(
                "Last part: write the questions you would most like the expert panel to "
                "answer, and vote for the best ones."
            )
        return _("The session has ended. Thank you for taking part.")


def _enter(room: Room, state: str, item_index: int, now: dt.datetime) -> list[Event]:
    """Put the room in ``state`` (at ``item_index``), with its prompt and deadlines."""
    items = agenda(room)
    room.state = state
    room.item_index = item_index
    room.turn_member = None
    room.turn_deadline = None
    room.nudge_at = None
    room.members.filter(hand_raised_at__isnull=False).update(hand_raised_at=None)
    if state == Room.State.ITEM:
        seconds = room.slot.item_seconds
        room.deadline = now + dt.timedelta(seconds=seconds)
        room.nudge_at = now + dt.timedelta(seconds=seconds / 2)
        log(room, RoomLog.Action.ITEM, item=item_index)
    elif state == Room.State.QUESTIONS:
        room.deadline = now + dt.timedelta(seconds=room.slot.question_seconds)
        log(room, RoomLog.Action.QUESTIONS)
    else:
        room.deadline = None
        room.closed_at = now
        log(room, RoomLog.Action.CLOSE)
    prompt = add_message(room, kind=Message.Kind.PROMPT, text=_prompt(room, items))
    return [message_payload(prompt)]


def advance(room: Room, *, now: dt.datetime | None = None, reason: str = "deadline") -> list[Event]:
    """Move the room one step on. The caller holds the room row lock."""
    now = now or timezone.now()
    if room.state == Room.State.CLOSED:
        return []
    items = agenda(room)
    if room.state == Room.State.WAITING:
        room.opened_at = now
        log(room, RoomLog.Action.OPEN, reason=reason)
        events = (
            _enter(room, Room.State.ITEM, 0, now)
            if items
            else _enter(room, Room.State.QUESTIONS, 0, now)
        )
    elif room.state == Room.State.ITEM and room.item_index + 1 < len(items):
        events = _enter(room, Room.State.ITEM, room.item_index + 1, now)
    elif room.state == Room.State.ITEM:
        events = _enter(room, Room.State.QUESTIONS, room.item_index, now)
    else:
        events = _enter(room, Room.State.CLOSED, room.item_index, now)
    return _changed(room, now, events)


def give_next_turn(room: Room, *, now: dt.datetime | None = None) -> list[Event]:
    """End the current turn (if any) and give the next one from the raised-hand queue, when
    turn-taking is on. The caller holds the room row lock."""
    now = now or timezone.now()
    if room.slot.turn_seconds == 0 or room.state != Room.State.ITEM:
        return []
    queue = hand_queue(room)
    if not queue and room.turn_member_id is None:
        return []
    if queue:
        member = queue[0]
        RoomMember.objects.filter(pk=member.pk).update(hand_raised_at=None)
        room.turn_member = member
        room.turn_deadline = now + dt.timedelta(seconds=room.slot.turn_seconds)
        log(room, RoomLog.Action.TURN, member=member, seconds=room.slot.turn_seconds)
    else:
        room.turn_member = None
        room.turn_deadline = None
    return _changed(room, now, [], turn=True)


def nudge_silent(room: Room, *, now: dt.datetime | None = None) -> list[Event]:
    """Nudge once per item each joined member who has not written on it. Lock held by caller."""
    now = now or timezone.now()
    room.nudge_at = None
    Room.objects.filter(pk=room.pk).update(nudge_at=None)
    if room.state != Room.State.ITEM:
        return []
    spoke = Message.objects.filter(
        room=room, kind=Message.Kind.CHAT, item_index=room.item_index, member__isnull=False
    ).values("member_id")
    already = Message.objects.filter(
        room=room, kind=Message.Kind.NUDGE, item_index=room.item_index
    ).values("to_member_id")
    silent = room.members.filter(removed_at__isnull=True, joined_at__isnull=False).exclude(
        Q(pk__in=spoke) | Q(pk__in=already)
    )
    events = []
    for member in silent:
        with translation.override(room.language):
            text = _(
                "%(name)s, we have not heard from you on this item yet. What do you think?"
            ) % {"name": member.pseudonym}
        nudge = add_message(room, kind=Message.Kind.NUDGE, text=text, to_member=member)
        log(room, RoomLog.Action.NUDGE, member=member, item=room.item_index)
        events.append(message_payload(nudge))
    publish(room.pk, events)
    schedule(room)
    return events


def tick(room: Room, *, now: dt.datetime | None = None) -> list[Event]:
    """Apply whatever is due in a room whose row the caller has locked: one step at a time, so
    a room that was stuck (no process alive) resumes with the full time of its next step."""
    now = now or timezone.now()
    if room.state == Room.State.CLOSED:
        return []
    deadline = room.deadline
    if room.state == Room.State.WAITING and deadline is None:
        deadline = room.slot.starts_at  # a room opens at its slot's start
    if deadline is not None and deadline <= now:
        return advance(room, now=now)
    if room.turn_deadline is not None and room.turn_deadline <= now:
        return give_next_turn(room, now=now)
    if room.nudge_at is not None and room.nudge_at <= now:
        return nudge_silent(room, now=now)
    return []


def open_room(*, room_id: int) -> list[Event]:
    """Start a formed room's moderator: open it now if its slot has started, else queue the
    task that opens it at the slot's start (the beat sweeper and members' pings also do)."""
    with transaction.atomic():
        room = (
            Room.objects.select_for_update(of=("self",))
            .select_related("slot", "turn_member")
            .get(pk=room_id)
        )
        events = tick(room)
        if not events:
            schedule(room)
        return events


def tick_room(room_id: int, *, version: int | None = None) -> list[Event]:
    """Lock the room and tick it; with ``version``, only if the room is still at that version
    (the deadline task's idempotency: a task for a state the room has left does nothing)."""
    with transaction.atomic():
        room = (
            Room.objects.select_for_update(of=("self",))
            .select_related("slot", "turn_member")
            .filter(pk=room_id)
            .first()
        )
        if room is None or (version is not None and room.version != version):
            return []
        events = tick(room)
        if not events and version is not None:
            # Woken early (or only a nudge was due): wait for what comes next.
            schedule(room)
        return events
