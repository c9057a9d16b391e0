"""Live deliberation: session slots and bookings, rooms with their moderator's state, members,
messages, flags, move-on votes, the expert panel's questions and answers, and the room log.

PostgreSQL is the source of truth for everything here: a room's moderator state carries a
version bumped on every change, and messages carry a per-room, gapless sequence number (the
room row is locked while one is given out), so a reconnecting client asks for "everything after
seq N" and gets it exactly once. Redis only fans out what is already stored.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual
from django.utils.translation import gettext_lazy as _

from surveys.models import Participant, Poll

# Bounds of what members type; the consumer and the HTTP fallback refuse longer texts.
MAX_MESSAGE_CHARS = 1000
MAX_QUESTION_CHARS = 300
MAX_PSEUDONYM_CHARS = 40
CLIENT_ID_CHARS = 64


class SessionSlot(models.Model):
    """A time an organiser offers for a live session; participants book one."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="session_slots")
    starts_at = models.DateTimeField(_("starts at"))
    duration_minutes = models.PositiveSmallIntegerField(_("duration (minutes)"), default=60)
    capacity = models.PositiveIntegerField(_("capacity"), help_text=_("Most participants."))
    turn_seconds = models.PositiveIntegerField(
        _("turn (seconds)"),
        default=0,
        help_text=_("Length of a speaking turn from the raised-hand queue; 0 = no turn-taking."),
    )
    # Seconds, not minutes, so tests (and short pilot sessions) can run an agenda in seconds.
    item_seconds = models.PositiveIntegerField(_("time per agenda item (seconds)"), default=600)
    question_seconds = models.PositiveIntegerField(
        _("time for the panel questions (seconds)"), default=600
    )
    balance_opinion = models.BooleanField(
        _("balance rooms on T1 opinion"),
        default=False,
        help_text=_("Spread participants of each T1 leaning evenly across the slot's rooms."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("starts_at", "id")
        constraints: ClassVar = [
            models.CheckConstraint(condition=Q(duration_minutes__gte=1), name="slot_duration_pos"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="slot_capacity_pos"),
            models.CheckConstraint(condition=Q(item_seconds__gte=1), name="slot_item_pos"),
            models.CheckConstraint(condition=Q(question_seconds__gte=1), name="slot_q_pos"),
        ]

    def __str__(self) -> str:
        return f"{self.poll_id}@{self.starts_at:%Y-%m-%d %H:%M}"


class Booking(models.Model):
    """A participant's pick of a slot. One active (not cancelled) booking per participant; a
    participant who missed a slot cancels nothing by hand: booking another cancels the old one."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="bookings")
    slot = models.ForeignKey(SessionSlot, on_delete=models.CASCADE, related_name="bookings")
    booked_at = models.DateTimeField(auto_now_add=True)
    arrived_at = models.DateTimeField(
        null=True, blank=True, help_text="When the participant opened the slot's lobby."
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["participant"],
                condition=Q(cancelled_at__isnull=True),
                name="booking_one_active",
            )
        ]

    def __str__(self) -> str:
        return f"{self.participant_id} -> {self.slot_id}"


class Room(models.Model):
    """A small group meeting in one slot and language, with its moderator's state."""

    class State(models.TextChoices):
        WAITING = "waiting", _("waiting to start")
        ITEM = "item", _("discussing an agenda item")
        QUESTIONS = "questions", _("writing questions for the panel")
        CLOSED = "closed", _("closed")

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="rooms")
    slot = models.ForeignKey(SessionSlot, on_delete=models.PROTECT, related_name="rooms")
    language = models.CharField(max_length=10)
    group = models.PositiveIntegerField(
        help_text="The members' small group number in the results (Participant.group)."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.WAITING)
    item_index = models.PositiveSmallIntegerField(default=0, help_text="Agenda item (option).")
    deadline = models.DateTimeField(
        null=True, blank=True, help_text="When the moderator moves on from the current state."
    )
    nudge_at = models.DateTimeField(
        null=True, blank=True, help_text="When members silent on this item are nudged (once)."
    )
    version = models.PositiveIntegerField(default=0, help_text="Bumped on every state change.")
    last_seq = models.PositiveIntegerField(default=0, help_text="Seq of the latest message.")
    turn_member = models.ForeignKey(
        "RoomMember", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    turn_deadline = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["poll", "group"], name="room_group_unique"),
        ]
        indexes: ClassVar = [models.Index(fields=["state", "deadline"])]

    def __str__(self) -> str:
        return f"room {self.pk} ({self.state} {self.item_index} v{self.version})"


