"""The long CSV and Parquet exports as PostgreSQL writes them give the very bytes (and the very
Arrow table) the export gave when Python wrote the header and PostgreSQL a plainer query: same
columns, values, neutralised ids and keys, missing kinds, numbers and timestamps. The reference
below is that earlier export, kept verbatim but for one thing: its order was by participant only,
so the rows of one participant are put in (question, wave) order, the order the export now
specifies. The Python path the embedded SQLite default takes is checked against PostgreSQL's."""

# ruff: noqa: RUF001 - participant ids and answers in Ukrainian.

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from django.db import connection
from django.db.models.expressions import RawSQL

from results.exports import writers
from surveys.definition.files import save_poll, validate
from surveys.models import Answer, Participant, Poll, Question
from tests.results.api_fixtures import research_definition

pytestmark = pytest.mark.django_db

# --- the export before PostgreSQL wrote all of it ----------------------------------------------

OLD_STARTS = "=+@\t\r-"
OLD_ANSWER = "a.value #>> '{}'"
OLD_NUMBER = f"trim_scale(({OLD_ANSWER})::numeric)::text"


def old_neutralised(text: str) -> str:
    return f"CASE WHEN ({text}) ~ '^[{OLD_STARTS}]' THEN '''' || ({text}) ELSE ({text}) END"


OLD_VALUE = (
    f"CASE WHEN jsonb_typeof(a.value) = 'string' THEN {old_neutralised(OLD_ANSWER)} "
    f"WHEN jsonb_typeof(a.value) = 'number' THEN {OLD_NUMBER} ELSE {OLD_ANSWER} END"
)
OLD_PLAIN_VALUE = (
    f"CASE WHEN jsonb_typeof(a.value) = 'number' THEN {OLD_NUMBER} ELSE {OLD_ANSWER} END"
)
OLD_SQL = """
SELECT {participant}, {item}, a.wave, {value}, a.number,
       CASE WHEN a.missing = 'dont_know' THEN 'true' ELSE 'false' END, a.missing,
       {answered_at}
FROM surveys_answer a
JOIN surveys_participant p ON p.id = a.participant_id
JOIN surveys_question q ON q.id = a.question_id
WHERE a.poll_id = {poll_id}
ORDER BY a.participant_id, a.question_id, a.wave
"""


def old_sql(poll: Poll, *, for_csv: bool) -> str:
    return OLD_SQL.format(
        participant=old_neutralised("p.public_id") if for_csv else "p.public_id",
        item=old_neutralised("q.key") if for_csv else "q.key",
        value=OLD_VALUE if for_csv else OLD_PLAIN_VALUE,
        answered_at=(
            "a.answered_at" if for_csv else "(extract(epoch from a.answered_at) * 1000000)::bigint"
        ),
        poll_id=int(poll.pk),
    )


def old_copy(sql: str) -> Iterator[bytes]:
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy,
    ):
        for chunk in copy:
            yield bytes(chunk)


def old_long_csv(poll: Poll) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(writers.LONG_COLUMNS)
    return buffer.getvalue().encode() + b"".join(old_copy(old_sql(poll, for_csv=True)))


