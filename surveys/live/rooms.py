"""Session slots, bookings and the forming of rooms: the participant's way into a live room.

A treatment participant of a live poll books one of the poll's future slots with a free place
(one active booking each; booking another slot cancels the old one). From ``LOBBY_MINUTES``
before the start, opening the live page marks them as arrived (``Booking.arrived_at``, renewed
on every visit: the lobby reloads itself, so it also says who is still there). From the start
on, the first arrival forms the slot's rooms from every booking seen in the last
``PRESENT_SECONDS``: per language, at the
poll's group size, in as few rooms as the group size allows, of sizes that differ by at most
one. Who arrives later, up to ``LATE_MINUTES`` after the start, joins the smallest open room of
their language (a new one when there is none). Whoever did not arrive by then has missed the
slot and may book another while one is left.

Forming is idempotent under concurrency: it runs under the slot's row lock, so two arrivals at
once form one set of rooms; group numbers are taken under the poll's row lock (the lock the
journey's assignment of small groups takes), so they stay unique within the poll. The room's
group becomes ``Participant.group``: the small group of the results.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from django.db import transaction
from django.db.models import Count, F, Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from surveys.definition.spec import PollSpec
from surveys.journey import actions as journey_actions
from surveys.journey import flow
from surveys.journey.flow import Place
from surveys.live import moderator
from surveys.live.models import Booking, Room, RoomMember, SessionSlot
from surveys.models import Answer, Participant, Poll

Step = Participant.Step
LOBBY_MINUTES = 10
LATE_MINUTES = 10
PRESENT_SECONDS = 90
# Pseudonyms: short, easy to tell apart, readable in any of the poll's scripts, and saying
# nothing of the person (no order of arrival, no language).
PSEUDONYMS = (
    "Ash", "Birch", "Cedar", "Elm", "Fern", "Hazel", "Iris", "Juniper", "Lark", "Maple",
    "Oak", "Pine", "Reed", "Rowan", "Sage", "Teal", "Willow", "Wren", "Yarrow", "Heath",
)  # fmt: skip


class BookingError(ValueError):
    """A booking that cannot be made, with the reason in the participant's language."""


@dataclass(frozen=True)
class Arrival:
    """What the live page shows after an arrival: the room, or why there is none yet."""

    room: Room | None
    opens_at: datetime | None = None  # the lobby is not open yet: when it opens
    missed: bool = False


def arrival_window(slot: SessionSlot) -> tuple[datetime, datetime]:
    """(lobby opens, last moment to arrive) of ``slot``."""
    return (
        slot.starts_at - timedelta(minutes=LOBBY_MINUTES),
        slot.starts_at + timedelta(minutes=LATE_MINUTES),
    )


def ends_at(slot: SessionSlot) -> datetime:
    return slot.starts_at + timedelta(minutes=slot.duration_minutes)


def bookable_slots(poll: Poll, *, now: datetime | None = None) -> QuerySet[SessionSlot]:
    """The poll's slots that start later than ``now`` and have a free place, earliest first,
    each with ``booked`` (its active bookings)."""
    now = now or timezone.now()
    return (
        SessionSlot.objects.filter(poll=poll, starts_at__gt=now)
        .annotate(booked=Count("bookings", filter=Q(bookings__cancelled_at__isnull=True)))
        .filter(booked__lt=F("capacity"))
        .order_by("starts_at", "pk")
    )


def active_booking(participant_id: int) -> Booking | None:
    return (
        Booking.objects.select_related("slot")
        .filter(participant_id=participant_id, cancelled_at__isnull=True)
        .order_by("-booked_at")
        .first()
    )


def seat_of(participant_id: int) -> RoomMember | None:
    """The participant's seat: the one not removed (there is at most one, open or closed), else
    the latest they were removed from; None when they never sat in a room."""
    return (
        RoomMember.objects.select_related("room", "room__slot", "room__turn_member")
        .filter(participant_id=participant_id)
        .order_by(F("removed_at").desc(nulls_first=True), "-pk")
        .first()
    )


def membership(participant_id: int) -> RoomMember | None:
    """The participant's seat in a room that is not closed, if any."""
    seat = seat_of(participant_id)
    if seat is None or seat.removed_at is not None or seat.room.state == Room.State.CLOSED:
        return None
    return seat


def _locked_participant(participant_id: int) -> Participant:
    return (
        Participant.objects.select_for_update(of=("self",))
        .select_related("poll")
        .get(pk=participant_id)
    )