class RoomMember(models.Model):
    """A participant's seat in a room under a pseudonym. ``joined_at`` is null until they first
    connect; a participant has at most one seat that is not removed."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="members")
    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="room_seats"
    )
    pseudonym = models.CharField(max_length=MAX_PSEUDONYM_CHARS)
    joined_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    hand_raised_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["room", "participant"], name="member_once_per_room"),
            models.UniqueConstraint(fields=["room", "pseudonym"], name="member_pseudonym_unique"),
            models.UniqueConstraint(
                fields=["participant"],
                condition=Q(removed_at__isnull=True),
                name="member_one_live_room",
            ),
        ]

    def __str__(self) -> str:
        return self.pseudonym


class Message(models.Model):
    class Kind(models.TextChoices):
        CHAT = "chat", _("message")
        PROMPT = "prompt", _("moderator's prompt")
        NUDGE = "nudge", _("nudge")
        SYSTEM = "system", _("notice")
        QUESTION = "question", _("question for the panel")

    class HiddenBy(models.TextChoices):
        FLAGS = "flags", _("flags from the group")
        ORGANISER = "organiser", _("organiser")

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    member = models.ForeignKey(
        RoomMember,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages",
        help_text="The author; empty for the moderator.",
    )
    to_member = models.ForeignKey(
        RoomMember,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Addressee of a nudge; empty = the whole room.",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.CHAT)
    item_index = models.PositiveSmallIntegerField(default=0)
    client_id = models.CharField(max_length=CLIENT_ID_CHARS, blank=True)
    seq = models.PositiveIntegerField()
    text = models.TextField()
    reply_to = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    in_turn = models.BooleanField(
        default=False, help_text="Written by the member holding the turn (highlighted)."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    hidden_at = models.DateTimeField(null=True, blank=True)
    hidden_by = models.CharField(max_length=10, choices=HiddenBy.choices, blank=True)

    class Meta:
        ordering = ("room", "seq")
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_seq_unique"),
            # Members' messages only (the moderator's have no member): a retried post is one row.
            models.UniqueConstraint(fields=["member", "client_id"], name="message_client_once"),
            models.CheckConstraint(condition=Q(seq__gte=1), name="message_seq_pos"),
            # Members' texts are bounded; the moderator's prompts quote the agenda (may be longer).
            models.CheckConstraint(
                condition=Q(member__isnull=True)
                | LessThanOrEqual(Length("text"), MAX_MESSAGE_CHARS),
                name="message_text_bounded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq}"


class MessageFlag(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="flags")
    member = models.ForeignKey(RoomMember, on_delete=models.CASCADE, related_name="flags")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["message", "member"], name="flag_once"),
        ]

    def __str__(self) -> str:
        return f"flag {self.message_id} by {self.member_id}"


class MoveOnVote(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="move_on_votes")
    member = models.ForeignKey(RoomMember, on_delete=models.CASCADE, related_name="+")
    item_index = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["room", "member", "item_index"], name="move_on_vote_once"
            ),
        ]

    def __str__(self) -> str:
        return f"move on {self.room_id}/{self.item_index} by {self.member_id}"


class PanelQuestion(models.Model):
    """A question a room drafts for the expert panel; members vote the best ones up."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="panel_questions")
    member = models.ForeignKey(RoomMember, on_delete=models.CASCADE, related_name="questions")
    client_id = models.CharField(max_length=CLIENT_ID_CHARS, blank=True)
    text = models.CharField(max_length=MAX_QUESTION_CHARS)
    created_at = models.DateTimeField(auto_now_add=True)
    hidden_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["member", "client_id"], name="question_client_once"),
        ]

    def __str__(self) -> str:
        return self.text[:60]


class PanelVote(models.Model):
    question = models.ForeignKey(PanelQuestion, on_delete=models.CASCADE, related_name="votes")
    member = models.ForeignKey(RoomMember, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["question", "member"], name="panel_vote_once"),
        ]

    def __str__(self) -> str:
        return f"vote {self.question_id} by {self.member_id}"


class ExpertAnswer(models.Model):
    """The panel's answer to one or more rooms' questions, read by participants before T2."""

    poll = models.ForeignKey(Poll, on_delete=models.CASCADE, related_name="expert_answers")
    language = models.CharField(
        max_length=10, blank=True, help_text=_("Empty: shown to participants in every language.")
    )
    title = models.CharField(_("title"), max_length=200)
    text = models.TextField(_("answer"), blank=True)
    link = models.URLField(_("link to a recording"), blank=True)
    questions = models.ManyToManyField(PanelQuestion, related_name="answers", blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.title


class RoomLog(models.Model):
    """Who did what in a room and when: flags, hides, removals, the moderator's transitions."""

    class Action(models.TextChoices):
        OPEN = "open", _("opened")
        ITEM = "item", _("moved to an agenda item")
        QUESTIONS = "questions", _("opened the panel questions")
        CLOSE = "close", _("closed")
        TURN = "turn", _("gave the turn")
        NUDGE = "nudge", _("nudged")
        FLAG = "flag", _("flagged a message")
        HIDE = "hide", _("hid a message")
        UNHIDE = "unhide", _("showed a hidden message again")
        REMOVE = "remove", _("removed a member")
        VOTE = "vote", _("voted to move on")
        JOIN = "join", _("joined")

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="log")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    member = models.ForeignKey(
        RoomMember, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=12, choices=Action.choices)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.room_id} {self.action} {self.at:%H:%M:%S}"
