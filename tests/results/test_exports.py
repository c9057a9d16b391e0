"""Every export format read back: counts and values match the answers, labels survive, formulas
are neutralised in text columns only, and nothing identifying leaves the database."""

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest
from django.urls import reverse

from results.exports.codebook import DK_CODE
from results.models import ExportJob
from surveys.models import Answer, Participant, Poll
from tests.results.api_fixtures import FORMULAS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path


def export(client, poll, fmt: str, **params) -> tuple[object, bytes]:
    url = reverse("api:poll-export", kwargs={"slug": poll.slug})
    response = client.get(url, {"format": fmt, **params})
    assert response.status_code == 200, response.content[:300]
    body = b"".join(response.streaming_content)
    return response, body


def test_long_csv_streams_one_row_per_answer_with_the_stored_values(researcher, poll):
    response, body = export(researcher, poll, "csv-long")
    assert response.streaming
    frame = pd.read_csv(io.BytesIO(body), keep_default_na=False, dtype=str)
    assert len(frame) == Answer.objects.filter(poll=poll).count()
    ratings = frame[frame["item"] == "rate_exit"]
    stored = Answer.objects.filter(poll=poll, question__key="rate_exit", missing="")
    assert sorted(pd.to_numeric(ratings[ratings["dont_know"] == "false"]["number"])) == sorted(
        stored.values_list("number", flat=True)
    )
    assert set(frame["participant"]) == set(poll.participants.values_list("public_id", flat=True))


def test_csv_neutralises_formulas_in_text_but_negative_numbers_stay_numbers(researcher, poll):
    _, body = export(researcher, poll, "csv-long")
    frame = pd.read_csv(io.BytesIO(body), keep_default_na=False, dtype=str)
    comments = set(frame[frame["item"] == "comment"]["value"])
    for payload in FORMULAS:
        assert f"'{payload}" in comments and payload not in comments
    budget = frame[frame["item"] == "budget"]
    numbers = pd.to_numeric(budget["number"])
    assert (numbers < 0).any(), "the fixture has negative numbers"
    assert not budget["value"].str.startswith("'").any()

    _, wide_body = export(researcher, poll, "csv-wide")
    wide = pd.read_csv(io.BytesIO(wide_body))
    assert pd.api.types.is_numeric_dtype(wide["budget_t1"])
    assert (wide["budget_t1"] < 0).any()
    assert {f"'{p}" for p in FORMULAS} <= set(wide["comment_t2"].dropna())


def test_results_csv_keeps_negative_shifts_as_numbers(researcher, poll, snapshot):
    url = reverse("api:results-items", kwargs={"slug": poll.slug})
    frame = pd.read_csv(io.BytesIO(researcher.get(url, {"format": "csv"}).content))
    assert frame["mean_diff"].tolist() == [-1.25, 0.5]
    table = researcher.get(url).json()
    assert list(frame.columns) == table["columns"] == list(table["rows"][0])


def test_wide_csv_has_one_row_per_participant_and_codes_dont_know(researcher, poll):
    _, body = export(researcher, poll, "csv-wide")
    wide = pd.read_csv(io.BytesIO(body), dtype={"participant": str})
    assert len(wide) == poll.participants.count()
    assert list(wide.columns[:6]) == [
        "participant",
        "arm",
        "group",
        "position_order",
        "option_order",
        "weight",
    ]
    dk = Answer.objects.filter(poll=poll, question__key="rate_exit", wave=1, missing="dont_know")
    assert (wide["rate_exit_t1"] == DK_CODE).sum() == dk.count()
    assert "leaning_t1" in wide.columns and "leaning_t2" not in wide.columns
    answer = Answer.objects.filter(poll=poll, question__key="rate_aid", wave=2).first()
    row = wide[wide["participant"] == answer.participant.public_id].iloc[0]
    assert row["rate_aid_t2"] == (DK_CODE if answer.missing else answer.value)


def test_exports_carry_no_tokens_contacts_or_labels(researcher, poll):
    secrets = set(poll.participants.values_list("contact", flat=True))
    secrets |= set(poll.participants.values_list("label", flat=True))
    secrets |= set(poll.participants.values_list("token_hash", flat=True))
    for fmt in ("csv-long", "csv-wide", "parquet", "sav", "dta", "package"):
        _, body = export(researcher, poll, fmt)
        if fmt == "package":
            with zipfile.ZipFile(io.BytesIO(body)) as archive:
                body = b"".join(archive.read(name) for name in archive.namelist())
        for secret in secrets:
            assert secret.encode() not in body, (fmt, secret)


