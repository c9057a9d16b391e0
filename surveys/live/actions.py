"""What members and organisers do in a live room. Every function is keyword-only, owns its
transaction and locks the room row first, so seqs stay gapless and the moderator's state is
read and written by one writer at a time. Refusals raise ``Refused`` before anything is stored.

The consumer (WebSocket) and the HTTP fallback both call these through
``surveys.live.client.handle``; neither publishes anything itself: the functions queue their
events to be fanned out after commit.
"""

import datetime as dt
import math
from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from surveys.live import moderator
from surveys.live.models import (
    CLIENT_ID_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_QUESTION_CHARS,
    Message,
    MessageFlag,
    MoveOnVote,
    PanelQuestion,
    PanelVote,
    Room,
    RoomLog,
    RoomMember,
)

T = TypeVar("T")
# How many messages one sync returns at most; a client with more to catch up asks again.
SYNC_LIMIT = 500
# Presence is refreshed at most this often (it lasts moderator.PRESENT_SECONDS).
TOUCH_SECONDS = 10


class Refused(Exception):
    """A request the room does not accept: ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: Any, *, field: str = "", **detail: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = str(message)
        self.field = field
        self.detail = detail

    def as_event(self) -> dict[str, Any]:
        event = {"type": "error", "code": self.code, "message": self.message, **self.detail}
        if self.field:
            event["field"] = self.field
        return event


def flag_threshold(present: int) -> int:
    """Flags that hide a message: a third of the members present, and never fewer than two."""
    return max(2, math.ceil(present / 3))


def _locked(member_id: int, room_id: int) -> tuple[Room, RoomMember]:
    """The member's room, locked, and the member re-read under the lock (not removed, and their
    invitation not revoked)."""
    room = (
        Room.objects.select_for_update(of=("self",))
        .select_related("slot", "turn_member")
        .get(pk=room_id)
    )
    member = RoomMember.objects.select_related("participant").get(pk=member_id)
    if member.removed_at is not None:
        raise Refused("removed", _("You were removed from this room."))
    if member.participant.revoked_at is not None:
        # An open socket outlives the handshake's check: a withdrawn invitation ends it too.
        raise Refused("removed", _("Your invitation was withdrawn; you can no longer take part."))
    return room, member


def _in_room(member: RoomMember, work: Callable[[Room, RoomMember], T]) -> T:
    with transaction.atomic():
        room, fresh = _locked(member.pk, member.room_id)
        return work(room, fresh)


def _client_id(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= CLIENT_ID_CHARS:
        raise Refused(
            "invalid",
            _("client_id must be a text of 1 to %(limit)s characters (a UUID).")
            % {"limit": CLIENT_ID_CHARS},
            field="client_id",
        )
    return value


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Refused("invalid", _("text must be a non-empty text."), field="text")
    text = value.strip()
    if len(text) > limit:
        raise Refused(
            "too_long",
            _("text has %(length)s characters; at most %(limit)s are allowed.")
            % {"length": len(text), "limit": limit},
            field="text",
            limit=limit,
        )
    return text


def _touch(member: RoomMember) -> None:
    """Mark the member present (one write per TOUCH_SECONDS at most: posts come often)."""
    now = timezone.now()
    if member.last_seen_at and member.last_seen_at > now - dt.timedelta(seconds=TOUCH_SECONDS):
        return
    member.last_seen_at = now
    RoomMember.objects.filter(pk=member.pk).update(last_seen_at=now)


# ----------------------------------------------------------------- members


def join(*, member: RoomMember) -> dict[str, Any]:
    """A member's client connected: mark them present (and joined, the first time), apply what
    is due, and return the room's state."""

    def work(room: Room, member: RoomMember) -> dict[str, Any]:
        now = timezone.now()
        absent_since = now - dt.timedelta(seconds=moderator.PRESENT_SECONDS)
        arrived = member.last_seen_at is None or member.last_seen_at < absent_since
        if member.joined_at is None:
            RoomMember.objects.filter(pk=member.pk).update(joined_at=now)
            moderator.log(room, RoomLog.Action.JOIN, member=member)
        _touch(member)
        moved = moderator.tick(room, now=now)
        state = moderator.room_state(room, now)
        if arrived and not moved:
            # Others learn who is present; a sync of a member already present changes nothing.
            moderator.publish(room.pk, [state])
        return state

    return _in_room(member, work)


