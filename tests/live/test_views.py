"""The live step's pages and the room's HTTP fallback, through Django's test client."""

import datetime as dt
import json

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from surveys.journey.access import COOKIE_SALT, cookie_name
from surveys.live import moderator
from surveys.live.models import ExpertAnswer, Message, Room, SessionSlot
from surveys.models import Participant, Poll
from tests.live.conftest import make_room
from tests.live.test_rooms import at_live, live_poll, slot

pytestmark = pytest.mark.django_db


def client_of(participant: Participant) -> Client:
    client = Client()
    slug = participant.poll.slug
    signer = signing.get_cookie_signer(salt=cookie_name(slug) + COOKIE_SALT)
    client.cookies[cookie_name(slug)] = signer.sign(participant.public_id)
    return client


def opened(room: Room) -> Room:
    """The room with its moderator at the first agenda item (as at the slot's start)."""
    Room.objects.filter(pk=room.pk).update(deadline=timezone.now())
    moderator.tick_room(room.pk)
    return Room.objects.get(pk=room.pk)


def seated(room: Room) -> list[Participant]:
    people = list(Participant.objects.filter(room_seats__room=room).order_by("pk"))
    Participant.objects.filter(pk__in=[p.pk for p in people]).update(
        step=Participant.Step.LIVE, consented_at=timezone.now()
    )
    Poll.objects.filter(pk=room.poll_id).update(deliberation="live")
    for person in people:
        person.refresh_from_db()
    return people


def test_the_live_page_offers_the_slots_and_books_the_one_chosen():
    poll = live_poll()
    first, second = slot(poll, minutes=120), slot(poll, minutes=240)
    participant = at_live(poll)
    client = client_of(participant)
    page = client.get("/p/live-poll/live/").content.decode()
    assert f'value="{first.pk}"' in page and f'value="{second.pk}"' in page
    response = client.post("/p/live-poll/live/", {"slot": second.pk})
    assert response.status_code == 302
    booked = client.get(response["Location"]).content.decode()
    assert "Your session is booked." in booked
    assert "/p/live-poll/live/session.ics" in booked
    assert participant.bookings.get(cancelled_at__isnull=True).slot_id == second.pk
    calendar = client.get("/p/live-poll/live/session.ics")
    assert calendar["Content-Type"].startswith("text/calendar")
    assert second.starts_at.strftime("DTSTART:%Y%m%dT%H%M") in calendar.content.decode()


def test_a_bad_slot_choice_is_refused_with_its_reason_and_nothing_stored():
    poll = live_poll()
    slot(poll)
    slot(poll, minutes=90)
    participant = at_live(poll)
    client = client_of(participant)
    for posted, words in (({}, "Choose one of the sessions."), ({"slot": 99999}, "does not exist")):
        response = client.post("/p/live-poll/live/", posted)
        assert response.status_code == 400
        assert words in response.content.decode()
    assert not participant.bookings.exists()


def test_with_one_slot_the_participant_is_booked_for_it_in_their_language():
    poll = live_poll()
    only = slot(poll)
    participant = at_live(poll, language="uk")
    page = client_of(participant).get("/p/live-poll/live/?lang=uk")
    assert page.status_code == 200
    assert participant.bookings.get().slot_id == only.pk
    assert 'lang="uk"' in page.content.decode()
    assert "Є одна сесія: вас на неї записано." in page.content.decode()


def test_with_no_slot_left_the_participant_goes_on():
    poll = live_poll()
    participant = at_live(poll)
    client = client_of(participant)
    assert "no discussion session left" in client.get("/p/live-poll/live/").content.decode()
    response = client.post("/p/live-poll/live/", {"action": "continue"})
    participant.refresh_from_db()
    assert participant.step in ("wait", "t2")
    assert (
        response["Location"].endswith(f"/{participant.step}/") or "/t2/1/" in response["Location"]
    )


