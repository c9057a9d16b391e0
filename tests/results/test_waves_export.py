"""The per-wave exports (csv-waves, sav-waves, dta-waves): one row per participant and wave,
read back with pyreadstat: labels on every variable and every answer value, measure levels,
missing codes as SPSS user-missing and Stata extended missing values, who gets which rows, the
400 for a poll without paired items, and the same permissions as every other export."""

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyreadstat
import pytest
from django.urls import reverse

from results.exports import waves
from results.exports.codebook import DK_CODE
from results.models import ExportJob
from surveys.definition.files import save_poll, validate
from surveys.models import Answer, Participant, Poll
from tests.results.api_fixtures import FORMULAS, bearer, research_definition

pytestmark = pytest.mark.django_db
# The fixture poll: 24 participants in two arms, all with answers at both waves; 20 completed.
ITEMS = ["rate_exit", "rate_aid", "rate_escalate", "k_capital", "leaning", "balanced", "budget"]


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path


def rows_of(poll: Poll) -> int:
    """Two rows for each participant the results describe (completed, in an arm)."""
    return 2 * poll.participants.completed().exclude(arm="").count()


def url(poll: Poll) -> str:
    return reverse("api:poll-export", kwargs={"slug": poll.slug})


def download(client: Any, poll: Poll, fmt: str, folder: Path) -> Path:
    response = client.get(url(poll), {"format": fmt})
    assert response.status_code == 200, response.content[:300]
    path = folder / f"poll.{fmt.split('-')[0]}"
    path.write_bytes(b"".join(response.streaming_content))
    return path


def answer(poll: Poll, person: str, key: str, wave: int) -> Answer | None:
    return Answer.objects.filter(
        poll=poll, participant__public_id=person, question__key=key, wave=wave
    ).first()


def cell(frame: pd.DataFrame, person: str, time: int, key: str) -> Any:
    (value,) = frame[(frame["ID"] == person) & (frame["Time"] == time)][key]
    return value


def expected(found: Answer | None) -> float | None:
    if found is None:
        return None
    return float(DK_CODE) if found.missing else found.number


def test_sav_has_a_row_per_participant_and_wave_with_items_under_their_own_names(
    researcher, poll, tmp_path
):
    frame, _ = pyreadstat.read_sav(
        str(download(researcher, poll, "sav-waves", tmp_path)), user_missing=True
    )
    assert list(frame.columns) == ["ID", "Group", "Time", "weight", *ITEMS]
    assert len(frame) == rows_of(poll)
    first = frame.iloc[0]
    assert (first["Group"], first["Time"]) == (1, 1)  # treatment and before come first
    people = poll.participants.completed().values_list("public_id", flat=True)
    assert not set(
        poll.participants.exclude(public_id__in=people).values_list("public_id", flat=True)
    ) & set(frame["ID"])
    for person in people[:6]:
        for time in (1, 2):
            for key in ("rate_exit", "k_capital", "budget"):
                assert cell(frame, person, time, key) == expected(answer(poll, person, key, time))
        # A background question is on both rows; an evaluation only after.
        leaning = expected(answer(poll, person, "leaning", 1))
        assert cell(frame, person, 1, "leaning") == cell(frame, person, 2, "leaning") == leaning
        assert pd.isna(cell(frame, person, 1, "balanced"))
        assert cell(frame, person, 2, "balanced") == expected(answer(poll, person, "balanced", 2))
    assert (frame["rate_exit"] == DK_CODE).any(), "the fixture has don't know answers"


def test_sav_labels_every_variable_and_value_with_measures_and_user_missing_codes(
    researcher, poll, tmp_path
):
    path = download(researcher, poll, "sav-waves", tmp_path)
    _, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert all(meta.column_names_to_labels.values()), meta.column_names_to_labels
    labels = meta.variable_value_labels
    assert labels["Group"] == {1: "Treatment", 2: "Control"}
    assert labels["Time"] == {1: "Before", 2: "After"}
    # Every scale point labelled (the lab's package stops at an unlabelled value), the ends
    # with their wording; the missing code user-missing and without a label.
    assert labels["rate_exit"] == {
        0: "Strongly oppose",
        **{point: str(point) for point in range(1, 10)},
        10: "Strongly support",
    }
    assert labels["k_capital"] == {1: "Kyiv", 2: "Lviv"}
    assert meta.missing_ranges["rate_exit"] == [{"lo": DK_CODE, "hi": DK_CODE}]
    assert meta.missing_ranges["k_capital"] == [{"lo": DK_CODE, "hi": DK_CODE}]
    assert meta.variable_measure == {
        "ID": "nominal",
        "Group": "nominal",
        "Time": "nominal",
        "weight": "scale",
        "rate_exit": "ordinal",
        "rate_aid": "ordinal",
        "rate_escalate": "ordinal",
        "budget": "scale",
        "k_capital": "nominal",
        "leaning": "nominal",
        "balanced": "ordinal",
    }
    assert meta.readstat_variable_types["weight"] == "double"
    # Read as the lab's package reads it (pyreadstat's defaults): the codes are empty.
    plain, _ = pyreadstat.read_sav(str(path))
    assert not (plain["rate_exit"] == DK_CODE).any() and plain["rate_exit"].isna().any()


