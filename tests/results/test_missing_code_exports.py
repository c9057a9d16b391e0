"""A panel imported with its own missing-value codes keeps the kinds (don't know, refused,
skipped) through every export: the codes in CSV, SPSS user-missing values and Stata extended
missing values with labels, read back with pyreadstat; whole numbers stay whole; long names are
shortened for Stata with the mapping in the codebook."""

import csv
import io
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest

from results.exports import codebook, statfiles, writers
from results.exports.imports import import_responses
from surveys.definition.files import save_poll, validate
from surveys.models import Answer
from tests.results.api_fixtures import research_definition

pytestmark = pytest.mark.django_db
CODES = {"77": "dont_know", "98": "refused", "-8": "skipped"}
LONG_KEY = "support_for_the_long_named_policy_proposal"  # 42 characters
FILE = f"""participant,arm,completed_at,rate_exit_t1,rate_exit_t2,budget_t1,leaning_t1,{LONG_KEY}_t1
R1,treatment,2024-05-01T10:00:00Z,77,5,21,1,3
R2,control,2024-05-01T10:00:00Z,98,-8,-998,2,77
R3,treatment,2024-05-01T10:00:00Z,4,6,2.5,98,4
"""


@pytest.fixture
def coded(db):
    definition = research_definition(slug="coded")
    definition["missing"] = CODES
    # -100..100 are answers of the budget question: it declares a code of its own.
    budget = next(q for q in definition["questions"] if q["key"] == "budget")
    budget["missing"] = {"-998": "skipped"}
    definition["questions"].append(
        {
            "key": LONG_KEY,
            "kind": "rating",
            "section": "policy",
            "waves": "t1",
            "text": {"en": "Support for the long-named proposal", "uk": "Підтримка"},
            "scale": {"min": 0, "max": 10},
        }
    )
    poll, _ = save_poll(data=validate(definition, "<test>"), source="<test>")
    import_responses(poll=poll, stream=io.BytesIO(FILE.encode()), recompute=lambda poll_id: None)
    return poll


def kinds(poll) -> dict[tuple[str, str, int], str]:
    answers = Answer.objects.filter(poll=poll).exclude(missing="")
    return {
        (a.participant.public_id, a.question.key, a.wave): a.missing
        for a in answers.select_related("participant", "question")
    }


def test_import_keeps_the_kind_of_each_declared_code(coded) -> None:
    assert kinds(coded) == {
        ("R1", "rate_exit", 1): "dont_know",
        ("R2", "rate_exit", 1): "refused",
        ("R2", "rate_exit", 2): "skipped",
        ("R2", "budget", 1): "skipped",
        ("R3", "leaning", 1): "refused",
        ("R2", LONG_KEY, 1): "dont_know",
    }


def test_wide_csv_writes_the_codes_and_whole_numbers_as_integers(coded) -> None:
    text = b"".join(writers.wide_csv_chunks(coded)).decode()
    rows = {row["participant"]: row for row in csv.DictReader(io.StringIO(text))}
    assert [rows[p]["rate_exit_t1"] for p in ("R1", "R2", "R3")] == ["77", "98", "4"]
    assert rows["R2"]["rate_exit_t2"] == "-8"
    assert [rows[p]["budget_t1"] for p in ("R1", "R2", "R3")] == ["21", "-998", "2.5"]


def test_long_csv_gives_the_kind_and_whole_numbers_without_a_decimal(coded) -> None:
    text = b"".join(writers.long_csv_chunks(coded)).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    budget = {r["participant"]: r for r in rows if r["item"] == "budget"}
    assert (budget["R1"]["value"], budget["R1"]["number"]) == ("21", "21")
    assert budget["R2"]["missing"] == "skipped"
    refused = [r for r in rows if r["missing"] == "refused"]
    assert {(r["participant"], r["item"]) for r in refused} == {
        ("R2", "rate_exit"),
        ("R3", "leaning"),
    }


def test_parquet_long_keeps_the_kind(coded, tmp_path: Path) -> None:
    path = tmp_path / "long.parquet"
    path.write_bytes(b"".join(writers.long_parquet_chunks(coded)))
    frame = pq.read_table(path).to_pandas()
    assert sorted(frame["missing"].loc[frame["missing"] != ""].tolist()) == sorted(
        kinds(coded).values()
    )


