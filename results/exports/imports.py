"""Import of an existing panel dataset (a poll run on paper or in another tool) in the wide CSV
layout of the export. Every problem is reported by row and column; a file with any problem
stores nothing. Imported participants are marked ``imported``.

The file is read as a stream and stored in chunks inside one transaction (rolled back on any
problem), so memory stays flat however many rows it has. API uploads over the inline limit are
stored and imported by a Celery task (an ``ImportJob`` with progress), up to
``settings.IMPORT_MAX_BYTES``; ``manage.py importresponses`` has no limit.
"""

import csv
import io
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from results.exports.codebook import DK_CODE, DK_TEXT, LIST_SEPARATOR, STEPS, wide_variables
from results.exports.writers import FORMULA_STARTS
from surveys.definition.spec import QuestionSpec, poll_spec
from surveys.models import Answer, Participant, Poll, Question

MAX_ERRORS = 200
IGNORED_COLUMNS = {"imported"}
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
CHUNK_ROWS = 500
# The longest participant id the model holds.
ID_LENGTH = Participant._meta.get_field("public_id").max_length


@dataclass(frozen=True)
class RowError:
    row: int  # line in the file: the header is row 1
    column: str
    message: str


class ImportFailed(Exception):
    """``errors``: the first MAX_ERRORS problems; ``more``: how many others the check found."""

    def __init__(self, errors: list[RowError], more: int = 0) -> None:
        self.errors = errors
        self.more = more
        lines = [f"row {e.row}, column {e.column or '-'}: {e.message}" for e in errors]
        if more:
            lines.append(f"and {more:,} more")
        super().__init__("\n".join(lines))

    @classmethod
    def whole_file(cls, message: str) -> "ImportFailed":
        """A problem of the file as a whole (row 0), such as its size."""
        return cls([RowError(0, "", message)])

    def summary(self) -> str:
        if not self.more:
            return f"{len(self.errors)} problems; nothing was imported."
        return (
            f"{len(self.errors) + self.more:,} problems: the first {len(self.errors)} are listed, "
            f"and {self.more:,} more; nothing was imported."
        )


@dataclass
class ImportResult:
    participants: int = 0
    answers: int = 0
    renamed: dict[str, str] = field(default_factory=dict)  # file id -> new id


class CellError(ValueError):
    pass


def _unneutralise(text: str) -> str:
    # The export prefixes a quote to formula-like text; a round trip must give it back as it was.
    if len(text) > 1 and text[0] == "'" and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def _integer(text: str) -> int:
    try:
        number = float(text)
    except ValueError:
        raise CellError(f"'{text}' is not a whole number") from None
    if not math.isfinite(number) or number != int(number):
        raise CellError(f"'{text}' is not a whole number")
    return int(number)


def _float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise CellError(f"'{text}' is not a number") from None
    if not math.isfinite(number):
        raise CellError(f"'{text}' is not a finite number")
    return number


def _group(text: str) -> int:
    number = _integer(text)
    try:
        # The column's own range (0 up to PostgreSQL's integer maximum).
        Participant._meta.get_field("group").run_validators(number)
    except ValidationError as error:
        raise CellError(f"{number} is not a group number: {' '.join(error.messages)}") from None
    return number


def _seconds(text: str) -> float:
    number = _float(text)
    if number < 0:
        raise CellError(f"{number} seconds: a time cannot be negative")
    return number


def _keys(text: str) -> list[str]:
    return [key.strip() for key in text.split(LIST_SEPARATOR) if key.strip()]


def decode_answer(question: QuestionSpec, text: str, options: list[str]) -> tuple[Any, Any, bool]:
    """A wide cell back to (value, number, dont_know), or CellError saying what is wrong."""
    kind = question.kind
    if text in (str(DK_CODE), DK_TEXT, f"{DK_CODE}.0"):
        if not question.dont_know:
            raise CellError(f"{DK_CODE} (don't know) is not offered for this question")
        return None, None, True
    if kind == Question.Kind.RATING:
        value = _integer(text)
        if not question.scale_min <= value <= question.scale_max:
            raise CellError(
                f"{value} is outside the scale {question.scale_min}..{question.scale_max}"
            )
        return value, float(value), False
    if kind in (Question.Kind.SINGLE, Question.Kind.KNOWLEDGE):
        code = _integer(text)
        keys = {number: key for key, number in question.choice_codes().items()}
        if code not in keys:
            codes = f"{min(keys, default=0)}..{max(keys, default=0)}"
            raise CellError(f"{code} is not a choice code ({codes})")
        return keys[code], float(code), False
    if kind == Question.Kind.NUMBER:
        number = _float(text)
        low, high = question.number_min, question.number_max
        if (low is not None and number < low) or (high is not None and number > high):
            raise CellError(f"{number} is outside {low}..{high}")
        return number, number, False
    if kind == Question.Kind.MULTIPLE:
        keys = _keys(text)
        unknown = [k for k in keys if k not in question.choice_keys()]
        if unknown or len(set(keys)) != len(keys):
            raise CellError(f"not distinct choice keys: {', '.join(unknown) or text}")
        return keys, None, False
    if kind == Question.Kind.RANKING:
        keys = _keys(text)
        if sorted(keys) != sorted(options):
            raise CellError(f"a ranking must list every option once: {', '.join(options)}")
        return keys, None, False
    return _unneutralise(text), None, False