def test_the_room_page_shows_agenda_members_and_messages_and_the_fallback_speaks_json():
    room = opened(make_room(members=3))
    people = seated(room)
    client = client_of(people[0])
    page = client.get("/p/live-1/live/").content.decode()
    assert 'id="messages"' in page and 'aria-live="polite"' in page
    assert "Member 2" in page and "Option 1 of" in page
    send = "/p/live-1/live/send/"
    body = json.dumps({"type": "post", "client_id": "c-1", "text": "Hello, group"})
    first = client.post(send, body, content_type="application/json")
    again = client.post(send, body, content_type="application/json")
    assert first.json()["events"][0]["type"] == "ack"
    assert first.json()["events"][0]["seq"] == again.json()["events"][0]["seq"]
    assert Message.objects.filter(room=room, client_id="c-1").count() == 1
    seq = first.json()["events"][0]["seq"]
    events = client_of(people[1]).get(f"/p/live-1/live/events/?since={seq - 1}").json()["events"]
    assert events[0]["type"] == "state" and events[0]["state"] == "item"
    assert [e["text"] for e in events[1:]] == ["Hello, group"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "malformed"),
        (json.dumps({"type": "shout"}), "unknown_type"),
        (json.dumps(["post"]), "malformed"),
        (json.dumps({"type": "post", "client_id": "c-2", "text": "x" * 1001}), None),
        (json.dumps({"type": "post", "client_id": "c-3", "text": ""}), "invalid"),
    ],
)
def test_the_fallback_refuses_bad_messages_and_stores_nothing(body, code):
    room = opened(make_room(members=2))
    people = seated(room)
    before = Message.objects.filter(room=room).count()
    response = client_of(people[0]).post(
        "/p/live-1/live/send/", body, content_type="application/json"
    )
    assert response.status_code == 400
    event = response.json()["events"][0]
    assert event["type"] == "error" and event["message"]
    if code:
        assert event["code"] == code
    assert Message.objects.filter(room=room).count() == before


def test_a_participant_of_another_poll_or_outside_the_room_gets_nothing():
    room = opened(make_room(members=2))
    seated(room)
    stranger = at_live(live_poll(slug="live-other"))
    response = client_of(stranger).get("/p/live-1/live/events/")
    assert response.status_code in (302, 410)
    response = client_of(stranger).post(
        "/p/live-1/live/send/",
        json.dumps({"type": "post", "client_id": "x", "text": "hi"}),
        content_type="application/json",
    )
    assert response.status_code in (302, 410)
    assert not Message.objects.filter(room=room, client_id="x").exists()


def test_after_the_room_closes_the_participant_reads_the_answers_and_goes_on():
    room = make_room(members=2)
    people = seated(room)
    Room.objects.filter(pk=room.pk).update(state=Room.State.CLOSED, closed_at=timezone.now())
    ExpertAnswer.objects.create(
        poll_id=room.poll_id,
        title="On sanctions",
        text="The panel says...",
        published_at=timezone.now(),
    )
    ExpertAnswer.objects.create(poll_id=room.poll_id, title="Draft, not published", text="x")
    client = client_of(people[0])
    page = client.get("/p/live-1/live/").content.decode()
    assert "The discussion has ended" in page and "On sanctions" in page
    assert "Draft, not published" not in page
    client.post("/p/live-1/live/", {"action": "continue"})
    people[0].refresh_from_db()
    assert people[0].step != "live"


def test_a_participant_at_another_step_is_sent_to_their_place():
    poll = live_poll()
    SessionSlot.objects.create(
        poll=poll, starts_at=timezone.now() + dt.timedelta(hours=1), capacity=5
    )
    participant = at_live(poll)
    Participant.objects.filter(pk=participant.pk).update(step="t1", page=0)
    response = client_of(participant).get("/p/live-poll/live/")
    assert response.status_code == 302 and "/t1/1/" in response["Location"]


def test_the_wait_page_shows_published_answers_to_who_sat_in_a_room_only():
    room = make_room(members=1)
    (member,) = seated(room)
    Poll.objects.filter(pk=room.poll_id).update(t2_after=dt.timedelta(days=2))
    waiting = Participant.objects.create(
        poll_id=room.poll_id, arm="control", consented_at=timezone.now(), step="wait"
    )
    Participant.objects.filter(pk=member.pk).update(step="wait", t1_completed_at=timezone.now())
    ExpertAnswer.objects.create(
        poll_id=room.poll_id, title="On the law", text="An answer.", published_at=timezone.now()
    )
    page = client_of(member).get("/p/live-1/wait/").content.decode()
    assert "Answers from the expert panel" in page and "On the law" in page
    other = client_of(waiting).get("/p/live-1/wait/").content.decode()
    assert "On the law" not in other
