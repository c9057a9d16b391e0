"""The live models' database guarantees: what a retry, a race or a bug cannot break."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from surveys.live.models import MAX_MESSAGE_CHARS, Booking, Message, Room, RoomMember
from tests.live.conftest import make_room

pytestmark = pytest.mark.django_db


def test_a_client_id_stores_one_message_per_member(room: Room) -> None:
    member = room.members.first()
    Message.objects.create(room=room, member=member, client_id="c-1", seq=1, text="Hello")
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(room=room, member=member, client_id="c-1", seq=2, text="Hello")
    assert list(room.messages.values_list("seq", flat=True)) == [1]


def test_seq_is_unique_within_a_room_and_members_text_is_bounded(room: Room) -> None:
    first, second = room.members.all()[:2]
    Message.objects.create(room=room, member=first, client_id="a", seq=1, text="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(room=room, member=second, client_id="b", seq=1, text="y")
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            room=room, member=second, client_id="c", seq=2, text="y" * (MAX_MESSAGE_CHARS + 1)
        )
    # The moderator's prompt quotes the agenda and may be longer than a member's message.
    Message.objects.create(room=room, kind="prompt", seq=2, text="p" * (MAX_MESSAGE_CHARS + 1))
    assert room.messages.count() == 2


def test_a_participant_has_one_live_seat_and_one_active_booking(room: Room) -> None:
    member = room.members.first()
    other = make_room(poll=room.poll, group=2, members=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        RoomMember.objects.create(room=other, participant=member.participant, pseudonym="Again")
    # Removed from the first room, the participant may sit in another.
    RoomMember.objects.filter(pk=member.pk).update(removed_at=timezone.now())
    RoomMember.objects.create(room=other, participant=member.participant, pseudonym="Again")

    Booking.objects.create(participant=member.participant, slot=room.slot)
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.create(participant=member.participant, slot=other.slot)
    Booking.objects.filter(participant=member.participant).update(cancelled_at=timezone.now())
    Booking.objects.create(participant=member.participant, slot=other.slot)
    assert Booking.objects.filter(participant=member.participant).count() == 2
