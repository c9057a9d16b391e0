"""The organisers' admin of live rooms: slots, the live watch, moderation, the plenary."""

import datetime as dt

import pytest
from django.utils import timezone

from surveys.live import actions
from surveys.live.admin.plenary import group_similar, plenary_groups
from surveys.live.models import (
    ExpertAnswer,
    Message,
    PanelQuestion,
    PanelVote,
    RoomLog,
    SessionSlot,
)
from tests.live.conftest import make_room
from tests.live.test_views import opened
from tests.surveys.admin_fixtures import client_for, staff

pytestmark = pytest.mark.django_db


def test_similar_questions_are_grouped_and_different_ones_stand_apart():
    texts = [
        "What would an amnesty for Putin mean for international law?",
        "Would an amnesty for Putin break international law?",
        "How many tanks can the West deliver this year?",
        "Яку кількість танків Захід може передати цього року?",
        "How many tanks could the West deliver in a year?",
    ]
    groups = group_similar(texts)
    assert sorted(map(sorted, groups)) == [[0, 1], [2, 4], [3]]
    assert group_similar(["only one"]) == [[0]]
    assert group_similar([]) == []


def test_the_watch_page_shows_the_transcript_flags_and_who_is_silent():
    room = opened(make_room(members=3))
    organiser = staff("organiser", polls=(room.poll,))
    speaker = room.members.get(pseudonym="Member 1")
    actions.post_message(member=speaker, client_id="a", text="I support option one")
    page = client_for(organiser).get(f"/admin/live/room/{room.pk}/watch/").content.decode()
    assert "I support option one" in page
    assert page.count(">silent<") == 2  # Member 2 and Member 3 wrote nothing on this item
    fragment = client_for(organiser).get(f"/admin/live/room/{room.pk}/watch/?fragment=1")
    assert "I support option one" in fragment.content.decode()


def test_an_organiser_hides_a_message_and_removes_a_member_and_both_are_logged():
    room = opened(make_room(members=3))
    organiser = staff("organiser", polls=(room.poll,))
    member = room.members.get(pseudonym="Member 2")
    message, _ = actions.post_message(member=member, client_id="b", text="rude words")
    client = client_for(organiser)
    url = f"/admin/live/room/{room.pk}/watch/"
    client.post(url, {"action": "hide", "target": message.pk})
    message.refresh_from_db()
    assert message.hidden_at is not None and message.hidden_by == Message.HiddenBy.ORGANISER
    client.post(url, {"action": "remove", "target": member.pk})
    member.refresh_from_db()
    assert member.removed_at is not None
    logged = set(
        RoomLog.objects.filter(room=room, actor=organiser).values_list("action", flat=True)
    )
    assert {RoomLog.Action.HIDE, RoomLog.Action.REMOVE} <= logged


def test_organisers_see_only_the_rooms_of_their_polls():
    room = make_room(members=1)
    other = make_room(members=1, group=2)
    organiser = staff("organiser", polls=(room.poll,))
    client = client_for(organiser)
    assert client.get(f"/admin/live/room/{other.pk}/watch/").status_code == 404
    assert client.get(f"/admin/live/room/plenary/{other.poll_id}/").status_code == 404
    listing = client.get("/admin/live/room/").content.decode()
    assert f"Watch room {room.pk}" in listing and f"Watch room {other.pk}" not in listing


def test_a_new_slot_in_the_past_is_refused_with_the_times_named():
    room = make_room(members=0)
    organiser = staff("organiser", polls=(room.poll,))
    past = timezone.now() - dt.timedelta(hours=1)
    response = client_for(organiser).post(
        "/admin/live/sessionslot/add/",
        {
            "poll": room.poll_id,
            "starts_at": past.strftime("%Y-%m-%dT%H:%M"),
            "duration_minutes": 60,
            "capacity": 20,
            "turn_seconds": 0,
            "item_seconds": 600,
            "question_seconds": 600,
        },
    )
    assert response.status_code == 200
    assert "A new session must start in the future" in response.content.decode()
    assert SessionSlot.objects.filter(poll=room.poll).count() == 1


def test_the_plenary_groups_the_top_questions_and_publishes_an_answer():
    first = make_room(members=2)
    second = make_room(poll=first.poll, members=2, group=2)
    asked = []
    for room, text in (
        (first, "Would an amnesty for Putin break international law?"),
        (second, "What would an amnesty for Putin mean for international law?"),
    ):
        author, voter = list(room.members.all())
        question = PanelQuestion.objects.create(room=room, member=author, text=text)
        PanelVote.objects.create(question=question, member=voter)
        asked.append(question)
    groups = plenary_groups(first.poll)
    assert len(groups) == 1 and groups[0]["rooms"] == 2 and groups[0]["votes"] == 2
    organiser = staff("organiser", polls=(first.poll,))
    url = f"/admin/live/room/plenary/{first.poll_id}/"
    client = client_for(organiser)
    assert "amnesty for Putin" in client.get(url).content.decode()
    refused = client.post(url, {"questions": [asked[0].pk], "title": "Amnesty"})
    assert "text, a link to a recording, or both" in refused.content.decode()
    assert not ExpertAnswer.objects.exists()
    client.post(
        url,
        {
            "questions": [q.pk for q in asked],
            "title": "Amnesty and the law",
            "link": "https://example.org/panel.mp4",
        },
    )
    answer = ExpertAnswer.objects.get()
    assert answer.published_at is not None and answer.created_by == organiser
    assert set(answer.questions.values_list("pk", flat=True)) == {q.pk for q in asked}


def test_the_watch_page_in_ukrainian_shows_the_log_in_words():
    room = opened(make_room(members=3))
    organiser = staff("organiser", polls=(room.poll,))
    member = room.members.get(pseudonym="Member 2")
    message, _ = actions.post_message(member=member, client_id="c", text="rude words")
    client = client_for(organiser)
    url = f"/admin/live/room/{room.pk}/watch/"
    client.post(url, {"action": "hide", "target": message.pk})
    RoomLog.objects.create(room=room, action=RoomLog.Action.FLAG, detail={"seq": 4, "flags": 1})
    RoomLog.objects.create(room=room, action=RoomLog.Action.ITEM, detail={"item": 1})
    english = client.get(url).content.decode()
    assert "message 4, 1 flag" in english and "item 2" in english
    assert "{&#x27;seq&#x27;" not in english  # never the stored dict
    client.cookies["django_language"] = "uk"
    page = client.get(url).content.decode()
    assert "Стенограма" in page and "Журнал" in page and "Учасники" in page
    assert "повідомлення 4, 1 скарга" in page and "пункт 2" in page
    assert "модератор" in page  # the log rows without a person
    assert f"Знову показати №{message.seq}" in page
    assert "Transcript" not in page and ">silent<" not in page