def test_spss_declares_the_codes_user_missing_with_labels(coded, tmp_path: Path) -> None:
    path = tmp_path / "coded.sav"
    statfiles.write_sav(coded, path)
    data, meta = pyreadstat.read_sav(str(path), user_missing=True)
    by_id = data.set_index("participant")
    assert by_id.loc[["R1", "R2", "R3"], "rate_exit_t1"].tolist() == [77, 98, 4]
    assert meta.missing_ranges["rate_exit_t1"] == [
        {"lo": -8.0, "hi": -8.0},
        {"lo": 77.0, "hi": 77.0},
        {"lo": 98.0, "hi": 98.0},
    ]
    labels = meta.variable_value_labels["rate_exit_t1"]
    assert (labels[77], labels[98], labels[-8]) == ("Don't know", "Refused", "Skipped")
    assert meta.original_variable_types["budget_t1"].endswith(".2")  # 2.5 needs decimals
    assert meta.original_variable_types["rate_exit_t1"].endswith(".0")
    plain, _ = pyreadstat.read_sav(str(path))  # without user_missing: the codes are gaps
    assert pd.isna(plain.set_index("participant").loc["R2", "rate_exit_t1"])


def test_stata_writes_extended_missing_values_with_labels(coded, tmp_path: Path) -> None:
    path = tmp_path / "coded.dta"
    statfiles.write_dta(coded, path)
    data, meta = pyreadstat.read_dta(str(path), user_missing=True)
    by_id = data.set_index("participant")
    assert by_id.loc[["R1", "R2", "R3"], "rate_exit_t1"].tolist() == ["a", "b", 4]
    assert by_id.loc["R2", "rate_exit_t2"] == "c"
    labels = meta.variable_value_labels["rate_exit_t1"]
    assert (labels["a"], labels["b"], labels["c"]) == (
        "Don't know (77)",
        "Refused (98)",
        "Skipped (-8)",
    )
    # pyreadstat reports the extended missing values a column holds.
    assert sorted(meta.missing_user_values["rate_exit_t1"]) == ["a", "b"]
    assert meta.missing_user_values["rate_exit_t2"] == ["c"]
    assert by_id.loc["R1", "budget_t1"] == 21


def test_long_names_are_shortened_for_stata_with_the_mapping_in_the_codebook(
    coded, tmp_path: Path
) -> None:
    path = tmp_path / "coded.dta"
    statfiles.write_dta(coded, path)
    data, _ = pyreadstat.read_dta(str(path), user_missing=True)
    rows = {row["variable"]: row for row in codebook.codebook_rows(coded)}
    short = rows[f"{LONG_KEY}_t1"]["stata_name"]
    assert len(short) <= 32 and short.endswith("_t1")
    assert short in data.columns
    assert data.set_index("participant").loc["R2", short] == "a"
    assert rows["rate_exit_t1"]["stata_name"] == "rate_exit_t1"
    assert rows["rate_exit_t1"]["missing_codes"] == "-8=skipped;77=dont_know;98=refused"


def test_a_kind_without_a_declared_code_is_still_missing_in_spss_and_stata(
    db, tmp_path: Path
) -> None:
    """A poll that declares no refused code, with a refused answer (an API client can store
    one): the wide files write it with the fallback code and declare that code missing too,
    never as an answer of -98."""
    poll, _ = save_poll(data=validate(research_definition(slug="plain"), "<test>"), source="<t>")
    stream = io.BytesIO(b"participant,arm,completed_at,rate_exit_t1\nP1,treatment,2024-05-01,3\n")
    import_responses(poll=poll, stream=stream, recompute=lambda poll_id: None)
    Answer.objects.filter(poll=poll, question__key="rate_exit", wave=1).update(
        value=None, number=None, missing=Answer.Missing.REFUSED
    )
    sav, dta = tmp_path / "plain.sav", tmp_path / "plain.dta"
    statfiles.write_sav(poll, sav)
    statfiles.write_dta(poll, dta)
    data, meta = pyreadstat.read_sav(str(sav), user_missing=True)
    assert data["rate_exit_t1"].tolist() == [-98]
    assert {"lo": -98.0, "hi": -98.0} in meta.missing_ranges["rate_exit_t1"]
    plain, _ = pyreadstat.read_sav(str(sav))
    assert pd.isna(plain["rate_exit_t1"][0])
    data, meta = pyreadstat.read_dta(str(dta), user_missing=True)
    assert data["rate_exit_t1"].tolist() == ["b"]
    assert meta.variable_value_labels["rate_exit_t1"]["b"] == "Refused (-98)"
