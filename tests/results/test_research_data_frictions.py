"""Frictions of importing and exporting research data (issue 14), each with the message the
researcher now sees."""

import io
from datetime import UTC
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from surveys.models import Answer, Participant

pytestmark = pytest.mark.django_db


# --- import messages -------------------------------------------------------------------------


@pytest.fixture
def target(db):
    from surveys.definition.files import save_poll, validate
    from tests.results.api_fixtures import research_definition

    data = validate(research_definition(slug="frictions"), "<test>")
    poll, _ = save_poll(data=data, source="<test>")
    return poll


def run_import(poll, text: str, **options):
    from results.exports.imports import import_responses

    asked: list[int] = []
    result = import_responses(
        poll=poll, stream=io.BytesIO(text.encode()), recompute=asked.append, **options
    )
    return result, asked


def failure_of(poll, text: str, **options):
    from results.exports.imports import ImportFailed

    with pytest.raises(ImportFailed) as failure:
        run_import(poll, text, **options)
    assert not Participant.objects.filter(poll=poll).exists()
    return failure.value


@pytest.mark.parametrize(
    ("column", "hint"),
    [
        ("RATE_EXIT_t1", "did you mean rate_exit_t1? (names are case-sensitive)"),
        ("rate_exit", "did you mean rate_exit_t1 or rate_exit_t2? (one column per wave)"),
        ("rate_exti_t1", "did you mean rate_exit_t1?"),
    ],
)
def test_an_unknown_column_names_the_expected_one(target, column: str, hint: str) -> None:
    failure = failure_of(target, f"participant,{column}\np1,3\n")
    (error,) = failure.errors
    assert (error.row, error.column) == (1, column)
    assert error.message.startswith(
        f"unknown column: not a variable of this poll's codebook; {hint}. Expected item "
        "columns: rate_exit_t1, rate_exit_t2, rate_aid_t1"
    )
    assert error.message.endswith("more (importresponses --template)")


def test_a_bad_cell_names_the_allowed_values_and_missing_codes(target) -> None:
    failure = failure_of(target, "participant,rate_exit_t1,leaning_t1\np1,11,3\n")
    messages = {e.column: e.message for e in failure.errors}
    assert messages["rate_exit_t1"] == (
        "11 is outside the scale 0..10; allowed: whole numbers 0 to 10; "
        "missing-value codes: -99 (don't know)"
    )
    assert messages["leaning_t1"] == (
        "3 is not a choice code (1..2); allowed: choice codes 1 (Left), 2 (Right); "
        "no missing-value codes are declared for this question"
    )


def test_nan_and_empty_cells_are_no_answer_not_a_bad_number(target) -> None:
    text = "participant,rate_exit_t1,budget_t1,comment_t2\np1,NaN,,NA\np2,,nan,\np3,.,NA,x\n"
    result, _ = run_import(target, text)
    assert result.participants == 3
    answers = Answer.objects.filter(poll=target)
    assert sorted(answers.values_list("value", flat=True)) == ["NA", "x"]  # text keeps its text


def test_the_error_list_is_cut_at_200_and_says_how_many_more(target) -> None:
    rows = "".join(f"p{n},11\n" for n in range(250))
    failure = failure_of(target, "participant,rate_exit_t1\n" + rows)
    assert len(failure.errors) == 200
    assert str(failure).endswith("\nand 50 more")
    assert failure.summary() == (
        "250 problems: the first 200 are listed, and 50 more; nothing was imported."
    )


# --- completion, dry run, replace, ids, time ---------------------------------------------------

COMPLETED = "2024-05-01T10:00:00Z"


def test_rows_without_completed_at_are_counted_incomplete_and_left_out_of_results(target) -> None:
    from results.compute.recompute import recompute_poll

    text = (
        "participant,arm,completed_at,rate_exit_t1,rate_exit_t2\n"
        f"p1,treatment,{COMPLETED},3,4\np2,treatment,,5,6\np3,control,{COMPLETED},2,2\n"
    )
    result, _ = run_import(target, text)
    assert (result.complete, result.incomplete) == (2, 1)
    assert result.summary().splitlines() == [
        "Imported 3 participants (2 complete, 1 incomplete) and 6 answers.",
        "The 1 incomplete (empty completed_at) are left out of the results until they have a "
        "completion time.",
    ]
    snapshot = recompute_poll(target.pk)
    assert snapshot.n_participants == 2


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("2024-05-01T10:30:00", "2024-05-01T10:30:00+00:00"),
        ("2024-05-01 10:30", "2024-05-01T10:30:00+00:00"),
        ("2024-05-01", "2024-05-01T00:00:00+00:00"),
        ("2024-05-01T10:30:00+02:00", "2024-05-01T08:30:00+00:00"),
    ],
)
def test_times_without_a_zone_are_read_as_utc(target, written: str, stored: str) -> None:
    """Other tools often write local or zone-less times: they are taken as UTC, not a crash."""
    run_import(target, f"participant,arm,completed_at,rate_exit_t1\np1,treatment,{written},3\n")
    completed = Participant.objects.get(poll=target, public_id="p1").completed_at
    assert completed.astimezone(UTC).isoformat() == stored