def test_parquet_is_typed_and_matches_the_answers(researcher, poll):
    _, body = export(researcher, poll, "parquet")
    table = pq.read_table(io.BytesIO(body))
    assert str(table.schema.field("wave").type) == "int8"
    assert str(table.schema.field("number").type) == "double"
    assert str(table.schema.field("dont_know").type) == "bool"
    assert str(table.schema.field("answered_at").type) == "timestamp[us, tz=UTC]"
    frame = table.to_pandas()
    assert len(frame) == Answer.objects.filter(poll=poll).count()
    assert frame["dont_know"].sum() == Answer.objects.filter(poll=poll, missing="dont_know").count()
    texts = set(frame[frame["item"] == "comment"]["value"])
    assert set(FORMULAS) <= texts, "Parquet is not a spreadsheet: text stays as given"


def exported_file(researcher: Any, poll: Poll, fmt: str, folder: Path) -> Path:
    """The export in ``fmt`` saved as ``poll.<fmt>``: pyreadstat reads files, not bytes."""
    _, body = export(researcher, poll, fmt)
    path = folder / f"poll.{fmt}"
    path.write_bytes(body)
    return path


def assert_spss_labels_missing_code_and_measures(meta: Any) -> None:
    """What every SPSS file of the test poll must say: value labels, "don't know" as a labelled
    user-missing code, and the measure level of a rating and a number."""
    assert meta.variable_value_labels["leaning_t1"] == {1.0: "Left", 2.0: "Right"}
    assert meta.variable_value_labels["rate_exit_t1"][DK_CODE] == "Don't know"
    assert meta.missing_ranges["rate_exit_t1"] == [{"lo": DK_CODE, "hi": DK_CODE}]
    assert meta.variable_measure["rate_exit_t1"] == "ordinal"
    assert meta.variable_measure["budget_t1"] == "scale"


def test_spss_file_keeps_labels_missing_codes_and_measure_levels(researcher, poll, tmp_path):
    path = exported_file(researcher, poll, "sav", tmp_path)
    data, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert len(data) == poll.participants.count()
    assert meta.column_names_to_labels["rate_exit_t1"] == "How much do you support exit? (T1)"
    assert_spss_labels_missing_code_and_measures(meta)
    assert meta.variable_measure["arm"] == "nominal"
    plain, _ = pyreadstat.read_sav(str(path))
    dk = Answer.objects.filter(poll=poll, question__key="rate_exit", wave=1, missing="dont_know")
    answered = Answer.objects.filter(poll=poll, question__key="rate_exit", wave=1, missing="")
    assert (data["rate_exit_t1"] == DK_CODE).sum() == dk.count()
    assert plain["rate_exit_t1"].notna().sum() == answered.count()
    assert plain["rate_exit_t1"].sum() == sum(answered.values_list("number", flat=True))


def test_stata_file_keeps_labels_and_dont_know_as_extended_missing(researcher, poll, tmp_path):
    path = exported_file(researcher, poll, "dta", tmp_path)
    data, meta = pyreadstat.read_dta(str(path), user_missing=True)
    assert len(data) == poll.participants.count()
    assert meta.column_names_to_labels["k_capital_t2"] == "Capital of Ukraine? (T2)"
    labels = meta.variable_value_labels["k_capital_t2"]
    assert labels[1] == "Kyiv" and labels["a"] == "Don't know (-99)"
    dk = Answer.objects.filter(poll=poll, question__key="k_capital", wave=2, missing="dont_know")
    assert (data["k_capital_t2"] == "a").sum() == dk.count()
    completed = Participant.objects.filter(poll=poll, completed_at__isnull=False).count()
    assert data["completed_at"].notna().sum() == completed


def test_package_has_data_codebook_datapackage_results_and_readme(researcher, poll, snapshot):
    _, body = export(researcher, poll, "package")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = set(archive.namelist())
        assert {
            "data/answers_long.csv",
            "data/answers_wide.csv",
            "codebook.csv",
            "datapackage.json",
            "definition.json",
            "results/items.csv",
            "results/gaps.csv",
            "README.md",
        } <= names
        descriptor = json.loads(archive.read("datapackage.json"))
        assert descriptor["profile"] == "tabular-data-package"
        paths = {resource["path"] for resource in descriptor["resources"]}
        assert paths <= names
        wide = pd.read_csv(archive.open("data/answers_wide.csv"))
        fields = descriptor["resources"][0]["schema"]["fields"]
        assert [f["name"] for f in fields] == list(wide.columns)
        codebook = pd.read_csv(archive.open("codebook.csv"), keep_default_na=False)
        assert codebook.set_index("variable").loc["k_capital_t1", "answer_key"] == "kyiv"
        items = pd.read_csv(archive.open("results/items.csv"))
        assert items["mean_diff"].tolist() == [-1.25, 0.5]
        readme = archive.read("README.md").decode()
        assert "How to cite" in readme
        assert "no such group can be recovered by adding or subtracting" in readme


