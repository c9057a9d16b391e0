"""Import of a wide panel file: errors by row and column with nothing stored, and the
export-import round trip."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from results.exports.imports import MAX_UPLOAD_BYTES, ImportFailed, import_responses
from results.exports.writers import whole
from results.tasks import schedule_recompute
from surveys.definition.files import save_poll, validate
from surveys.models import Answer, Participant
from tests.results.api_fixtures import bearer, research_definition

pytestmark = pytest.mark.django_db


def wide_csv(client, poll) -> bytes:
    response = client.get(
        reverse("api:poll-export", kwargs={"slug": poll.slug}), {"format": "csv-wide"}
    )
    return b"".join(response.streaming_content)


@pytest.fixture
def fresh_copy(db):
    data = validate(research_definition(slug="small-poll-copy"), "<test>")
    poll, _ = save_poll(data=data, source="<test>")
    return poll


def upload(client, poll, content: bytes):
    return client.post(
        reverse("api:poll-import", kwargs={"slug": poll.slug}),
        {"file": io.BytesIO(content)},
        format="multipart",
    )


def test_broken_file_is_rejected_with_row_and_column_errors_and_nothing_stored(
    researcher, poll, fresh_copy, make_researcher
):
    from results.access import grant_access
    from results.models import Grant

    user = Grant.objects.get(poll=poll).user
    grant_access(user=user, poll=fresh_copy, level=Grant.Level.MICRODATA, can_import=True)
    lines = wide_csv(researcher, poll).decode().splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:4]]
    rows[0][header.index("rate_exit_t1")] = "11"  # outside 0..10
    rows[1][header.index("arm")] = "placebo"
    rows[2][header.index("leaning_t1")] = "7"  # no such choice code
    content = "\n".join([lines[0], *(",".join(r) for r in rows)]).encode()
    response = upload(researcher, fresh_copy, content)
    assert response.status_code == 400
    errors = {(e["row"], e["column"]) for e in response.json()["errors"]}
    assert errors == {(2, "rate_exit_t1"), (3, "arm"), (4, "leaning_t1")}
    assert "outside the scale 0..10" in response.json()["errors"][0]["message"]
    assert not Participant.objects.filter(poll=fresh_copy).exists()
    assert not Answer.objects.filter(poll=fresh_copy).exists()


def test_unknown_columns_and_duplicate_ids_are_reported(fresh_copy, tmp_path):
    content = b"participant,arm,rate_nothing_t1\np1,treatment,3\np1,control,4\n"
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError) as failure:
        call_command("importresponses", fresh_copy.slug, str(path))
    assert "row 1, column rate_nothing_t1: unknown column" in str(failure.value)
    path.write_bytes(b"participant,arm\np1,treatment\np1,control\n")
    with pytest.raises(CommandError, match="row 3, column participant: the same id as row 2"):
        call_command("importresponses", fresh_copy.slug, str(path))
    assert not Participant.objects.filter(poll=fresh_copy).exists()


def test_round_trip_restores_every_answer_and_marks_participants_imported(
    researcher, poll, fresh_copy, tmp_path
):
    path = tmp_path / "wide.csv"
    path.write_bytes(wide_csv(researcher, poll))
    out = io.StringIO()
    call_command("importresponses", fresh_copy.slug, str(path), stdout=out)
    assert f"Imported {poll.participants.count()} participants" in out.getvalue()
    copies = Participant.objects.filter(poll=fresh_copy)
    assert copies.count() == poll.participants.count()
    assert all(copies.values_list("imported", flat=True))

    def answers(target) -> list:
        # A whole number comes back whole (-2, where the journey stored -2.0): the same answer.
        rows = Answer.objects.filter(poll=target).select_related("participant", "question")
        return sorted(
            (
                a.participant.public_id,
                a.question.key,
                a.wave,
                repr(whole(a.value)),
                a.number,
                a.missing,
            )
            for a in rows
        )

    # Ids are unique within a poll: the same panel in a second poll keeps its ids as given.
    assert answers(fresh_copy) == answers(poll)
    source = {p.public_id: p for p in poll.participants.all()}
    for copy in copies:
        original = source[copy.public_id]
        assert (copy.arm, copy.group, copy.position_order, copy.weight) == (
            original.arm,
            original.group,
            original.position_order,
            original.weight,
        )
        assert copy.completed_at == original.completed_at
        assert copy.step_times == original.step_times


def test_round_trip_gives_identical_results_tables(researcher, poll, fresh_copy, tmp_path):
    from results.compute.recompute import recompute_poll

    path = tmp_path / "wide.csv"
    path.write_bytes(wide_csv(researcher, poll))
    call_command("importresponses", fresh_copy.slug, str(path), stdout=io.StringIO())
    original = recompute_poll(poll.pk).payload
    copied = recompute_poll(fresh_copy.pk).payload
    for table in ("items", "did", "gaps", "knowledge", "options", "small_groups"):
        assert copied.get(table) == original.get(table), table


def import_text(poll, text: str):
    return import_responses(
        poll=poll, stream=io.BytesIO(text.encode()), recompute=schedule_recompute
    )


@pytest.mark.parametrize(
    ("cells", "column", "message"),
    [
        ({"participant": "p\x00x"}, "participant", "NUL character"),
        ({"comment_t2": "fine\x00then"}, "comment_t2", "NUL character"),
        ({"started_at": "2024-13-45T25:61"}, "started_at", "not an ISO 8601 date and time"),
        ({"completed_at": "2024-02-30 10:00"}, "completed_at", "not an ISO 8601 date and time"),
        ({"group": "3000000000"}, "group", "less than or equal to 2147483647"),
        ({"group": "-1"}, "group", "greater than or equal to 0"),
        ({"weight": "1e400"}, "weight", "not a finite number"),
        ({"seconds_t1": "-5"}, "seconds_t1", "cannot be negative"),
        ({"budget_t1": "inf"}, "budget_t1", "not a finite number"),
    ],
)
def test_hostile_cells_are_row_and_column_errors_and_store_nothing(
    fresh_copy, cells: dict[str, str], column: str, message: str
) -> None:
    bad = {"participant": "p1", "arm": "treatment", "rate_exit_t1": "3", **cells}
    good = {**bad, **dict.fromkeys(cells, ""), "participant": "p0"}
    lines = [list(bad), list(good.values()), list(bad.values())]
    text = "".join(",".join(line) + "\r\n" for line in lines)
    with pytest.raises(ImportFailed) as failure:
        import_text(fresh_copy, text)
    errors = [(e.row, e.column) for e in failure.value.errors]
    assert errors == [(3, column)], failure.value
    assert message in failure.value.errors[0].message
    assert not Participant.objects.filter(poll=fresh_copy).exists()


def test_a_problem_after_chunks_were_written_still_stores_nothing(fresh_copy, monkeypatch) -> None:
    monkeypatch.setattr("results.exports.imports.CHUNK_ROWS", 2)
    rows = [f"p{n},treatment,3" for n in range(7)] + ["p7,treatment,11"]
    with pytest.raises(ImportFailed, match="row 9, column rate_exit_t1: 11 is outside"):
        import_text(fresh_copy, "participant,arm,rate_exit_t1\n" + "\n".join(rows) + "\n")
    assert not Participant.objects.filter(poll=fresh_copy).exists()
    assert not Answer.objects.filter(poll=fresh_copy).exists()
    result = import_text(fresh_copy, "participant,arm,rate_exit_t1\n" + "\n".join(rows[:7]))
    assert (result.participants, result.answers) == (7, 7)


def test_an_oversized_cell_is_a_row_error_not_a_crash(fresh_copy) -> None:
    text = "participant,arm,comment_t2\np1,treatment,short\np2,treatment," + "x" * 200_000 + "\n"
    with pytest.raises(ImportFailed, match="row 3, column -: not a readable CSV line"):
        import_text(fresh_copy, text)
    assert not Participant.objects.filter(poll=fresh_copy).exists()


def test_an_upload_over_the_hard_cap_is_refused_before_parsing(
    fresh_copy, make_researcher, settings, tmp_path
) -> None:
    # Over the inline limit uploads go to a background job (tests/results/test_import_jobs.py);
    # over IMPORT_MAX_BYTES they are refused, and the answer names both limits.
    settings.MEDIA_ROOT = tmp_path
    settings.IMPORT_MAX_BYTES = 10_000
    _, secret = make_researcher("importer", polls=(fresh_copy,), can_import=True)
    header = "participant,arm,comment_t2\n"
    filler = "".join(f"p{n},treatment,{'x' * 200}\n" for n in range(100))
    response = upload(bearer(secret), fresh_copy, (header + filler).encode())
    assert response.status_code == 413
    (error,) = response.json()["errors"]
    assert "API uploads are limited to 10,000 bytes" in error["message"]
    assert (
        f"files over {MAX_UPLOAD_BYTES:,} bytes are imported in the background"
        in (error["message"])
    )
    assert "manage.py importresponses" in error["message"]
    assert not Participant.objects.filter(poll=fresh_copy).exists()
    assert not list(tmp_path.rglob("*"))


def test_every_stream_is_measured_before_it_is_parsed(fresh_copy) -> None:
    content = b"participant,arm\n" + b"".join(b"p%03d,treatment\n" % n for n in range(100))
    with pytest.raises(ImportFailed, match="has 1,516 bytes; uploads are limited to 1,000"):
        import_responses(
            poll=fresh_copy,
            stream=io.BytesIO(content),
            recompute=schedule_recompute,
            max_bytes=1000,
        )
    assert not Participant.objects.filter(poll=fresh_copy).exists()
    result = import_responses(
        poll=fresh_copy,
        stream=io.BytesIO(content[: 16 + 15 * 30]),
        recompute=schedule_recompute,
        max_bytes=1000,
    )
    assert result.participants == 30