def test_who_gets_which_rows(researcher, poll, tmp_path):
    before = rows_of(poll)
    gone, unassigned = list(poll.participants.completed().order_by("id")[:2])
    Answer.objects.filter(participant=gone, wave=2).delete()  # a panel's attrition
    Participant.objects.filter(pk=unassigned.pk).update(arm="")
    frame, _ = pyreadstat.read_sav(str(download(researcher, poll, "sav-waves", tmp_path)))
    assert frame[frame["ID"] == gone.public_id]["Time"].tolist() == [1]
    assert unassigned.public_id not in set(frame["ID"])
    assert len(frame) == before - 3


def test_dta_writes_missing_codes_as_labelled_extended_missing_values(researcher, poll, tmp_path):
    frame, meta = pyreadstat.read_dta(
        str(download(researcher, poll, "dta-waves", tmp_path)), user_missing=True
    )
    assert list(frame.columns) == ["ID", "Group", "Time", "weight", *ITEMS]
    dk = Answer.objects.filter(poll=poll, question__key="rate_exit", missing="dont_know")
    assert (frame["rate_exit"] == "a").sum() == dk.count() > 0
    label_set = meta.variable_to_label["rate_exit"]
    assert meta.value_labels[label_set]["a"] == f"Don't know ({DK_CODE})"
    assert meta.value_labels[meta.variable_to_label["Time"]] == {1: "Before", 2: "After"}


def test_csv_has_the_sav_codes_and_neutralises_participant_ids(researcher, poll, tmp_path):
    people = list(poll.participants.completed().order_by("id")[: len(FORMULAS)])
    for person, formula in zip(people, FORMULAS, strict=True):
        Participant.objects.filter(pk=person.pk).update(public_id=formula)
    sav, _ = pyreadstat.read_sav(
        str(download(researcher, poll, "sav-waves", tmp_path)), user_missing=True
    )
    text = pd.read_csv(download(researcher, poll, "csv-waves", tmp_path), dtype={"ID": str})
    assert {f"'{formula}" for formula in FORMULAS} <= set(text["ID"])
    assert not set(FORMULAS) & set(text["ID"])
    pd.testing.assert_frame_equal(
        text.drop(columns="ID"), sav.drop(columns="ID"), check_dtype=False
    )


def no_pairs_poll() -> Poll:
    definition = research_definition(slug="no-pairs")
    # Ratings of options are always paired: a poll without them, its other items asked once.
    definition["questions"] = [q for q in definition["questions"] if not q.get("option")]
    for question in definition["questions"]:
        if question["kind"] != "ranking" and question["waves"] == "both":
            question["waves"] = "t1"
    poll, _ = save_poll(data=validate(definition, "<test>"), source="<test>")
    return poll


@pytest.mark.parametrize("fmt", waves.WAVES_FORMATS)
def test_a_poll_without_paired_items_is_a_400_naming_the_reason(make_researcher, fmt):
    poll = no_pairs_poll()  # a paired ranking only: no item the layout can pair
    _, secret = make_researcher("granted", polls=(poll,))
    for background in ("false", "true"):
        response = bearer(secret).get(url(poll), {"format": fmt, "background": background})
        assert response.status_code == 400
        (message,) = response.json()["format"]
        assert "at least one item asked at both T1 and T2" in message and "no-pairs" in message
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize("fmt", waves.WAVES_FORMATS)
def test_permissions_are_those_of_every_export(poll, outsider, make_researcher, fmt):
    assert outsider.get(url(poll), {"format": fmt}).status_code == 404
    _, secret = make_researcher("aggregates", polls=(poll,), level="aggregates")
    response = bearer(secret).get(url(poll), {"format": fmt})
    assert response.status_code == 403
    assert "aggregate results only" in response.json()["detail"]
    assert bearer("wrong-token").get(url(poll), {"format": fmt}).status_code in (401, 403)


def test_a_background_export_builds_the_sav(
    researcher, poll, settings, django_capture_on_commit_callbacks, tmp_path
):
    settings.EXPORT_STREAM_MAX_ANSWERS = 10
    with django_capture_on_commit_callbacks(execute=True):
        response = researcher.get(url(poll), {"format": "sav-waves"})
    assert response.status_code == 202
    job = ExportJob.objects.get()
    assert job.state == ExportJob.State.DONE and job.file.name.endswith(".waves.sav")
    path = tmp_path / "job.sav"
    path.write_bytes(job.file.read())
    frame, _ = pyreadstat.read_sav(str(path))
    assert len(frame) == rows_of(poll)