def test_a_file_without_completed_at_says_every_row_counts_as_complete(target) -> None:
    result, _ = run_import(target, "participant,rate_exit_t1\np1,3\np2,4\n")
    assert (result.complete, result.incomplete) == (2, 0)
    assert result.summary().splitlines()[-1] == (
        "The file has no completed_at column: every row counts as complete, stamped with the "
        "time of the import."
    )


def test_dry_run_checks_everything_and_stores_nothing(target) -> None:
    text = f"participant,completed_at,rate_exit_t1\np1,{COMPLETED},3\np2,,-99\n"
    result, asked = run_import(target, text, dry_run=True)
    assert result.summary().splitlines()[0] == (
        "Checked, nothing stored (dry run): would import 2 participants (1 complete, "
        "1 incomplete) and 2 answers."
    )
    assert asked == []
    assert not Participant.objects.filter(poll=target).exists()
    assert not Answer.objects.filter(poll=target).exists()


def test_a_second_import_asks_for_replace_and_replace_swaps_the_same_ids(target) -> None:
    run_import(target, "participant,rate_exit_t1\np1,3\np2,4\n")
    failure = failure_of_existing(target, "participant,rate_exit_t1\np1,9\np3,1\n")
    assert [(e.row, e.message) for e in failure.errors] == [
        (
            2,
            "p1 is already in this poll; import with --replace (API: replace=true) to replace "
            "the participants with the same ids",
        )
    ]
    result, _ = run_import(target, "participant,rate_exit_t1\np1,9\np3,1\n", replace=True)
    assert result.replaced == 1
    assert "1 participants with the same ids were replaced." in result.summary()
    values = dict(Answer.objects.filter(poll=target).values_list("participant__public_id", "value"))
    assert values == {"p1": 9, "p2": 4, "p3": 1}


def failure_of_existing(poll, text: str):
    from results.exports.imports import ImportFailed

    before = set(Answer.objects.filter(poll=poll).values_list("pk", flat=True))
    with pytest.raises(ImportFailed) as failure:
        run_import(poll, text)
    assert set(Answer.objects.filter(poll=poll).values_list("pk", flat=True)) == before
    return failure.value


def test_the_same_panel_keeps_its_ids_as_given_in_a_second_poll(target, poll) -> None:
    run_import(target, "participant,rate_exit_t1\nR-0001,3\n")
    run_import(poll, "participant,rate_exit_t1\nR-0001,5\n")
    ids = Participant.objects.filter(public_id="R-0001").values_list("poll__slug", flat=True)
    assert sorted(ids) == sorted([target.slug, poll.slug])


def test_the_recompute_is_asked_for_after_the_import_not_run_inside_it(
    target, django_capture_on_commit_callbacks
) -> None:
    from results.exports.imports import import_responses
    from results.models import ResultSnapshot
    from results.tasks import schedule_recompute

    with django_capture_on_commit_callbacks() as callbacks:
        import_responses(
            poll=target,
            stream=io.BytesIO(
                f"participant,completed_at,rate_exit_t1\np1,{COMPLETED},3\n".encode()
            ),
            recompute=schedule_recompute,
        )
        assert not ResultSnapshot.objects.filter(poll=target).exists()
    assert len(callbacks) == 1  # the recompute, queued once the import commits


def test_the_command_prints_the_summary_and_the_background_recompute(target, tmp_path) -> None:
    path = tmp_path / "panel.csv"
    path.write_text(f"participant,completed_at,rate_exit_t1\np1,{COMPLETED},3\np2,,4\n")
    out = StringIO()
    call_command("importresponses", target.slug, str(path), "--dry-run", stdout=out)
    assert "would import 2 participants" in out.getvalue()
    assert "recomputed" not in out.getvalue()
    out = StringIO()
    call_command("importresponses", target.slug, str(path), stdout=out)
    assert out.getvalue().splitlines()[0] == (
        "Imported 2 participants (1 complete, 1 incomplete) and 2 answers."
    )
    assert f"The results of {target.slug} are recomputed in the background." in out.getvalue()
    with pytest.raises(CommandError) as failure:
        call_command("importresponses", target.slug, str(path), stdout=StringIO())
    assert str(failure.value).splitlines()[-1] == "2 problems; nothing was imported."