def ping(*, member: RoomMember) -> None:
    """A client is still here: mark the member present and apply what is due (this is what
    moves rooms along when no worker runs, as in the embedded default)."""

    def work(room: Room, member: RoomMember) -> None:
        _touch(member)
        moderator.tick(room)

    _in_room(member, work)


def messages_since(*, member: RoomMember, seq: int, limit: int = SYNC_LIMIT) -> list[Message]:
    """The room's messages after ``seq``, in order: every seq, so clients can tell a gap (a
    nudge to someone else and a hidden message keep their place; ``moderator.for_member`` and
    ``message_payload`` leave out their text)."""
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise Refused("invalid", _("since must be a whole number, 0 or more."), field="since")
    return list(
        Message.objects.filter(room_id=member.room_id, seq__gt=seq)
        .select_related("member", "reply_to")
        .order_by("seq")[:limit]
    )


def post_message(
    *, member: RoomMember, client_id: Any, text: Any, reply_to: Any = None
) -> tuple[Message, bool]:
    """Store a member's message once per client id. Returns (message, created): a retry of a
    stored client id returns the stored message and stores nothing."""
    client_id = _client_id(client_id)
    text = _text(text, MAX_MESSAGE_CHARS)
    if reply_to is not None and (not isinstance(reply_to, int) or isinstance(reply_to, bool)):
        raise Refused("invalid", _("reply_to must be the seq of a message."), field="reply_to")

    def work(room: Room, member: RoomMember) -> tuple[Message, bool]:
        stored = Message.objects.filter(member=member, client_id=client_id).first()
        if stored is not None:
            return stored, False
        if room.state in (Room.State.WAITING, Room.State.CLOSED):
            raise Refused(
                "not_open",
                _("The room is not open for messages (it is %(state)s).")
                % {"state": room.get_state_display()},
                state=room.state,
            )
        in_turn = room.turn_member_id == member.pk
        if room.turn_member_id is not None and not in_turn:
            raise Refused(
                "not_your_turn",
                _("%(name)s has the turn; raise your hand to speak next.")
                % {"name": room.turn_member.pseudonym},
            )
        target = None
        if reply_to is not None:
            target = Message.objects.filter(room=room, seq=reply_to).first()
            if target is None:
                raise Refused(
                    "invalid", _("reply_to names no message in this room."), field="reply_to"
                )
        _touch(member)
        message = moderator.add_message(
            room,
            kind=Message.Kind.CHAT,
            text=text,
            member=member,
            client_id=client_id,
            reply_to=target,
            in_turn=in_turn,
        )
        moderator.publish(room.pk, [moderator.message_payload(message)])
        return message, True

    return _in_room(member, work)


