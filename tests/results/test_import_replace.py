"""An import with replace only ever replaces participants that were themselves imported: the id
of someone who took part online (answers, a live-room seat, messages) is a row error in the
API, the command and their dry runs, and nothing changes. Error reports quote a bad cell cut
short and stay bounded however large the cells and however many the problems."""

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from results.exports.imports import (
    MAX_MESSAGE,
    MAX_REPORT,
    QUOTED,
    ImportFailed,
    Parser,
    import_responses,
)
from surveys.live.models import Message, Room, RoomMember, SessionSlot
from surveys.models import Answer, Participant, Poll

pytestmark = pytest.mark.django_db

COMPLETED = "2026-12-01T10:00:00Z"
HEADER = "participant,arm,language,rate_exit_t1,completed_at"
ONLINE_REFUSAL = (
    "{} took part online in this poll (not imported); only imported participants can be "
    "replaced, so give this row another id"
)


def seat_with_message(poll: Poll, person: Participant, group: int) -> RoomMember:
    slot = SessionSlot.objects.create(poll=poll, starts_at=timezone.now(), capacity=10)
    room = Room.objects.create(poll=poll, slot=slot, language="en", group=group)
    member = RoomMember.objects.create(room=room, participant=person, pseudonym="Ana")
    Message.objects.create(room=room, member=member, seq=1, text="Hello", client_id="c1")
    return member


def state_of(poll: Poll) -> dict[str, Any]:
    """Everything a replace could change: participants, answers, seats, messages."""
    return {
        "participants": sorted(
            Participant.objects.filter(poll=poll).values_list("pk", "public_id", "imported")
        ),
        "answers": sorted(Answer.objects.filter(poll=poll).values_list("pk", "value")),
        "seats": sorted(RoomMember.objects.filter(room__poll=poll).values_list("pk", flat=True)),
        "messages": Message.objects.filter(room__poll=poll).count(),
    }


@pytest.fixture
def online(poll: Poll) -> Participant:
    """One of the poll's online participants, seated in a live room where they wrote."""
    person = Participant.objects.filter(poll=poll, imported=False).order_by("pk").first()
    seat_with_message(poll, person, group=1)
    return person


def post_import(client: Any, poll: Poll, text: str, **flags: str) -> Any:
    return client.post(
        reverse("api:poll-import", kwargs={"slug": poll.slug}),
        {"file": io.BytesIO(text.encode()), **flags},
        format="multipart",
    )


@pytest.mark.parametrize("flags", [{"replace": "true"}, {"replace": "true", "dry_run": "true"}])
def test_the_api_refuses_to_replace_an_online_participant(
    researcher: Any, poll: Poll, online: Participant, flags: dict[str, str]
) -> None:
    before = state_of(poll)
    text = (
        f"{HEADER}\nnew-1,control,en,3,{COMPLETED}\n{online.public_id},control,en,3,{COMPLETED}\n"
    )
    response = post_import(researcher, poll, text, **flags)
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {"row": 3, "column": "participant", "message": ONLINE_REFUSAL.format(online.public_id)}
    ]
    assert state_of(poll) == before
    assert Participant.objects.get(pk=online.pk).room_seats.count() == 1


@pytest.mark.parametrize("options", [{"replace": True}, {"replace": True, "dry_run": True}, {}])
def test_the_command_refuses_to_replace_an_online_participant(
    poll: Poll, online: Participant, tmp_path: Path, options: dict[str, bool]
) -> None:
    before = state_of(poll)
    path = tmp_path / "panel.csv"
    path.write_text(f"{HEADER}\n{online.public_id},control,en,3,{COMPLETED}\n")
    with pytest.raises(CommandError) as failure:
        call_command("importresponses", poll.slug, str(path), **options)
    assert f"row 2, column participant: {ONLINE_REFUSAL.format(online.public_id)}" in str(
        failure.value
    )
    assert state_of(poll) == before