@transaction.atomic
def book(*, participant_id: int, slot_id: int, now: datetime | None = None) -> Booking:
    """Book ``slot_id`` for the participant (replacing an earlier booking), or raise
    ``BookingError`` saying why not: the slot is not the poll's, has started, or is full.

    The slot's row is locked while its places are counted, so two participants can never take
    its last place together. Booking the slot already booked returns that booking unchanged.
    """
    now = now or timezone.now()
    participant = _locked_participant(participant_id)
    if participant.step != Step.LIVE:
        raise BookingError(_("Sessions can be booked only at this step of the poll."))
    if seat_of(participant_id) is not None:
        raise BookingError(_("You have already taken part in a session."))
    slot = (
        SessionSlot.objects.select_for_update().filter(pk=slot_id, poll_id=participant.poll_id)
    ).first()
    if slot is None:
        raise BookingError(_("This session does not exist. Please choose one from the list."))
    current = active_booking(participant_id)
    if current is not None and current.slot_id == slot.pk:
        return current
    if slot.starts_at <= now:
        raise BookingError(_("This session has already started. Please choose a later one."))
    taken = Booking.objects.filter(slot=slot, cancelled_at__isnull=True).count()
    if taken >= slot.capacity:
        raise BookingError(_("This session is full. Please choose another one."))
    if current is not None:
        Booking.objects.filter(pk=current.pk).update(cancelled_at=now)
    return Booking.objects.create(participant_id=participant_id, slot=slot, booked_at=now)


def opinion_scores(poll: Poll, spec: PollSpec, participant_ids: Iterable[int]) -> dict[int, float]:
    """Each participant's T1 rating of the poll's first option that has a rating (the poll's
    axis, as the options run from one position to the other); missing for who gave none."""
    first = next(
        (q for q in spec.questions if q.kind == "rating" and q.option and q.waves != "2"), None
    )
    if first is None:
        return {}
    rows = Answer.objects.filter(
        poll=poll, question_id=first.id, wave=1, participant_id__in=list(participant_ids)
    ).exclude(number__isnull=True)
    return dict(rows.values_list("participant_id", "number"))


