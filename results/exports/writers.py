"""Exports of a poll's answers: long and wide, as CSV, Parquet, SPSS and Stata.

Rows are shaped as plain data first and written by a trivial writer after. The long layout streams
straight from PostgreSQL ``COPY`` (no Python object per row); the wide layout merges two
server-side cursors (participants and answers, both ordered by participant), so memory stays flat
whatever the poll's size. SPSS and Stata (``statfiles``) need a whole table, so they are built
from the wide rows (one per participant, far fewer than answers).
"""

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.db import connection, transaction
from psycopg import sql

from results import tables
from results.exports.codebook import (
    DK_CODE,
    FALLBACK_CODES,
    LIST_SEPARATOR,
    LONG_VARIABLES,
    STEPS,
    Variable,
    missing_codes,
    poll_questions,
    wide_variables,
)
from surveys.definition.spec import poll_spec
from surveys.models import Answer, Participant, Poll, Question

Progress = Callable[[float, str], None]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 2000
BLOCK_BYTES = 1 << 20
PARQUET_BLOCK_BYTES = 4 << 20
LONG_COLUMNS = [v.name for v in LONG_VARIABLES]


def sql_neutralised(text: str) -> str:
    """``neutralise`` as SQL over a text expression, for rows that stream straight from COPY.

    ``ascii`` (the first character's code, 0 for empty text) against a list of codes: cheaper
    per row than a regular expression, and the same test as ``str.startswith``."""
    return f"CASE WHEN ascii({text}) IN ({FORMULA_CODES}) THEN '''' || ({text}) ELSE ({text}) END"


FORMULA_CODES = ", ".join(str(ord(c)) for c in FORMULA_STARTS)
# The JSON text of an answer: a string unquoted, a number as PostgreSQL's numeric writes it,
# a list as JSON.
ANSWER_TEXT = "(a.value #>> '{}')"
# A whole number is written without decimals (an age of 21, not 21.0), however it was stored;
# numeric text changes under trim_scale only when it has a fraction ending in zero.
NUMBER_TEXT = (
    f"CASE WHEN {ANSWER_TEXT} LIKE '%.%0' THEN trim_scale({ANSWER_TEXT}::numeric)::text "
    f"ELSE {ANSWER_TEXT} END"
)
# Every text column of the CSV is neutralised: participant ids (imported ones are arbitrary
# text), item keys and text answers; a JSON number (a negative number) stays a plain number.
# One jsonb_typeof per row (a simple CASE evaluates it once).
VALUE_TEXT = (
    f"CASE jsonb_typeof(a.value) WHEN 'string' THEN {sql_neutralised(ANSWER_TEXT)} "
    f"WHEN 'number' THEN {NUMBER_TEXT} ELSE {ANSWER_TEXT} END"
)
PLAIN_VALUE_TEXT = (
    f"CASE jsonb_typeof(a.value) WHEN 'number' THEN {NUMBER_TEXT} ELSE {ANSWER_TEXT} END"
)
# Parquet reads microseconds since the epoch: exact, and no timestamp text to parse. date_part's
# double precision gives them back exactly (rounded) within 4.1e15 microseconds of 1970, checked
# over millions of random instants; numeric extract, a third of the query's cost, is kept for
# the rest.
EPOCH_MICROSECONDS = (
    "CASE WHEN a.answered_at BETWEEN '1900-01-01+00' AND '2099-12-31+00' "
    "THEN round(date_part('epoch', a.answered_at) * 1000000)::bigint "
    "ELSE (extract(epoch FROM a.answered_at) * 1000000)::bigint END"
)
# Participants in id order, each with their answers in (question, wave) order read by index:
# no sort of the answers, and the plan cannot turn into one (a join of the three tables was
# planned as a sort of every answer spilled to disk). An id is neutralised once per participant,
# a key once per export (``item_keys``), not once per answer.
LONG_SQL = """
SELECT p.participant AS participant, {item} AS item, a.wave AS wave, {value} AS value,
       a.number AS number, CASE a.missing WHEN 'dont_know' THEN 'true' ELSE 'false' END
       AS dont_know, a.missing AS missing, {answered_at} AS answered_at
FROM (SELECT id, {participant} AS participant FROM surveys_participant
      WHERE poll_id = {poll_id} ORDER BY id) p
CROSS JOIN LATERAL (
    SELECT question_id, wave, value, number, missing, answered_at FROM surveys_answer a
    WHERE a.participant_id = p.id AND a.poll_id = {poll_id} ORDER BY question_id, wave
) a
ORDER BY p.id
"""


def whole(number: Any) -> Any:
    """A whole float as an int (21.0 -> 21): whole-number answers stay whole in every file."""
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