def test_replace_still_swaps_imported_participants_and_leaves_online_ones(
    researcher: Any, poll: Poll, online: Participant
) -> None:
    first = post_import(researcher, poll, f"{HEADER}\nstudy-1,control,en,3,{COMPLETED}\n")
    assert first.status_code == 201, first.content
    online_answers = Answer.objects.filter(participant=online).count()
    again = post_import(
        researcher, poll, f"{HEADER}\nstudy-1,treatment,en,9,{COMPLETED}\n", replace="true"
    )
    assert again.status_code == 201, again.content
    assert again.json()["replaced"] == 1
    swapped = Participant.objects.get(poll=poll, public_id="study-1")
    assert (swapped.arm, swapped.imported) == ("treatment", True)
    assert list(Answer.objects.filter(participant=swapped).values_list("value", flat=True)) == [9]
    assert Answer.objects.filter(participant=online).count() == online_answers
    assert RoomMember.objects.filter(participant=online).count() == 1


def test_an_imported_participant_other_records_protect_is_a_row_error_not_a_crash(
    researcher: Any, poll: Poll
) -> None:
    """Belt and braces: an imported participant seated by hand in a room where they wrote
    cannot be deleted; the import says so instead of failing with a server error."""
    first = post_import(researcher, poll, f"{HEADER}\nstudy-2,control,en,3,{COMPLETED}\n")
    assert first.status_code == 201, first.content
    seat_with_message(poll, Participant.objects.get(poll=poll, public_id="study-2"), group=2)
    before = state_of(poll)
    for flags in ({"replace": "true"}, {"replace": "true", "dry_run": "true"}):
        response = post_import(
            researcher, poll, f"{HEADER}\nstudy-2,control,en,5,{COMPLETED}\n", **flags
        )
        assert response.status_code == 400, response.content
        assert response.json()["errors"] == [
            {
                "row": 2,
                "column": "participant",
                "message": "study-2 cannot be replaced: messages refer to it",
            }
        ]
        assert state_of(poll) == before


# --- bounded error reports -----------------------------------------------------------------------


def test_a_huge_bad_cell_is_quoted_cut_short_with_its_length(researcher: Any, poll: Poll) -> None:
    text = f"{HEADER}\nbig-1,placebo{'B' * 5000},en,{'A' * 120_000},{COMPLETED}\n"
    response = post_import(researcher, poll, text, dry_run="true")
    assert response.status_code == 400
    messages = {e["column"]: e["message"] for e in response.json()["errors"]}
    assert messages == {
        "arm": f"'placebo{'B' * (QUOTED - 7)}…' (5,007 characters) is not treatment, control "
        "or empty",
        "rate_exit_t1": f"'{'A' * QUOTED}…' (120,000 characters) is not a whole number; "
        "allowed: whole numbers 0 to 10; missing-value codes: -99 (don't know)",
    }
    assert len(response.content) < 1000  # was 125 KB: the cells quoted whole
    assert not Participant.objects.filter(poll=poll, public_id="big-1").exists()


def test_many_huge_bad_cells_give_a_bounded_report(poll: Poll, tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    rows = (f"big-{n},control,en,{'9' * 50}{'A' * 20_000},{COMPLETED}" for n in range(260))
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    count = Participant.objects.filter(poll=poll).count()
    with pytest.raises(CommandError) as failure:
        call_command("importresponses", poll.slug, str(path))
    report = str(failure.value)
    assert len(report) < 60_000  # 260 x 20 KB cells: 5.2 MB if quoted whole
    assert report.count("(20,050 characters) is not a whole number") == 200
    assert report.endswith(
        "260 problems: the first 200 are listed, and 60 more; nothing was imported."
    )
    assert Participant.objects.filter(poll=poll).count() == count


def test_the_listed_errors_stop_at_the_report_limit_and_the_rest_are_counted(poll: Poll) -> None:
    parser = Parser(poll)
    for row in range(2, 202):
        parser.error(row, "c" * 500, "x" * 5000)
    sizes = [len(e.column) + len(e.message) for e in parser.errors]
    assert all(len(e.message) == MAX_MESSAGE + 1 for e in parser.errors)  # with the ellipsis
    assert all(len(e.column) == QUOTED + 1 for e in parser.errors)
    assert sum(sizes) <= MAX_REPORT
    assert len(parser.errors) == MAX_REPORT // sizes[0]
    assert len(parser.errors) + parser.more == 200


def test_short_cells_are_quoted_whole(poll: Poll) -> None:
    text = f"{HEADER}\nshort-1,control,en,eleven,{COMPLETED}\n"
    with pytest.raises(ImportFailed) as failure:
        import_responses(poll=poll, stream=io.BytesIO(text.encode()), recompute=print)
    (error,) = failure.value.errors
    assert error.message.startswith("'eleven' is not a whole number; allowed:")