def old_long_table(poll: Poll) -> pa.Table:
    types = {f.name: f.type for f in writers.LONG_ARROW}
    types["answered_at"] = pa.int64()
    table = pa_csv.read_csv(
        pa.py_buffer(b"".join(old_copy(old_sql(poll, for_csv=False)))),
        read_options=pa_csv.ReadOptions(column_names=writers.LONG_COLUMNS),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=types,
            true_values=["true"],
            false_values=["false"],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    at = writers.LONG_ARROW.field("answered_at")
    return table.set_column(7, at, table.column(7).cast(at.type))


# --- a poll with everything a long export has to carry -----------------------------------------

ODD_IDS = ["=SUM(A1)", "-7", "@home", "+380", "\tтаб", 'Łódź, "центр" ✓', "", "plain"]
TEXTS = [
    'Так, "звісно", ні\nдругий рядок',
    "-not a number",
    "=1+1",
    "",
    "comma, only",
    "emoji 🙂 and ünïcödé",
    "\r\nstarts with a line break",
]


@pytest.fixture
def rich(poll: Poll) -> Poll:
    """The API tests' poll (ratings, choices, knowledge, rankings, numbers, formulas in text,
    weights, don't know) plus participants whose ids came from an imported file (a formula, a
    sign, unicode, a comma and quotes, an empty id) and every other kind of missing answer."""
    questions = {q.key: q for q in poll.questions.all()}
    assert any(q.kind == Question.Kind.RANKING for q in questions.values())
    at = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    people = [
        Participant.objects.create(
            poll=poll, public_id=pid, arm="treatment", weight=0.5 + index, imported=True
        )
        for index, pid in enumerate(ODD_IDS)
    ]
    missing = ["dont_know", "refused", "skipped", "not_asked"]
    answers = []
    for index, person in enumerate(people):
        answers += [
            Answer(
                poll=poll,
                participant=person,
                question=questions["comment"],
                wave=2,
                value=TEXTS[index % len(TEXTS)],
                answered_at=at,
            ),
            Answer(
                poll=poll,
                participant=person,
                question=questions["budget"],
                wave=1,
                value=[21.0, 2.5, -5, -0.25, 100, 0.125, 3, 0][index],
                number=[21.0, 2.5, -5, -0.25, 100, 0.125, 3, 0][index],
                answered_at=at,
            ),
            Answer(
                poll=poll,
                participant=person,
                question=questions["budget"],
                wave=2,
                value=None,
                missing=missing[index % len(missing)],
                answered_at=at,
            ),
        ]
    Answer.objects.bulk_create(answers)
    # A number stored with a zero after its decimals (written by SQL, not by the journey) is
    # written whole or without the zero all the same.
    Answer.objects.filter(pk=answers[4].pk).update(value=RawSQL("'12.50'::jsonb", []))
    Answer.objects.filter(pk=answers[1].pk).update(value=RawSQL("'21.000'::jsonb", []))
    return poll


def test_long_csv_is_byte_for_byte_the_earlier_export(rich: Poll) -> None:
    new = b"".join(writers.long_csv_chunks(rich))
    assert new == old_long_csv(rich)
    text = new.decode()
    # What the comparison covers: neutralised ids, quoted unicode with line breaks, every kind.
    assert "'=SUM(A1)," in text and "'-7," in text and '"Łódź, ""центр"" ✓"' in text
    assert '"Так, ""звісно"", ні\nдругий рядок"' in text and ",'=1+1," in text
    kinds = {row["missing"] for row in csv.DictReader(io.StringIO(text))}
    assert kinds == {"", "dont_know", "refused", "skipped", "not_asked"}
    budget = [r for r in csv.DictReader(io.StringIO(text)) if r["item"] == "budget"]
    assert {"21", "12.5", "-5", "-0.25", "0.125"} <= {r["value"] for r in budget}


def test_long_csv_keeps_participants_together_in_id_order(rich: Poll) -> None:
    rows = list(csv.DictReader(io.StringIO(b"".join(writers.long_csv_chunks(rich)).decode())))
    assert len(rows) == Answer.objects.filter(poll=rich).count()
    order = list(rich.participants.order_by("id").values_list("public_id", flat=True))
    seen = list(dict.fromkeys(r["participant"] for r in rows))
    assert seen == [writers.neutralise(pid) for pid in order]


def test_long_csv_comes_in_a_few_large_blocks_that_end_with_a_row(rich: Poll) -> None:
    sql = writers.long_sql(rich, for_csv=True)
    blocks = list(writers.copy_blocks(sql, header=True, size=300))
    assert len(blocks) > 2
    assert all(block.endswith(b"\n") for block in blocks)
    assert b"".join(blocks) == old_long_csv(rich)


def test_long_parquet_is_the_earlier_table(rich: Poll) -> None:
    table = pq.read_table(io.BytesIO(b"".join(writers.long_parquet_chunks(rich))))
    old = old_long_table(rich)
    assert table.schema.equals(writers.LONG_ARROW)
    assert table.equals(old)
    values = table.column("value").to_pylist()
    assert "=1+1" in values and "" in values  # typed: neither neutralised nor null
    assert table.column("participant").to_pylist().count("") > 0


def test_long_parquet_stays_one_file_over_many_blocks(
    rich: Poll, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers, "PARQUET_BLOCK_BYTES", 500)
    file = pq.ParquetFile(io.BytesIO(b"".join(writers.long_parquet_chunks(rich))))
    assert file.metadata.num_row_groups > 2
    assert file.read().equals(old_long_table(rich))


def test_a_question_of_another_poll_still_gets_its_key(rich: Poll) -> None:
    """Keys come from an array of the poll's questions; an answer pointing elsewhere (which the
    journey never writes) is looked up, as the join did."""
    data = validate(research_definition(slug="elsewhere"), "<test>")
    other = save_poll(data=data, source="<test>")[0].questions.get(key="comment")
    person = rich.participants.first()
    Answer.objects.create(poll=rich, participant=person, question=other, wave=1, value="x")
    assert b"".join(writers.long_csv_chunks(rich)) == old_long_csv(rich)


def python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path the embedded SQLite default takes (no COPY), run against this database."""
    monkeypatch.setattr(type(connection._connections[connection._alias]), "vendor", "sqlite")


def frame(body: bytes) -> pd.DataFrame:
    table = pd.read_csv(io.BytesIO(body), keep_default_na=False, dtype=str)
    table["answered_at"] = pd.to_datetime(table["answered_at"], utc=True)
    return table


def test_the_python_path_writes_the_same_table(rich: Poll, monkeypatch: pytest.MonkeyPatch) -> None:
    copied = frame(b"".join(writers.long_csv_chunks(rich)))
    copied_parquet = pq.read_table(io.BytesIO(b"".join(writers.long_parquet_chunks(rich))))
    python_path(monkeypatch)
    assert connection.vendor == "sqlite"
    written = frame(b"".join(writers.long_csv_chunks(rich)))
    # The Python path orders by the definition's question order, equal to id order here.
    pd.testing.assert_frame_equal(written, copied)
    parquet = pq.read_table(io.BytesIO(b"".join(writers.long_parquet_chunks(rich))))
    key = ["participant", "item", "wave"]
    assert parquet.sort_by([(k, "ascending") for k in key]).equals(
        copied_parquet.sort_by([(k, "ascending") for k in key])
    )


def test_questions_added_far_apart_keep_their_keys(rich: Poll) -> None:
    """Question ids spread far apart take the CASE look-up, not an array by id."""
    late = rich.questions.get(key="comment")
    late.pk = None
    late.id = Question.objects.order_by("-id").first().id + 10_000
    late.key = "-late_added"
    late.save(force_insert=True)
    person = rich.participants.order_by("id").first()
    Answer.objects.create(poll=rich, participant=person, question=late, wave=2, value="-ok")
    assert "CASE a.question_id" in writers.long_sql(rich, for_csv=True)
    body = b"".join(writers.long_csv_chunks(rich))
    assert body == old_long_csv(rich)
    assert b"'-late_added,2,'-ok," in body
    table = pq.read_table(io.BytesIO(b"".join(writers.long_parquet_chunks(rich))))
    assert table.equals(old_long_table(rich))