def value_text(value: Any) -> str | None:
    """A non-text answer value as the long layout's text (JSON; whole numbers without .0)."""
    if value is None:
        return None
    return json.dumps(whole(value), ensure_ascii=False)


def neutralise(text: str) -> str:
    """Prefix a quote to text a spreadsheet would run as a formula (OWASP CSV injection)."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_value(value: Any) -> Any:
    """A results cell for CSV: numbers plain, booleans lower case, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, (dict, list)):
        return neutralise(json.dumps(value, ensure_ascii=False))
    return value


def table_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> bytes:
    """Rows of a results table (or the codebook) as CSV, in ``columns`` order (by default the
    first row's keys): the data package's files and the API's ``?format=csv`` alike."""
    columns = columns or (list(rows[0]) if rows else [])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_value(row.get(column)) for column in columns])
    return buffer.getvalue().encode()


def item_keys(poll: Poll, *, for_csv: bool) -> str:
    """The item column as SQL: the poll's keys (neutralised here for CSV) looked up by question
    id, and a question outside them (which the journey never writes) read from its table.

    Ids made together (a saved definition) lie side by side: an array indexed by id. Ids spread
    out (questions added years apart) would make that array long, and PostgreSQL walks an array
    of text to its element, so they get a CASE over the poll's own ids instead."""
    keys = dict(Question.objects.filter(poll=poll).values_list("id", "key"))
    with connection.cursor() as cursor:
        raw = cursor.cursor.connection

        def literal(key: str | None) -> str:
            text = None if key is None else neutralise(key) if for_csv else key
            return sql.Literal(text).as_string(raw)

        if keys and max(keys) - min(keys) < 2 * len(keys) + 16:
            base = min(keys) - 1
            items = ", ".join(literal(keys.get(pk)) for pk in range(base + 1, max(keys) + 1))
            found = f"(ARRAY[{items}]::text[])[a.question_id - {base}]"
        else:
            cases = " ".join(f"WHEN {int(pk)} THEN {literal(key)}" for pk, key in keys.items())
            found = f"CASE a.question_id {cases} END" if cases else "NULL::text"
    other = sql_neutralised("key") if for_csv else "key"
    return f"coalesce({found}, (SELECT {other} FROM surveys_question WHERE id = a.question_id))"


def long_sql(poll: Poll, *, for_csv: bool) -> str:
    value = VALUE_TEXT if for_csv else PLAIN_VALUE_TEXT
    participant = sql_neutralised("public_id") if for_csv else "public_id"
    answered_at = "a.answered_at" if for_csv else EPOCH_MICROSECONDS
    return LONG_SQL.format(
        participant=participant,
        item=item_keys(poll, for_csv=for_csv),
        value=value,
        answered_at=answered_at,
        poll_id=int(poll.pk),
    )


