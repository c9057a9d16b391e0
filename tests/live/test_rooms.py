"""Booking session slots and forming rooms (surveys.live.rooms) on PostgreSQL."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from surveys.definition.spec import poll_spec
from surveys.journey import flow
from surveys.live import rooms
from surveys.live.models import Booking, Room, RoomMember, SessionSlot
from surveys.models import Answer, Participant, Poll, Question
from tests.factories import make_poll

pytestmark = pytest.mark.django_db


def live_poll(**overrides) -> Poll:
    poll = make_poll(slug=overrides.pop("slug", "live-poll"), **overrides)
    Poll.objects.filter(pk=poll.pk).update(
        deliberation="live", group_size=3, languages=["en", "uk"]
    )
    poll.refresh_from_db()
    return poll


def at_live(poll: Poll, *, language: str = "en") -> Participant:
    return Participant.objects.create(
        poll=poll,
        arm=Participant.Arm.TREATMENT,
        step=Participant.Step.LIVE,
        language=language,
        consented_at=timezone.now(),
        group=1,
        group_language=language,
    )


def slot(poll: Poll, *, minutes: float = 60, capacity: int = 10) -> SessionSlot:
    return SessionSlot.objects.create(
        poll=poll,
        starts_at=timezone.now() + dt.timedelta(minutes=minutes),
        capacity=capacity,
        item_seconds=60,
        question_seconds=60,
    )


def test_deal_balances_sizes_and_snakes_through_the_spread_of_opinion():
    members = list(range(1, 8))
    scores = {m: float(m) for m in members}
    dealt = rooms.deal(members, 3, scores)
    assert sorted(len(room) for room in dealt) == [2, 2, 3]
    # Sorted 1..7 dealt 1,2,3 | 3,2,1 | 1: each room holds low and high.
    assert dealt == [[1, 6, 7], [2, 5], [3, 4]]
    assert rooms.deal(members, 3, None) == [[1, 4, 7], [2, 5], [3, 6]]


def test_deal_puts_who_gave_no_score_at_the_median():
    dealt = rooms.deal([1, 2, 3, 4], 2, {1: 0.0, 2: 10.0, 3: 5.0})
    # 4 counts as 5.0: order 1, 3, 4, 2 -> rooms [1, 2] and [3, 4].
    assert dealt == [[1, 2], [3, 4]]


def test_booking_takes_a_place_and_booking_another_slot_replaces_it():
    poll = live_poll()
    first, second = slot(poll, minutes=60), slot(poll, minutes=120)
    participant = at_live(poll)
    rooms.book(participant_id=participant.pk, slot_id=first.pk)
    again = rooms.book(participant_id=participant.pk, slot_id=first.pk)
    assert Booking.objects.filter(participant=participant).count() == 1
    moved = rooms.book(participant_id=participant.pk, slot_id=second.pk)
    assert moved.pk != again.pk
    active = Booking.objects.filter(participant=participant, cancelled_at__isnull=True)
    assert list(active.values_list("slot_id", flat=True)) == [second.pk]


def test_a_full_or_started_or_foreign_slot_is_refused_and_nothing_stored():
    poll = live_poll()
    other = live_poll(slug="other-poll")
    full = slot(poll, capacity=1)
    rooms.book(participant_id=at_live(poll).pk, slot_id=full.pk)
    started = slot(poll, minutes=-1)
    foreign = slot(other)
    participant = at_live(poll)
    for target, words in ((full, "full"), (started, "already started"), (foreign, "not exist")):
        with pytest.raises(rooms.BookingError, match=words):
            rooms.book(participant_id=participant.pk, slot_id=target.pk)
    assert not Booking.objects.filter(participant=participant).exists()


def test_bookable_slots_are_future_ones_with_a_free_place():
    poll = live_poll()
    full, free = slot(poll, minutes=30, capacity=1), slot(poll, minutes=90)
    slot(poll, minutes=-5)
    rooms.book(participant_id=at_live(poll).pk, slot_id=full.pk)
    assert list(rooms.bookable_slots(poll)) == [free]


@pytest.mark.django_db(transaction=True)
def test_concurrent_bookings_of_the_last_place_take_it_once():
    poll = live_poll()
    last = slot(poll, capacity=1)
    people = [at_live(poll) for _ in range(4)]
    errors: list[Exception] = []

    def take(participant_id: int) -> None:
        try:
            rooms.book(participant_id=participant_id, slot_id=last.pk)
        except rooms.BookingError as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(p.pk,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Booking.objects.filter(slot=last, cancelled_at__isnull=True).count() == 1
    assert len(errors) == 3


def test_rooms_form_at_the_start_per_language_at_the_group_size():
    poll = live_poll()
    spec = poll_spec(poll)
    start = slot(poll, minutes=0.5)
    english = [at_live(poll) for _ in range(5)]
    ukrainian = [at_live(poll, language="uk") for _ in range(2)]
    for participant in english + ukrainian:
        rooms.book(participant_id=participant.pk, slot_id=start.pk)
        # In the lobby before the start: present, no room yet.
        assert rooms.arrive(participant_id=participant.pk, spec=spec).room is None
    later = start.starts_at + dt.timedelta(seconds=5)
    arrival = rooms.arrive(participant_id=english[0].pk, spec=spec, now=later)
    assert arrival.room is not None
    formed = Room.objects.filter(slot=start)
    assert sorted(formed.values_list("language", flat=True)) == ["en", "en", "uk"]
    sizes = sorted(room.members.count() for room in formed.filter(language="en"))
    assert sizes == [2, 3]
    for participant in english + ukrainian:
        participant.refresh_from_db()
        seat = RoomMember.objects.get(participant=participant)
        assert participant.group == seat.room.group
        assert seat.room.language == participant.language
    # The room groups are new numbers, unique in the poll.
    groups = list(formed.values_list("group", flat=True))
    assert len(set(groups)) == 3 and min(groups) > 1
    # A second call forms nothing new.
    assert rooms.form_rooms(slot_id=start.pk, spec=spec, now=later) == []
    assert formed.count() == 3


def test_a_late_arrival_joins_the_smallest_room_of_their_language():
    poll = live_poll()
    spec = poll_spec(poll)
    start = slot(poll, minutes=0.5)
    early = [at_live(poll) for _ in range(4)]
    late = at_live(poll)
    for participant in [*early, late]:
        rooms.book(participant_id=participant.pk, slot_id=start.pk)
    for participant in early:
        rooms.arrive(participant_id=participant.pk, spec=spec)
    rooms.arrive(participant_id=early[0].pk, spec=spec, now=start.starts_at)
    after = start.starts_at + dt.timedelta(minutes=3)
    assert Room.objects.filter(slot=start).count() == 2
    seat = rooms.arrive(participant_id=late.pk, spec=spec, now=after).room
    assert seat is not None
    assert sorted(r.members.count() for r in Room.objects.filter(slot=start)) == [2, 3]


def test_rooms_are_balanced_on_t1_opinion_when_the_slot_asks():
    poll = live_poll()
    spec = poll_spec(poll)
    start = slot(poll, minutes=0.5)
    SessionSlot.objects.filter(pk=start.pk).update(balance_opinion=True)
    question = Question.objects.get(poll=poll, key="rate_exit")
    people = [at_live(poll) for _ in range(6)]
    for number, participant in enumerate(people):
        Answer.objects.create(
            poll=poll,
            participant=participant,
            question=question,
            wave=1,
            value=number,
            number=number,
        )
        rooms.book(participant_id=participant.pk, slot_id=start.pk)
        rooms.arrive(participant_id=participant.pk, spec=spec)
    rooms.arrive(participant_id=people[0].pk, spec=spec, now=start.starts_at)
    for room in Room.objects.filter(slot=start):
        scores = sorted(
            Answer.objects.filter(
                participant__room_seats__room=room, question=question
            ).values_list("number", flat=True)
        )
        assert scores[0] <= 1 and scores[-1] >= 4


def test_a_missed_slot_can_be_replaced_and_without_slots_the_participant_goes_on():
    poll = live_poll()
    spec = poll_spec(poll)
    past = slot(poll, minutes=5)
    participant = at_live(poll)
    rooms.book(participant_id=participant.pk, slot_id=past.pk)
    much_later = past.starts_at + dt.timedelta(minutes=rooms.LATE_MINUTES + 1)
    assert rooms.arrive(participant_id=participant.pk, spec=spec, now=much_later).missed
    SessionSlot.objects.filter(pk=past.pk).update(starts_at=timezone.now() - dt.timedelta(hours=1))
    # With a slot still ahead, the live step is not over.
    ahead = slot(poll, minutes=30)
    assert rooms.leave(participant_id=participant.pk, spec=spec).step == "live"
    rooms.release_missed(participant_id=participant.pk)
    rooms.book(participant_id=participant.pk, slot_id=ahead.pk)
    SessionSlot.objects.filter(pk=ahead.pk).update(starts_at=timezone.now() - dt.timedelta(hours=1))
    nxt = rooms.leave(participant_id=participant.pk, spec=spec)
    participant.refresh_from_db()
    assert nxt.step in ("wait", "t2") and participant.step == nxt.step


def test_flow_puts_live_in_the_treatment_path_only_for_live_polls():
    poll = live_poll()
    spec = poll_spec(poll)
    steps = flow.shown_steps(spec, "treatment")
    assert "live" in steps and "deliberation" not in steps
    assert "live" not in flow.shown_steps(spec, "control")
    nxt = flow.next_place(spec, arm="treatment", place=flow.Place("briefing", len(spec.positions)))
    assert nxt.step == "live"
