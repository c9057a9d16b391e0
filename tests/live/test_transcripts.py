"""Transcripts and the measures of deliberation go to researchers under pseudonyms only, to the
right grants only: JSON and CSV through the API, both files per room in the data package."""

import csv
import io
import json
import zipfile
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from results.access import grant_access, issue_api_token
from results.exports.package import write_package
from results.models import ResultSnapshot
from surveys.live.models import Message, Room
from surveys.models import Participant, Poll
from tests.factories import make_poll
from tests.live.conftest import make_room
from tests.results.api_fixtures import bearer

pytestmark = pytest.mark.django_db


def client_for(poll: Poll | None, level: str = "microdata", name: str = "reader") -> Any:
    user = get_user_model().objects.create_user(name, password="x-unused-password")
    if poll is not None:
        grant_access(user=user, poll=poll, level=level)
    return bearer(issue_api_token(user=user, name="tests").secret)


@pytest.fixture
def room() -> Room:
    poll = make_poll(slug="transcribed")
    room = make_room(poll=poll, members=3, group=7)
    ann, ben, cat = room.members.order_by("pseudonym")
    Participant.objects.filter(room_seats__room=room).update(
        label="secret label", contact="someone@example.org"
    )
    messages = [
        (None, "Welcome: the first option.", {"kind": Message.Kind.PROMPT}),
        (ann, '=HYPERLINK("http://evil")', {}),
        (ben, "I disagree with Member 1", {"reply_to_seq": 2}),
        (cat, "my phone is 555 0100", {"hidden_at": timezone.now(), "hidden_by": "organiser"}),
        (None, "Member 3, your view?", {"kind": Message.Kind.NUDGE, "to_member": cat}),
    ]
    stored: dict[int, Message] = {}
    for seq, (member, text, extra) in enumerate(messages, 1):
        reply = stored.get(extra.pop("reply_to_seq", 0))
        stored[seq] = Message.objects.create(
            room=room,
            member=member,
            seq=seq,
            text=text,
            client_id=f"c{seq}" if member else "",
            reply_to=reply,
            **extra,
        )
    rows = {"room": 7, "item": "", "subgroup": "", "subgroup_value": "", "n_words": 9}
    member_row = {"room": 7, "pseudonym": "Member 1", "item": "", "n_words": 2}
    ResultSnapshot.objects.create(
        poll=poll,
        n_participants=3,
        n_treatment=3,
        n_control=0,
        fingerprint="f" * 64,
        code_version="test",
        payload={
            "deliberation_rooms": [rows],
            "deliberation_members": [member_row],
            "meta": {},
        },
        released_at=timezone.now(),
    )
    return room


def url(name: str, poll: Poll, **kwargs: Any) -> str:
    return reverse(f"api:{name}", kwargs={"slug": poll.slug, **kwargs})


def assert_no_identity(poll: Poll, body: bytes) -> None:
    for public_id in Participant.objects.filter(poll=poll).values_list("public_id", flat=True):
        assert public_id.encode() not in body
    assert b"secret label" not in body and b"example.org" not in body


def test_the_room_list_links_each_transcript(room):
    client = client_for(room.poll)
    response = client.get(url("poll-transcripts", room.poll))
    assert response.status_code == 200
    (listed,) = response.json()
    assert (listed["group"], listed["n_members"], listed["n_messages"]) == (7, 3, 5)
    assert listed["transcript"].endswith(url("poll-transcript", room.poll, group=7))


def test_a_transcript_in_json_has_pseudonyms_and_no_hidden_text(room):
    response = client_for(room.poll).get(url("poll-transcript", room.poll, group=7))
    assert response.status_code == 200
    body = response.json()
    assert body["columns"][:3] == ["room", "seq", "created_at"]
    rows = body["rows"]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["author"] for r in rows] == [
        "moderator",
        "Member 1",
        "Member 2",
        "Member 3",
        "moderator",
    ]
    assert rows[2]["reply_to_seq"] == 2 and rows[4]["to"] == "Member 3"
    assert (rows[3]["hidden_by"], rows[3]["text"]) == ("organiser", "")
    assert rows[1]["option"] == "exit"
    assert b"555 0100" not in response.content
    assert_no_identity(room.poll, response.content)


def test_a_transcript_in_csv_has_the_same_rows_with_formulas_neutralised(room):
    response = client_for(room.poll).get(
        url("poll-transcript", room.poll, group=7), {"format": "csv"}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 5
    assert rows[1]["text"] == "'" + '=HYPERLINK("http://evil")'
    assert rows[3]["text"] == "" and rows[3]["hidden_by"] == "organiser"
    assert_no_identity(room.poll, response.content)


def test_aggregates_grants_read_room_measures_but_no_member_rows_or_transcripts(room):
    client = client_for(room.poll, level="aggregates")
    rooms = client.get(url("results-deliberation-rooms", room.poll))
    assert rooms.status_code == 200 and rooms.json()["rows"][0]["n_words"] == 9
    for name, kwargs in (
        ("results-deliberation-members", {}),
        ("poll-transcripts", {}),
        ("poll-transcript", {"group": 7}),
    ):
        response = client.get(url(name, room.poll, **kwargs))
        assert response.status_code == 403, name
        assert b"Member 1" not in response.content
    members = client_for(room.poll, name="micro").get(
        url("results-deliberation-members", room.poll)
    )
    assert members.status_code == 200 and members.json()["rows"][0]["pseudonym"] == "Member 1"


def test_a_token_for_another_poll_gets_nothing(room):
    other = make_poll(slug="other-poll")
    client = client_for(other)
    for name, kwargs in (
        ("results-deliberation-rooms", {}),
        ("results-deliberation-members", {}),
        ("poll-transcripts", {}),
        ("poll-transcript", {"group": 7}),
    ):
        response = client.get(url(name, room.poll, **kwargs))
        assert response.status_code == 404, name
        assert b"Member" not in response.content
    assert (
        client_for(None, name="nobody").get(url("poll-transcripts", room.poll)).status_code == 404
    )


def test_an_unknown_room_is_not_found(room):
    client = client_for(room.poll)
    assert client.get(url("poll-transcript", room.poll, group=8)).status_code == 404
    assert client.get(url("poll-transcript", room.poll, group=2**40)).status_code == 404


def test_the_data_package_has_each_rooms_transcript_and_the_measures(room, tmp_path):
    path = tmp_path / "package.zip"
    write_package(room.poll, path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {
            "transcripts/room_7.csv",
            "transcripts/room_7.json",
            "results/deliberation_rooms.csv",
            "results/deliberation_members.csv",
        } <= names
        descriptor = json.loads(archive.read("datapackage.json"))
        paths = {resource["path"] for resource in descriptor["resources"]}
        assert "transcripts/room_7.csv" in paths and paths <= names
        transcript = json.loads(archive.read("transcripts/room_7.json"))
        assert [m["author"] for m in transcript["messages"]][1] == "Member 1"
        everything = b"".join(archive.read(name) for name in names if name.startswith("tr"))
        assert_no_identity(room.poll, everything)
        assert b"555 0100" not in everything
        rooms_csv = archive.read("results/deliberation_rooms.csv").decode().splitlines()
        assert rooms_csv[0].startswith("room,item,subgroup,subgroup_value,n_members")