# --- the template ------------------------------------------------------------------------------


def test_the_template_gives_the_header_and_a_codebook_sheet(target, tmp_path, make_researcher):
    from django.urls import reverse
    from openpyxl import load_workbook

    from results.exports.codebook import wide_variables
    from tests.results.api_fixtures import bearer

    path = tmp_path / "panel.xlsx"
    out = StringIO()
    call_command("importresponses", target.slug, "--template", str(path), stdout=out)
    assert out.getvalue().strip() == f"Wrote the import template of {target.slug} to {path}."
    book = load_workbook(path, read_only=True)
    assert book.sheetnames == ["responses", "codebook", "how to import"]
    names = [v.name for v in wide_variables(target)]
    (header,) = book["responses"].iter_rows(values_only=True)
    assert list(header) == names
    rows = list(book["codebook"].iter_rows(values_only=True))
    columns = rows[0]
    codebook = {row[0]: dict(zip(columns, row, strict=True)) for row in rows[1:]}
    assert codebook["rate_exit_t1"]["allowed"] == (
        "allowed: whole numbers 0 to 10; missing-value codes: -99 (don't know)"
    )
    assert codebook["leaning_t1"]["allowed"].startswith("allowed: choice codes 1 (Left), 2 (Right)")
    assert codebook["completed_at"]["allowed"].endswith(
        "empty: incomplete, left out of the results"
    )

    _, secret = make_researcher("importer", polls=(target,), can_import=True)
    url = reverse("api:poll-import", kwargs={"slug": target.slug})
    response = bearer(secret).get(url, {"template": "csv"})
    assert response.status_code == 200
    assert response.content.decode().strip().split(",") == names
    response = bearer(secret).get(url, {"template": "xlsx"})
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert 'filename="frictions-import-template.xlsx"' in response["Content-Disposition"]
    response = bearer(secret).get(url, {"template": "pdf"})
    assert response.status_code == 400
    assert "template" in response.json()
    with pytest.raises(CommandError, match=r"must end in \.xlsx or \.csv"):
        call_command("importresponses", target.slug, "--template", str(tmp_path / "x.pdf"))


def test_an_api_dry_run_answers_200_with_the_summary_and_stores_nothing(target, make_researcher):
    from django.urls import reverse

    from tests.results.api_fixtures import bearer

    _, secret = make_researcher("importer", polls=(target,), can_import=True)
    url = reverse("api:poll-import", kwargs={"slug": target.slug})
    body = f"participant,completed_at,rate_exit_t1\np1,{COMPLETED},3\np2,,77\n".encode()
    response = bearer(secret).post(
        url, {"file": io.BytesIO(body), "dry_run": "true"}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("77 is outside the scale 0..10")
    body = body.replace(b",77", b",-99")
    response = bearer(secret).post(
        url, {"file": io.BytesIO(body), "dry_run": "true"}, format="multipart"
    )
    assert response.status_code == 200
    assert response.json() | {"dry_run": True} == response.json()
    assert (response.json()["complete"], response.json()["incomplete"]) == (1, 1)
    assert not Participant.objects.filter(poll=target).exists()


def test_whole_number_answers_are_integers_in_the_api_json_and_the_wide_csv(poll, researcher):
    """Age 21 is exported as 21, not 21.0 (the questionnaire stores number answers as floats)."""
    from django.urls import reverse

    from results.exports.writers import wide_csv_chunks

    stored = Answer.objects.filter(poll=poll, question__key="budget").first()
    assert isinstance(stored.value, float) and stored.value.is_integer()
    url = reverse("api:poll-answers", kwargs={"slug": poll.slug})
    body = researcher.get(url, {"item": "budget"}).content.decode()
    compact = body.replace(" ", "")
    assert f'"value":{int(stored.value)},' in compact
    assert f'"value":{stored.value},' not in compact
    text = b"".join(wide_csv_chunks(poll)).decode()
    header, *rows = text.splitlines()
    column = header.split(",").index("budget_t1")
    cells = [row.split(",")[column] for row in rows if row.split(",")[column]]
    assert cells and all("." not in cell for cell in cells)