def test_the_data_package_carries_the_layout_its_codebook_and_how_to_run_the_lab_package(
    researcher, poll, tmp_path
):
    response = researcher.get(url(poll), {"format": "package"})
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        (tmp_path / "answers.sav").write_bytes(archive.read("waves/answers.sav"))
        text = pd.read_csv(archive.open("waves/answers.csv"))
        book = pd.read_csv(archive.open("waves/codebook.csv"), keep_default_na=False)
        described = json.loads(archive.read("datapackage.json"))
        readme = archive.read("README.md").decode()
    sav, _ = pyreadstat.read_sav(str(tmp_path / "answers.sav"))
    assert len(sav) == len(text) == rows_of(poll)
    assert book["variable"].tolist()[:4] == ["ID", "Group", "Time", "weight"]
    weight = book[book["variable"] == "weight"].iloc[0]
    assert "sqrt((S - 1)/(n - 1))" in weight["notes"]
    assert "frequencies" in book[book["variable"] == "(method)"].iloc[0]["notes"]
    resource = next(r for r in described["resources"] if r["name"] == "answers-waves")
    fields = [field["name"] for field in resource["schema"]["fields"]]
    assert fields == ["ID", "Group", "Time", "weight", *ITEMS]
    assert 'outputs("waves/answers.sav", fast=True)' in readme


def test_a_poll_without_paired_items_has_a_package_without_the_layout(make_researcher):
    poll = no_pairs_poll()
    _, secret = make_researcher("granted", polls=(poll,))
    response = bearer(secret).get(url(poll), {"format": "package"})
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert not [name for name in archive.namelist() if name.startswith("waves/")]


def test_names_the_package_would_misread_are_changed(make_researcher, tmp_path):
    definition = research_definition(slug="renamed")
    for question in definition["questions"]:
        if question["key"] == "budget":
            question["key"] = "budget_Weight"  # a number named "weight": a survey weight to it
        elif question["key"] == "leaning":
            question["key"] = "group"  # SPSS names are case-insensitive: "Group" is taken
    poll, _ = save_poll(data=validate(definition, "<test>"), source="<test>")
    _, secret = make_researcher("granted", polls=(poll,))
    response = bearer(secret).get(url(poll), {"format": "sav-waves"})
    path = tmp_path / "renamed.sav"
    path.write_bytes(b"".join(response.streaming_content))
    _, meta = pyreadstat.read_sav(str(path))
    assert meta.column_names[-4:] == ["k_capital", "group_q", "balanced", "budget_wgt"]
    scale = [name for name, level in meta.variable_measure.items() if level == "scale"]
    assert [name for name in scale if "weight" in name.lower()] == []  # no participant weights


def test_a_missing_answer_without_a_declared_code_is_still_user_missing(researcher, poll, tmp_path):
    # "balanced" offers no don't know; an answer of that kind still gets the fallback code, and
    # the lab's package stops at any value without a label unless it is declared missing.
    answers = Answer.objects.filter(poll=poll, question__key="balanced")
    target = answers.filter(participant__completed_at__isnull=False).first()
    Answer.objects.filter(pk=target.pk).update(value=None, number=None, missing="dont_know")
    path = download(researcher, poll, "sav-waves", tmp_path)
    frame, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert (frame["balanced"] == DK_CODE).sum() == 1
    assert meta.missing_ranges["balanced"] == [{"lo": DK_CODE, "hi": DK_CODE}]
    assert "budget" not in meta.missing_ranges  # numbers: -99 may be an answer


def test_sav_waves_for_a_poll_the_lab_package_cannot_read_is_a_400_naming_what_it_lacks(
    make_researcher,
):
    definition = research_definition(slug="ratings-only")
    definition["questions"] = [
        q for q in definition["questions"] if q["kind"] not in ("single", "knowledge")
    ]
    poll, _ = save_poll(data=validate(definition, "<test>"), source="<test>")
    _, secret = make_researcher("granted", polls=(poll,))
    response = bearer(secret).get(url(poll), {"format": "sav-waves"})
    assert response.status_code == 400
    (message,) = response.json()["format"]
    assert "stops without a single choice or knowledge question" in message
    assert "Use csv-waves or dta-waves" in message
    # The same layout in the other formats is served: only the lab's file needs both.
    assert bearer(secret).get(url(poll), {"format": "csv-waves"}).status_code == 200


def test_nominal_labels_stay_distinct_and_never_hold_a_slash(make_researcher, tmp_path):
    definition = research_definition(slug="alike")
    stem = "Thinking about the next five years, how likely do you think each of these is/are"
    (leaning,) = [q for q in definition["questions"] if q["key"] == "leaning"]
    twin = {**leaning, "key": "leaning_two"}
    leaning["text"] = {**leaning["text"], "en": f"{stem}: a ceasefire?"}
    twin["text"] = {**leaning["text"], "en": f"{stem}: NATO membership?"}
    definition["questions"].append(twin)
    poll, _ = save_poll(data=validate(definition, "<test>"), source="<test>")
    labels = {i.variable.name: i.variable.label for i in waves.wave_items(poll)}
    assert labels["leaning"] != labels["leaning_two"]
    assert labels["leaning_two"].endswith("(leaning_two)")
    assert not any("/" in labels[name] for name in ("leaning", "leaning_two"))
    assert all(len(labels[name].encode()) <= 80 for name in ("leaning", "leaning_two"))