def flag_message(*, member: RoomMember, seq: Any) -> Message:
    """A member flags another's message; at the threshold it is hidden for all pending review."""
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise Refused("invalid", _("seq must be the number of a message."), field="seq")

    def work(room: Room, member: RoomMember) -> Message:
        message = (
            Message.objects.filter(room=room, seq=seq, kind=Message.Kind.CHAT)
            .select_related("member", "reply_to")
            .first()
        )
        if message is None:
            raise Refused("invalid", _("seq names no member's message here."), field="seq")
        if message.member_id == member.pk:
            raise Refused("own_message", _("You cannot flag your own message."), field="seq")
        _touch(member)
        try:
            with transaction.atomic():
                MessageFlag.objects.create(message=message, member=member)
        except IntegrityError:
            return message  # flagged before: once per member
        # Only flags of members present now count (a removed or departed member's do not), and
        # only those after an organiser last showed the message again: the review stands.
        present_members = moderator.present_members(room)
        counted = message.flags.filter(member__in=present_members)
        reviewed = (
            RoomLog.objects.filter(room=room, action=RoomLog.Action.UNHIDE, detail__seq=seq)
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        if reviewed is not None:
            counted = counted.filter(created_at__gt=reviewed)
        flags = counted.count()
        present = len(present_members)
        moderator.log(room, RoomLog.Action.FLAG, member=member, seq=seq, flags=flags)
        if message.hidden_at is None and flags >= flag_threshold(present):
            message.hidden_at = timezone.now()
            message.hidden_by = Message.HiddenBy.FLAGS
            message.save(update_fields=["hidden_at", "hidden_by"])
            moderator.log(room, RoomLog.Action.HIDE, seq=seq, flags=flags, present=present)
            moderator.publish(room.pk, [{"type": "hidden", "seq": seq, "by": "flags"}])
        return message

    return _in_room(member, work)


def raise_hand(*, member: RoomMember) -> None:
    def work(room: Room, member: RoomMember) -> None:
        if room.state != Room.State.ITEM:
            raise Refused("not_open", _("Hands are raised while an agenda item is discussed."))
        _touch(member)
        if member.hand_raised_at is None and room.turn_member_id != member.pk:
            RoomMember.objects.filter(pk=member.pk).update(hand_raised_at=timezone.now())
            if not (room.turn_member_id is None and moderator.give_next_turn(room)):
                moderator.publish(room.pk, [moderator.room_state(room)])

    _in_room(member, work)


def lower_hand(*, member: RoomMember) -> None:
    """Lower a raised hand; the member holding the turn ends it (the next in the queue gets it)."""

    def work(room: Room, member: RoomMember) -> None:
        _touch(member)
        if room.turn_member_id == member.pk:
            moderator.give_next_turn(room)
        elif member.hand_raised_at is not None:
            RoomMember.objects.filter(pk=member.pk).update(hand_raised_at=None)
            moderator.publish(room.pk, [moderator.room_state(room)])

    _in_room(member, work)


def vote_move_on(*, member: RoomMember) -> bool:
    """Vote to leave the current agenda item; a majority of the members present moves on.
    Returns whether the room moved on."""

    def work(room: Room, member: RoomMember) -> bool:
        if room.state != Room.State.ITEM:
            raise Refused("not_open", _("Votes to move on are taken during an agenda item."))
        _touch(member)
        created = MoveOnVote.objects.get_or_create(
            room=room, member=member, item_index=room.item_index
        )[1]
        if created:
            moderator.log(room, RoomLog.Action.VOTE, member=member, item=room.item_index)
        # A majority of the members present, counting only their votes: votes of members who
        # left or were removed stay stored but no longer push the room on.
        present_members = moderator.present_members(room)
        votes = room.move_on_votes.filter(
            item_index=room.item_index, member__in=present_members
        ).count()
        present = len(present_members)
        if votes > present / 2:
            moderator.advance(room, reason="vote")
            return True
        moderator.publish(room.pk, [moderator.room_state(room)])
        return False

    return _in_room(member, work)


def draft_question(*, member: RoomMember, client_id: Any, text: Any) -> PanelQuestion:
    """A question for the expert panel, stored once per client id."""
    client_id = _client_id(client_id)
    text = _text(text, MAX_QUESTION_CHARS)

    def work(room: Room, member: RoomMember) -> PanelQuestion:
        stored = PanelQuestion.objects.filter(member=member, client_id=client_id).first()
        if stored is not None:
            return stored
        if room.state not in (Room.State.ITEM, Room.State.QUESTIONS):
            raise Refused("not_open", _("Questions are written while the room is open."))
        _touch(member)
        question = PanelQuestion.objects.create(
            room=room, member=member, client_id=client_id, text=text
        )
        moderator.publish(room.pk, [moderator.room_state(room)])
        return question

    return _in_room(member, work)


def vote_question(*, member: RoomMember, question: Any) -> None:
    if not isinstance(question, int) or isinstance(question, bool):
        raise Refused("invalid", _("question must be the id of a question."), field="question")

    def work(room: Room, member: RoomMember) -> None:
        target = PanelQuestion.objects.filter(
            pk=question, room=room, hidden_at__isnull=True
        ).first()
        if target is None:
            raise Refused("invalid", _("question names no question here."), field="question")
        if target.member_id == member.pk:
            # Votes rank the questions put to the panel: an author's own vote would inflate it.
            raise Refused(
                "own_question", _("You cannot vote for your own question."), field="question"
            )
        if room.state not in (Room.State.ITEM, Room.State.QUESTIONS):
            raise Refused("not_open", _("Questions are voted on while the room is open."))
        _touch(member)
        PanelVote.objects.get_or_create(question_id=question, member=member)
        moderator.publish(room.pk, [moderator.room_state(room)])

    _in_room(member, work)


# ----------------------------------------------------------------- organisers


def _room_of_message(message_id: int) -> tuple[Room, Message]:
    room_id = Message.objects.values_list("room_id", flat=True).get(pk=message_id)
    room = Room.objects.select_for_update(of=("self",)).select_related("slot").get(pk=room_id)
    return room, Message.objects.get(pk=message_id)


@transaction.atomic
def hide_message(*, message_id: int, user: AbstractBaseUser) -> Message:
    """An organiser hides a message for everyone (logged with who and when)."""
    room, message = _room_of_message(message_id)
    if message.hidden_at is None or message.hidden_by != Message.HiddenBy.ORGANISER:
        message.hidden_at = timezone.now()
        message.hidden_by = Message.HiddenBy.ORGANISER
        message.save(update_fields=["hidden_at", "hidden_by"])
        RoomLog.objects.create(
            room=room, actor=user, action=RoomLog.Action.HIDE, detail={"seq": message.seq}
        )
        moderator.publish(room.pk, [{"type": "hidden", "seq": message.seq, "by": "organiser"}])
    return message


@transaction.atomic
def unhide_message(*, message_id: int, user: AbstractBaseUser) -> Message:
    """An organiser shows a hidden message again (after reviewing the flags)."""
    room, message = _room_of_message(message_id)
    if message.hidden_at is not None:
        message.hidden_at = None
        message.hidden_by = ""
        message.save(update_fields=["hidden_at", "hidden_by"])
        RoomLog.objects.create(
            room=room, actor=user, action=RoomLog.Action.UNHIDE, detail={"seq": message.seq}
        )
        message = Message.objects.select_related("member", "reply_to").get(pk=message.pk)
        # Its own event: clients already hold this seq (as a stub) and skip repeated messages.
        moderator.publish(room.pk, [moderator.shown_payload(message)])
    return message


@transaction.atomic
def remove_member(*, member_id: int, user: AbstractBaseUser) -> RoomMember:
    """An organiser removes a member: their connection closes and they cannot post again."""
    room_id = RoomMember.objects.values_list("room_id", flat=True).get(pk=member_id)
    room = (
        Room.objects.select_for_update(of=("self",))
        .select_related("slot", "turn_member")
        .get(pk=room_id)
    )
    member = RoomMember.objects.get(pk=member_id)
    if member.removed_at is not None:
        return member
    member.removed_at = timezone.now()
    member.hand_raised_at = None
    member.save(update_fields=["removed_at", "hand_raised_at"])
    RoomLog.objects.create(room=room, actor=user, member=member, action=RoomLog.Action.REMOVE)
    moderator.publish(room.pk, [{"type": "removed", "member_id": member.pk}])
    if room.turn_member_id == member.pk:
        moderator.give_next_turn(room)
    else:
        moderator.publish(room.pk, [moderator.room_state(room)])
    return member