def deal(members: Sequence[int], rooms: int, scores: dict[int, float] | None) -> list[list[int]]:
    """Share ``members`` among ``rooms`` rooms whose sizes differ by at most one.

    Without ``scores`` members are dealt in turn, in the order given (arrival). With them, the
    members sorted by score are dealt in a snake (1, 2, ..., k, k, ..., 2, 1, ...), so each room
    gets members from every part of the spread of opinion; who gave no score counts as the
    median, so the unknown neither cluster nor all land at one end.
    """
    order = list(members)
    if scores is not None:
        known = sorted(scores[m] for m in members if m in scores)
        middle = known[len(known) // 2] if known else 0.0
        order.sort(key=lambda m: (scores.get(m, middle), m))
    dealt: list[list[int]] = [[] for _ in range(rooms)]
    for index, member in enumerate(order):
        lap, seat = divmod(index, rooms)
        dealt[seat if lap % 2 == 0 or scores is None else rooms - 1 - seat].append(member)
    return dealt


def _next_groups(poll_id: int, count: int) -> list[int]:
    """``count`` group numbers not used in the poll, neither by a room nor by the journey's
    small groups. The poll's row lock serialises this with ``assign_condition``."""
    Poll.objects.select_for_update().filter(pk=poll_id).first()
    highest = max(
        Room.objects.filter(poll_id=poll_id).aggregate(m=Max("group"))["m"] or 0,
        Participant.objects.filter(poll_id=poll_id).aggregate(m=Max("group"))["m"] or 0,
    )
    return list(range(highest + 1, highest + 1 + count))


def _open_room(slot: SessionSlot, language: str, group: int, members: Sequence[int]) -> Room:
    room = Room.objects.create(poll_id=slot.poll_id, slot=slot, language=language, group=group)
    _seat(room, members)
    return room


def _seat(room: Room, members: Sequence[int]) -> None:
    """Add ``members`` to ``room`` with pseudonyms free in it; their small group becomes the
    room's group."""
    taken = set(RoomMember.objects.filter(room=room).values_list("pseudonym", flat=True))
    free = [name for name in PSEUDONYMS if name not in taken]
    extra = len(taken) + len(members) - len(PSEUDONYMS)
    free += [f"{PSEUDONYMS[i % len(PSEUDONYMS)]} {2 + i // len(PSEUDONYMS)}" for i in range(extra)]
    RoomMember.objects.bulk_create(
        RoomMember(room=room, participant_id=member, pseudonym=free[i])
        for i, member in enumerate(members)
    )
    Participant.objects.filter(pk__in=members).update(
        group=room.group, group_language=room.language
    )


@transaction.atomic
def form_rooms(*, slot_id: int, spec: PollSpec, now: datetime | None = None) -> list[Room]:
    """Put the slot's arrived bookings in rooms; returns the rooms opened by this call.

    The first call at or after the start forms the rooms of everyone present; later calls only
    seat who has arrived since (in the smallest open room of their language). Calls before the
    start, or when nobody new is present, change nothing.
    """
    now = now or timezone.now()
    slot = SessionSlot.objects.select_for_update().select_related("poll").get(pk=slot_id)
    if now < slot.starts_at:
        return []
    seated = RoomMember.objects.filter(room__slot=slot).values("participant_id")
    waiting = list(
        Booking.objects.filter(
            slot=slot,
            cancelled_at__isnull=True,
            arrived_at__gte=now - timedelta(seconds=PRESENT_SECONDS),
        )
        .exclude(participant_id__in=seated)
        .order_by("arrived_at", "pk")
        .values_list("participant_id", "participant__language")
    )
    if not waiting:
        return []
    by_language: dict[str, list[int]] = defaultdict(list)
    for participant_id, language in waiting:
        by_language[language].append(participant_id)
    open_languages = set(
        Room.objects.filter(slot=slot)
        .exclude(state=Room.State.CLOSED)
        .values_list("language", flat=True)
    )
    opened: list[Room] = []
    for language, members in sorted(by_language.items()):
        if language in open_languages:
            for member in members:
                _seat(_smallest_room(slot, language), [member])
            continue
        size = slot.poll.group_size
        count = max(1, ceil(len(members) / size))
        scores = opinion_scores(slot.poll, spec, members) if slot.balance_opinion else None
        groups = _next_groups(slot.poll_id, count)
        for group, share in zip(groups, deal(members, count, scores), strict=True):
            opened.append(_open_room(slot, language, group, share))
    for room in opened:
        # The moderator opens the room with its first prompt and from then on keeps its own
        # deadlines (robust: with the broker down the beat sweeper and members' pings do).
        transaction.on_commit(
            lambda room_id=room.pk: moderator.open_room(room_id=room_id), robust=True
        )
    return opened


def _smallest_room(slot: SessionSlot, language: str) -> Room:
    return (
        Room.objects.filter(slot=slot, language=language)
        .exclude(state=Room.State.CLOSED)
        .annotate(size=Count("members", filter=Q(members__removed_at__isnull=True)))
        .order_by("size", "group")
        .first()
    )


def arrive(*, participant_id: int, spec: PollSpec, now: datetime | None = None) -> Arrival:
    """The participant opens the live page: mark them present in their slot's lobby, form the
    rooms once the slot has started, and say where they are."""
    now = now or timezone.now()
    seat = seat_of(participant_id)
    if seat is not None:
        return Arrival(room=seat.room)
    booking = active_booking(participant_id)
    if booking is None:
        return Arrival(room=None)
    lobby, last = arrival_window(booking.slot)
    if now < lobby:
        return Arrival(room=None, opens_at=lobby)
    if now > last:
        return Arrival(room=None, missed=True)
    Booking.objects.filter(pk=booking.pk).update(arrived_at=now)
    form_rooms(slot_id=booking.slot_id, spec=spec, now=now)
    seat = seat_of(participant_id)
    return Arrival(room=seat.room if seat else None)


def has_missed(booking: Booking, *, now: datetime | None = None) -> bool:
    """True once the slot's last moment to arrive has passed and the participant never sat in
    one of its rooms: they may book another slot."""
    now = now or timezone.now()
    if now <= arrival_window(booking.slot)[1]:
        return False
    return not RoomMember.objects.filter(
        participant_id=booking.participant_id, room__slot_id=booking.slot_id
    ).exists()


@transaction.atomic
def release_missed(*, participant_id: int, now: datetime | None = None) -> None:
    """Cancel a booking whose slot was missed, so the participant can book another."""
    now = now or timezone.now()
    _locked_participant(participant_id)
    booking = active_booking(participant_id)
    if booking is not None and has_missed(booking, now=now):
        Booking.objects.filter(pk=booking.pk).update(cancelled_at=now)


def may_leave(participant: Participant, *, now: datetime) -> bool:
    """Whether the live step is over for the participant: their room has closed (or they were
    removed from it), or they sit in none and have no session ahead (none booked, or the one
    booked missed) while no slot with a free place is left."""
    seat = seat_of(participant.pk)
    if seat is not None:
        return seat.removed_at is not None or seat.room.state == Room.State.CLOSED
    booking = active_booking(participant.pk)
    if booking is not None and not has_missed(booking, now=now):
        return False
    return not bookable_slots(participant.poll, now=now).exists()


@transaction.atomic
def leave(*, participant_id: int, spec: PollSpec) -> Place:
    """Move on from the live step: after the room has closed, or when no slot is left. The next
    place is the journey's: the reasons when the poll's deliberation is both live and
    asynchronous, else the wait (or T2 when it is open already)."""
    participant = _locked_participant(participant_id)
    if participant.step != Step.LIVE or not may_leave(participant, now=timezone.now()):
        return flow.current_place(participant)
    nxt = flow.next_place(spec, arm=participant.arm, place=Place(Step.LIVE, 0))
    participant.step, participant.page, participant.page_started_at = nxt.step, 0, timezone.now()
    participant.save(update_fields=["step", "page", "page_started_at"])
    if nxt.step == Step.WAIT:
        # The wait needs the return link (its hash stored), and is skipped when T2 is open.
        journey_actions.keep_return_link(participant_id=participant_id)
        return journey_actions.return_for_t2(participant_id=participant_id)
    return nxt