def _datetime(text: str) -> datetime:
    try:
        value = parse_datetime(text.replace(" ", "T", 1))
    except ValueError:  # well formed but impossible, like 2024-13-45T25:61
        value = None
    if value is None:
        raise CellError(f"'{text}' is not an ISO 8601 date and time")
    return value if timezone.is_aware(value) else timezone.make_aware(value, timezone.UTC)


class Parser:
    """Checks every cell of a file against the poll; collects errors rather than stopping."""

    def __init__(self, poll: Poll) -> None:
        self.poll = poll
        self.questions = {q.key: q for q in poll.questions.all()}
        self.spec = poll_spec(poll)
        self.variables = {v.name: v for v in wide_variables(poll)}
        self.positions = list(poll.positions.values_list("key", flat=True))
        self.options = list(poll.options.order_by("order", "id").values_list("key", flat=True))
        self.errors: list[RowError] = []
        self.more = 0  # problems found past MAX_ERRORS: counted, not listed

    def error(self, row: int, column: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(RowError(row, column, message))
        else:
            self.more += 1

    def check_header(self, header: list[str]) -> None:
        if "participant" not in header:
            self.error(1, "participant", "the participant column is missing")
        seen: set[str] = set()
        for name in header:
            if name in seen:
                self.error(1, name, "duplicate column")
            seen.add(name)
            if name not in self.variables and name not in IGNORED_COLUMNS:
                self.error(1, name, "unknown column: not a variable of this poll's codebook")

    def cell(self, number: int, column: str, text: str, convert: Callable[[str], Any]) -> Any:
        try:
            return convert(text)
        except CellError as problem:
            self.error(number, column, str(problem))
            return None

    def participant(self, number: int, row: dict[str, str]) -> dict[str, Any]:
        fields: dict[str, Any] = {"step_times": {}, "position_seconds": {}}
        arm = row.get("arm", "")
        if arm not in ("", *Participant.Arm.values):
            self.error(number, "arm", f"'{arm}' is not treatment, control or empty")
        fields["arm"] = arm
        for column, convert in (("group", _group), ("weight", _float)):
            text = row.get(column, "")
            fields[column] = self.cell(number, column, text, convert) if text else None
        if fields["weight"] is not None and fields["weight"] <= 0:
            self.error(number, "weight", "a weight must be positive")
        for column, known in (("position_order", self.positions), ("option_order", self.options)):
            keys = _keys(row.get(column, ""))
            if any(key not in known for key in keys):
                self.error(number, column, f"unknown keys; expected among {', '.join(known)}")
            fields[column] = keys
        language = row.get("language") or self.poll.languages[0]
        if language not in self.poll.languages:
            self.error(number, "language", f"'{language}' is not a language of this poll")
        fields["language"] = language
        fields["flags"] = _keys(row.get("flags", ""))
        for column, target in (("started_at", "consented_at"), ("completed_at", "completed_at")):
            text = row.get(column, "")
            fields[target] = self.cell(number, column, text, _datetime) if text else None
        if "completed_at" not in row:
            # A file without the column comes from a tool that only exports finished answers.
            fields["completed_at"] = timezone.now()
        for step in STEPS:
            text = row.get(f"seconds_{step}", "")
            if text:
                fields["step_times"][step] = self.cell(number, f"seconds_{step}", text, _seconds)
        for key in self.positions:
            text = row.get(f"seconds_position_{key}", "")
            if text:
                column = f"seconds_position_{key}"
                fields["position_seconds"][key] = self.cell(number, column, text, _seconds)
        return fields

    def answers(self, number: int, row: dict[str, str]) -> list[tuple[Question, int, Any]]:
        answers = []
        for column, text in row.items():
            variable = self.variables.get(column)
            if variable is None or not variable.item or text == "":
                continue
            question = self.questions[variable.item]
            spec = self.spec.by_key[variable.item]
            decoded = self.cell(
                number, column, text, lambda t, q=spec: decode_answer(q, t, self.options)
            )
            if decoded is not None:
                answers.append((question, variable.wave, decoded))
        return answers


Row = tuple[str, dict[str, Any], list[Any]]  # (participant id, fields, decoded answers)


def parse_rows(poll: Poll, parser: "Parser", stream: IO[str]) -> Iterator[list[Row]]:
    """The file's rows, checked, in chunks; every problem goes to ``parser.errors``."""
    reader = csv.DictReader(stream)
    header = reader.fieldnames or []
    if not header:
        raise ImportFailed([RowError(1, "", "the file is empty: expected a header row")])
    parser.check_header(header)
    if parser.errors:
        raise ImportFailed(parser.errors, parser.more)
    existing = set(poll.participants.values_list("public_id", flat=True))
    seen: dict[str, int] = {}
    chunk: list[Row] = []
    number = 1
    try:
        # Past MAX_ERRORS the file is still read to the end, so the answer can say how many more
        # problems there are (nothing is written after the first one).
        for number, row in enumerate(reader, 2):
            if None in row or any(value is None for value in row.values()):
                parser.error(number, "", f"expected {len(header)} cells in this row")
                continue
            # PostgreSQL text and JSON cannot hold NUL; no spreadsheet cell needs one.
            bad = [column for column, value in row.items() if "\x00" in value]
            for column in bad:
                parser.error(number, column, "the cell contains a NUL character")
            if bad:
                continue
            row = {key: value.strip() for key, value in row.items()}
            public_id = row["participant"]
            if not public_id:
                parser.error(number, "participant", "the participant id is empty")
            elif len(public_id) > ID_LENGTH:
                parser.error(
                    number, "participant", f"the participant id is over {ID_LENGTH} characters"
                )
            elif public_id in seen:
                parser.error(number, "participant", f"the same id as row {seen[public_id]}")
            elif public_id in existing:
                parser.error(number, "participant", "this participant is already in the poll")
            seen.setdefault(public_id, number)
            chunk.append((public_id, parser.participant(number, row), parser.answers(number, row)))
            if len(chunk) >= CHUNK_ROWS:
                yield chunk
                chunk = []
    except csv.Error as error:
        # The reader stops at the row after the last one it gave (a field over its size limit).
        parser.error(number + 1, "", f"not a readable CSV line: {error}")
    if chunk:
        yield chunk
    if not seen and not parser.errors:
        parser.error(2, "", "the file has no data rows")


def _store(poll: Poll, rows: list[Row], result: ImportResult) -> None:
    participants = []
    for public_id, fields, _ in rows:
        # Ids are unique within a poll (the file's own ids were checked against it), so the
        # same panel imported into another poll keeps its ids as given.
        participant = Participant(poll=poll, imported=True, public_id=public_id, **fields)
        if fields["completed_at"] is not None:
            participant.step = Participant.Step.DONE
        participants.append(participant)
    Participant.objects.bulk_create(participants)
    answers = [
        Answer(
            poll=poll,
            participant=participant,
            question=question,
            wave=wave,
            value=value,
            number=number,
            missing=Answer.Missing.DONT_KNOW if dont_know else "",
        )
        for participant, (_, _, decoded) in zip(participants, rows, strict=True)
        for question, wave, (value, number, dont_know) in decoded
    ]
    Answer.objects.bulk_create(answers)
    result.participants += len(participants)
    result.answers += len(answers)


def _size(stream: IO[Any]) -> int | None:
    size = getattr(stream, "size", None)  # Django's uploaded files
    if isinstance(size, int):
        return size
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        pass
    try:  # in-memory buffers
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
        return end - here
    except (AttributeError, OSError, ValueError):
        return None


@transaction.atomic
def import_responses(
    *,
    poll: Poll,
    stream: IO[str] | IO[bytes],
    recompute: Callable[[int], object],
    max_bytes: int | None = MAX_UPLOAD_BYTES,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Store every row of a wide CSV as an imported participant with answers, or nothing; once
    stored, ``recompute(poll_id)`` asks for the results (callers pass
    ``results.tasks.schedule_recompute``: the tasks import this module, not the reverse).

    Files over ``max_bytes`` are refused before a byte is parsed (``None``: no limit, for the
    command line). Chunks are written as they pass their checks; the first problem stops the
    writing, the rest of the file is still checked, and any problem rolls everything back.
    """
    size = _size(stream)
    if max_bytes is not None and size is not None and size > max_bytes:
        message = (
            f"the file has {size:,} bytes; uploads are limited to {max_bytes:,} bytes. "
            "Import larger files with manage.py importresponses."
        )
        raise ImportFailed.whole_file(message)
    if isinstance(stream.read(0), bytes):
        stream = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
    parser = Parser(poll)
    result = ImportResult()
    rows = 0
    try:
        for chunk in parse_rows(poll, parser, stream):  # type: ignore[arg-type]
            rows += len(chunk)
            if not parser.errors:
                _store(poll, chunk, result)
            if progress is not None:
                progress(rows)
    except UnicodeDecodeError as error:
        parser.error(0, "", f"the file is not UTF-8 text: {error}")
    if parser.errors:
        raise ImportFailed(parser.errors, parser.more)
    recompute(poll.pk)
    return result