def copy_blocks(sql: str, *, header: bool = False, size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """``COPY (sql) TO STDOUT (FORMAT csv)`` as blocks of about ``size`` bytes.

    PostgreSQL sends one message per row, so every block ends at the end of a row (a text
    answer's line breaks inside quotes included); a few large blocks instead of one per row
    keep the response and the file writes cheap."""
    options = "FORMAT csv, HEADER" if header else "FORMAT csv"
    # No JIT: compiling these expressions took a third of a million-row export's database time
    # and made the rest no faster. SET LOCAL needs the transaction, which ends with the COPY.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        raw = cursor.cursor  # the psycopg cursor: Django's wrapper has no copy()
        with raw.copy(f"COPY ({sql}) TO STDOUT ({options})") as copy:
            # Rows appended to one buffer: far cheaper than keeping a million small ones.
            block = bytearray()
            for row in copy:
                block += row
                if len(block) >= size:
                    yield bytes(block)
                    block.clear()
            if block:
                yield bytes(block)


def csv_line(values: Iterable[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()


def long_csv_chunks(poll: Poll) -> Iterator[bytes]:
    """The long table as CSV. In PostgreSQL the database writes every byte of it (header, ids,
    neutralised text, quoting); Python only passes the blocks on."""
    if connection.vendor == "postgresql":
        yield from copy_blocks(long_sql(poll, for_csv=True), header=True)
        return
    yield csv_line(LONG_COLUMNS)
    # The embedded SQLite default has no COPY; its polls are small.
    rows = (
        Answer.objects.filter(poll=poll)
        .order_by("participant_id", "question__order", "question_id", "wave")
        .long_form()
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for index, (pid, key, wave, value, number, missing, at) in enumerate(rows.iterator(), 1):
        text = neutralise(value) if isinstance(value, str) else value_text(value) or ""
        dk = "true" if missing == Answer.Missing.DONT_KNOW else "false"
        cells = [neutralise(pid), neutralise(key), wave, text, whole(number), dk, missing]
        writer.writerow([*cells, at])
        if index % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


LONG_ARROW = pa.schema(
    [
        ("participant", pa.string()),
        ("item", pa.string()),
        ("wave", pa.int8()),
        ("value", pa.string()),
        ("number", pa.float64()),
        ("dont_know", pa.bool_()),
        ("missing", pa.string()),
        ("answered_at", pa.timestamp("us", tz="UTC")),
    ]
)


def long_tables(poll: Poll) -> Iterator[pa.Table]:
    """The long table as typed Arrow tables of a block each, parsed in C++ from a COPY stream."""
    if connection.vendor != "postgresql":
        for batch in _long_batches_from_orm(poll):
            yield pa.Table.from_batches([batch])
        return
    types = {f.name: f.type for f in LONG_ARROW}
    types["answered_at"] = pa.int64()
    # The COPY stream is read here, in the request's thread (Django connections are per thread);
    # Arrow parses each block in C++. A block holds whole rows (see copy_blocks).
    read_options = pa_csv.ReadOptions(column_names=LONG_COLUMNS, block_size=PARQUET_BLOCK_BYTES)
    convert_options = pa_csv.ConvertOptions(
        column_types=types,
        true_values=["true"],
        false_values=["false"],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    parse_options = pa_csv.ParseOptions(newlines_in_values=True)
    at = LONG_ARROW.field("answered_at")
    for block in copy_blocks(long_sql(poll, for_csv=False), size=PARQUET_BLOCK_BYTES):
        table = pa_csv.read_csv(
            pa.py_buffer(block),
            read_options=read_options,
            parse_options=parse_options,
            convert_options=convert_options,
        )
        yield table.set_column(7, at, table.column(7).cast(at.type))


def long_batches(poll: Poll) -> Iterator[pa.RecordBatch]:
    """The long table as typed Arrow batches."""
    for table in long_tables(poll):
        yield from table.to_batches()


def _long_batches_from_orm(poll: Poll) -> Iterator[pa.RecordBatch]:
    rows = Answer.objects.filter(poll=poll).long_form()
    batch: list[tuple[Any, ...]] = []
    for pid, key, wave, value, number, missing, at in rows.iterator():
        text = value if isinstance(value, str) else value_text(value)
        dk = missing == Answer.Missing.DONT_KNOW
        batch.append((pid, key, wave, text, number, dk, missing, at))
        if len(batch) >= 50_000:
            yield pa.RecordBatch.from_pylist(
                [dict(zip(LONG_COLUMNS, row, strict=True)) for row in batch], schema=LONG_ARROW
            )
            batch = []
    yield pa.RecordBatch.from_pylist(
        [dict(zip(LONG_COLUMNS, row, strict=True)) for row in batch], schema=LONG_ARROW
    )


class Drain(io.RawIOBase):
    """A write-only sink whose bytes are taken out as they come (streaming a Parquet file)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def parquet_chunks(tables: Iterable[pa.Table], schema: pa.Schema) -> Iterator[bytes]:
    """Tables written as they come, a row group each, their bytes passed on as written."""
    sink = Drain()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for table in tables:
            writer.write_table(table)
            yield sink.take()
    yield sink.take()


def long_parquet_chunks(poll: Poll) -> Iterator[bytes]:
    return parquet_chunks(long_tables(poll), LONG_ARROW)


# --- wide -----------------------------------------------------------------------------------


def encode_answer(
    kind: str, value: Any, number: float | None, missing: str, codes: dict[str, int]
) -> Any:
    """One answer as a wide cell, as the codebook documents it: a missing answer is the code
    of its kind (``codes``: kind -> code, from ``codebook.missing_codes``)."""
    numeric = kind in (Question.Kind.RATING, Question.Kind.SINGLE, Question.Kind.KNOWLEDGE)
    if missing:
        code = codes.get(missing, FALLBACK_CODES.get(missing, DK_CODE))
        return code if numeric or kind == Question.Kind.NUMBER else str(code)
    if numeric:
        return None if number is None else int(number)
    if kind == Question.Kind.NUMBER:
        return whole(number)
    if isinstance(value, list):
        return LIST_SEPARATOR.join(map(str, value))
    return value


def _design_cells(row: dict[str, Any], position_keys: list[str]) -> list[Any]:
    step_times = row["step_times"] or {}
    position_seconds = row["position_seconds"] or {}
    return [
        row["public_id"],
        row["arm"],
        row["group"],
        LIST_SEPARATOR.join(row["position_order"] or []),
        LIST_SEPARATOR.join(row["option_order"] or []),
        row["weight"],
        row["language"],
        int(row["imported"]),
        row["consented_at"],
        row["completed_at"],
        LIST_SEPARATOR.join(row["flags"] or []),
        *(step_times.get(step) for step in STEPS),
        *(position_seconds.get(key) for key in position_keys),
    ]


def wide_rows(poll: Poll, questions: list[Question] | None = None) -> Iterator[list[Any]]:
    """One list of cells per participant, in ``wide_variables`` order (a merge of two cursors)."""
    questions = poll_questions(poll) if questions is None else questions
    position_keys = list(poll.positions.order_by("order", "id").values_list("key", flat=True))
    columns: dict[tuple[int, int], int] = {}
    kinds: dict[int, str] = {}
    codes: dict[int, dict[str, int]] = {}
    spec = poll_spec(poll)
    for q in questions:
        kinds[q.pk] = q.kind
        # kind -> code: the lowest code of each kind, as the codebook lists them in order.
        codes[q.pk] = {}
        for code, kind in missing_codes(spec.by_key[q.key]).items():
            codes[q.pk].setdefault(kind, code)
        for wave in [1, 2] if q.paired else [1 if q.waves == Question.Waves.T1 else 2]:
            columns[(q.pk, wave)] = len(columns)
    participants = (
        Participant.objects.filter(poll=poll)
        .order_by("id")
        .values("id", *tables.PARTICIPANT_FIELDS)
    )
    answers = iter(
        Answer.objects.filter(poll=poll)
        .order_by("participant_id")
        .values_list("participant_id", "question_id", "wave", "value", "number", "missing")
        .iterator(chunk_size=5000)
    )
    pending = next(answers, None)
    for row in participants.iterator(chunk_size=2000):
        cells: list[Any] = [None] * len(columns)
        while pending is not None and pending[0] < row["id"]:
            pending = next(answers, None)  # an answer of a participant deleted meanwhile
        while pending is not None and pending[0] == row["id"]:
            _, question_id, wave, value, number, missing = pending
            index = columns.get((question_id, wave))
            if index is not None:
                kind = kinds[question_id]
                cells[index] = encode_answer(kind, value, number, missing, codes[question_id])
            pending = next(answers, None)
        yield _design_cells(row, position_keys) + cells


def csv_cell(value: Any, variable: Variable) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and not variable.numeric and value not in variable.missing:
        return neutralise(value)
    return value


def wide_csv_chunks(poll: Poll) -> Iterator[bytes]:
    questions = poll_questions(poll)
    variables = wide_variables(poll, questions)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([v.name for v in variables])
    for index, row in enumerate(wide_rows(poll, questions), 1):
        writer.writerow([csv_cell(c, v) for c, v in zip(row, variables, strict=True)])
        if index % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


ARROW_TYPES = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("us", tz="UTC"),
}


def wide_frame(poll: Poll, *, progress: Progress | None = None) -> tuple[pd.DataFrame, list]:
    """The wide table as a typed DataFrame (nullable integers, UTC timestamps)."""
    questions = poll_questions(poll)
    variables = wide_variables(poll, questions)
    rows = list(wide_rows(poll, questions))
    if progress:
        progress(0.5, f"{len(rows)} participants read")
    frame = pd.DataFrame(rows, columns=[v.name for v in variables], dtype=object)
    for position, v in enumerate(variables):
        column = frame[v.name]
        if v.type == "number" and v.item and _all_whole(column):
            # A number question whose answers are all whole (ages, counts) is an integer.
            v = variables[position] = replace(v, type="integer")
        if v.type == "integer":
            frame[v.name] = pd.array(column, dtype="Int64")
        elif v.type == "number":
            frame[v.name] = pd.to_numeric(column).astype("float64")
        elif v.type == "datetime":
            frame[v.name] = pd.to_datetime(column, utc=True)
        else:
            frame[v.name] = column.astype("string")
    return frame, variables


def _all_whole(column: pd.Series) -> bool:
    values = pd.to_numeric(column.dropna())
    return bool((values == values.round()).all())


def wide_arrow_schema(variables: list[Variable]) -> pa.Schema:
    return pa.schema(
        [pa.field(v.name, ARROW_TYPES[v.type], metadata={"label": v.label}) for v in variables]
    )


def write_wide_parquet(poll: Poll, target: IO[bytes] | Path) -> None:
    frame, variables = wide_frame(poll)
    table = pa.Table.from_pandas(frame, schema=wide_arrow_schema(variables), preserve_index=False)
    pq.write_table(table, target, compression="zstd")