def test_the_apis_csv_of_a_results_table_is_the_packages_file_byte_for_byte(
    researcher, poll, snapshot
):
    _, body = export(researcher, poll, "package")
    for table in ("items", "gaps"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            packaged = archive.read(f"results/{table}.csv")
        url = reverse(f"api:results-{table}", kwargs={"slug": poll.slug})
        served = researcher.get(url, {"format": "csv"})
        assert served.status_code == 200
        assert served.content == packaged


def test_large_export_is_built_in_the_background_with_an_expiring_link(
    researcher, poll, settings, client, django_capture_on_commit_callbacks
):
    settings.EXPORT_STREAM_MAX_ANSWERS = 10
    url = reverse("api:poll-export", kwargs={"slug": poll.slug})
    with django_capture_on_commit_callbacks(execute=True):
        response = researcher.get(url, {"format": "csv-long"})
    assert response.status_code == 202
    status = researcher.get(response["Location"]).json()
    assert status["state"] == "done" and status["progress"] == 1.0
    download = client.get(status["download_url"])  # the signed link needs no token
    frame = pd.read_csv(io.BytesIO(b"".join(download.streaming_content)))
    assert len(frame) == Answer.objects.filter(poll=poll).count()
    forged = status["download_url"].split("signature=")[0] + "signature=forged"
    assert client.get(forged).status_code == 404
    ExportJob.objects.update(state=ExportJob.State.FAILED)
    assert client.get(status["download_url"]).status_code == 404


def test_expired_exports_lose_their_files(
    researcher, poll, settings, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from results.exports.package import purge_expired_exports

    settings.EXPORT_STREAM_MAX_ANSWERS = 10
    with django_capture_on_commit_callbacks(execute=True):
        researcher.get(reverse("api:poll-export", kwargs={"slug": poll.slug}), {"format": "dta"})
    job = ExportJob.objects.get()
    assert job.file
    ExportJob.objects.update(expires_at=timezone.now())
    assert purge_expired_exports() == 1
    assert not ExportJob.objects.get().file


def test_unknown_export_format_is_a_400_naming_the_choices(researcher, poll):
    response = researcher.get(
        reverse("api:poll-export", kwargs={"slug": poll.slug}), {"format": "xlsx"}
    )
    assert response.status_code == 400
    assert "format" in response.json()


@pytest.fixture
def formula_ids(poll) -> list[str]:
    """Participant ids as an import can bring them: any text, formulas included."""
    people = list(poll.participants.order_by("id")[: len(FORMULAS)])
    for person, formula in zip(people, FORMULAS, strict=True):
        Participant.objects.filter(pk=person.pk).update(public_id=formula)
    return FORMULAS


def no_cell_runs(frame: pd.DataFrame) -> None:
    for column in frame.columns:
        for cell in frame[column].astype(str):
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), (column, cell)


def test_formula_participant_ids_are_neutralised_in_every_csv(
    researcher, poll, snapshot, formula_ids
):
    neutral = {f"'{formula}" for formula in formula_ids}
    _, long_body = export(researcher, poll, "csv-long")
    long = pd.read_csv(io.BytesIO(long_body), keep_default_na=False, dtype=str)
    assert neutral <= set(long["participant"]) and not set(formula_ids) & set(long["participant"])
    no_cell_runs(long)
    _, wide_body = export(researcher, poll, "csv-wide")
    wide = pd.read_csv(io.BytesIO(wide_body), keep_default_na=False, dtype=str)
    assert neutral <= set(wide["participant"])
    no_cell_runs(wide)
    _, package = export(researcher, poll, "package")
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        for name in archive.namelist():
            if name.endswith(".csv"):
                frame = pd.read_csv(archive.open(name), keep_default_na=False, dtype=str)
                no_cell_runs(frame)
                if name.startswith("data/"):
                    assert neutral <= set(frame["participant"]), name


def test_results_csv_neutralises_text_cells_and_keeps_numbers(researcher, poll):
    from results.models import ResultSnapshot
    from tests.results.api_fixtures import sample_payload

    payload = sample_payload()
    payload["gaps"][0]["value_a"] = '=HYPERLINK("x")'
    ResultSnapshot.objects.create(poll=poll, fingerprint="f", code_version="t", payload=payload)
    url = reverse("api:results-gaps", kwargs={"slug": poll.slug})
    frame = pd.read_csv(io.BytesIO(researcher.get(url, {"format": "csv"}).content))
    assert frame["value_a"].tolist() == ['\'=HYPERLINK("x")']
    assert frame["gap_change"].tolist() == [-1.0]


@pytest.mark.parametrize("fmt", ["sav", "dta", "package", "csv-long"])
def test_exports_are_attachments_named_after_the_poll(researcher, poll, fmt):
    url = reverse("api:poll-export", kwargs={"slug": poll.slug})
    response = researcher.get(url, {"format": fmt})
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;"), disposition
    assert f'filename="{poll.slug}-' in disposition and "tmp" not in disposition


def background_link(researcher, poll, settings, capture) -> str:
    settings.EXPORT_STREAM_MAX_ANSWERS = 10
    url = reverse("api:poll-export", kwargs={"slug": poll.slug})
    with capture(execute=True):
        response = researcher.get(url, {"format": "csv-long"})
    assert response.status_code == 202
    return researcher.get(response["Location"]).json()["download_url"]


def test_revoking_the_grant_ends_the_signed_export_link(
    researcher, poll, settings, client, django_capture_on_commit_callbacks
):
    from results.access import revoke_grant
    from results.models import Grant

    link = background_link(researcher, poll, settings, django_capture_on_commit_callbacks)
    assert client.get(link).status_code == 200
    revoke_grant(grant=Grant.objects.get(poll=poll))
    assert client.get(link).status_code == 404


def test_revoking_the_token_ends_the_signed_export_link(
    researcher, poll, settings, client, django_capture_on_commit_callbacks
):
    from results.access import revoke_api_token
    from results.models import ApiToken

    link = background_link(researcher, poll, settings, django_capture_on_commit_callbacks)
    assert client.get(link).status_code == 200
    revoke_api_token(token=ApiToken.objects.get())
    assert client.get(link).status_code == 404


def test_lowering_the_grant_to_aggregates_ends_the_signed_export_link(
    researcher, poll, settings, client, django_capture_on_commit_callbacks
):
    from results.access import grant_access
    from results.models import Grant

    link = background_link(researcher, poll, settings, django_capture_on_commit_callbacks)
    grant = Grant.objects.get(poll=poll)
    grant_access(user=grant.user, poll=poll, level="aggregates")
    assert client.get(link).status_code == 404


# --- the writers themselves, called directly on two participants with known answers ----------


@pytest.fixture
def known(db) -> object:
    """Two participants: one answers everything it is asked here, the other says don't know."""
    from surveys.definition.files import save_poll, validate
    from tests.results.api_fixtures import research_definition

    poll, _ = save_poll(data=validate(research_definition(), "<test>"), source="<test>")
    questions = {q.key: q for q in poll.questions.all()}
    first = Participant.objects.create(
        poll=poll, arm="treatment", group=1, position_order=["B", "A"], flags=["too_fast"]
    )
    second = Participant.objects.create(poll=poll, arm="control", position_order=["A", "B"])
    answers = [
        (first, "rate_exit", 1, 3, 3.0, False),
        (first, "rate_exit", 2, 7, 7.0, False),
        (first, "k_capital", 1, "lviv", 2.0, False),
        (first, "leaning", 1, "right", 2.0, False),
        (first, "budget", 1, -5.0, -5.0, False),
        (first, "comment", 2, "=1+1", None, False),
        (second, "rate_exit", 1, None, None, True),
        (second, "rate_exit", 2, 10, 10.0, False),
        (second, "leaning", 1, "left", 1.0, False),
    ]
    Answer.objects.bulk_create(
        Answer(
            poll=poll,
            participant=who,
            question=questions[key],
            wave=wave,
            value=value,
            number=number,
            missing="dont_know" if dk else "",
        )
        for who, key, wave, value, number, dk in answers
    )
    return poll, first, second


def by_participant(frame: pd.DataFrame, participant: Participant) -> pd.Series:
    return frame.set_index("participant").loc[participant.public_id]


def test_wide_csv_writer_codes_choices_dont_know_and_neutralises_text(known):
    from results.exports.writers import wide_csv_chunks

    poll, first, second = known
    body = b"".join(wide_csv_chunks(poll))
    frame = pd.read_csv(io.BytesIO(body), keep_default_na=False, dtype=str)
    one, two = by_participant(frame, first), by_participant(frame, second)
    assert (one["rate_exit_t1"], one["rate_exit_t2"]) == ("3", "7")
    assert (two["rate_exit_t1"], two["rate_exit_t2"]) == (str(DK_CODE), "10")
    assert (one["leaning_t1"], two["leaning_t1"]) == ("2", "1")  # 1-based, the definition's order
    assert (one["k_capital_t1"], two["k_capital_t1"]) == ("2", "")  # empty: not answered
    assert one["budget_t1"] == "-5"  # a whole number, not neutralised text
    assert (one["comment_t2"], two["comment_t2"]) == ("'=1+1", "")
    assert (one["arm"], one["position_order"], one["flags"]) == ("treatment", "B;A", "too_fast")


def test_long_csv_and_parquet_writers_carry_the_same_answers(known):
    import pyarrow.parquet as pq

    from results.exports.writers import long_csv_chunks, long_parquet_chunks

    poll, _, second = known
    text = pd.read_csv(io.BytesIO(b"".join(long_csv_chunks(poll))), keep_default_na=False)
    table = pq.read_table(io.BytesIO(b"".join(long_parquet_chunks(poll)))).to_pandas()
    assert len(text) == len(table) == 9
    for frame in (text, table):
        dk = frame[(frame["participant"] == second.public_id) & (frame["item"] == "rate_exit")]
        assert dk.sort_values("wave")["dont_know"].astype(str).str.lower().tolist() == [
            "true",
            "false",
        ]
        budget = frame[frame["item"] == "budget"]
        assert float(budget["number"].iloc[0]) == -5.0
    assert table[table["item"] == "comment"]["value"].iloc[0] == "=1+1"  # typed, not a sheet
    assert text[text["item"] == "comment"]["value"].iloc[0] == "'=1+1"


def test_spss_writer_keeps_value_labels_missing_codes_and_measure_levels(known, tmp_path):
    from results.exports.statfiles import write_sav

    poll, first, second = known
    path = tmp_path / "poll.sav"
    write_sav(poll, path)
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert by_participant(frame, second)["rate_exit_t1"] == DK_CODE
    assert by_participant(frame, first)["leaning_t1"] == 2
    assert_spss_labels_missing_code_and_measures(meta)
    assert meta.column_names_to_labels["comment_t2"] == "Anything else? (T2)"
    # Read as analysts do by default, don't know is missing, not a rating of -99.
    plain, _ = pyreadstat.read_sav(str(path))
    assert pd.isna(by_participant(plain, second)["rate_exit_t1"])


def test_stata_writer_turns_dont_know_into_the_labelled_extended_missing_a(known, tmp_path):
    from results.exports.statfiles import write_dta

    poll, first, second = known
    path = tmp_path / "poll.dta"
    write_dta(poll, path)
    frame, meta = pyreadstat.read_dta(str(path), user_missing=True)
    assert by_participant(frame, second)["rate_exit_t1"] == "a"
    assert by_participant(frame, first)["rate_exit_t1"] == 3
    assert meta.variable_value_labels["rate_exit_t1"]["a"] == "Don't know (-99)"
    assert meta.variable_value_labels["leaning_t1"] == {1: "Left", 2: "Right"}
    assert meta.missing_user_values["rate_exit_t1"] == ["a"]


def test_table_csv_writes_numbers_plain_booleans_lower_and_text_neutralised():
    from results.exports.writers import table_csv

    rows = [
        {"item": "=cmd", "mean_diff": -1.5, "weighted": True, "extra": {"a": 1}},
        {"item": "rate_aid", "mean_diff": None, "weighted": False, "extra": ["-x"]},
    ]
    frame = pd.read_csv(io.BytesIO(table_csv(rows)), keep_default_na=False, dtype=str)
    assert list(frame.columns) == ["item", "mean_diff", "weighted", "extra"]
    assert frame.to_dict("records") == [
        {"item": "'=cmd", "mean_diff": "-1.5", "weighted": "true", "extra": '{"a": 1}'},
        {"item": "rate_aid", "mean_diff": "", "weighted": "false", "extra": '["-x"]'},
    ]
    # An explicit column list sets the order and keeps columns absent from every row.
    assert table_csv(rows[:1], ["mean_diff", "missing"]).decode() == "mean_diff,missing\n-1.5,\n"
