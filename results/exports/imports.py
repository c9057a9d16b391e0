"""Import of an existing panel dataset (a poll run on paper or in another tool) in the wide CSV
layout of the export (``importresponses --template`` gives its header and codebook). Every
problem is reported by row and column with what the column accepts; a file with any problem
stores nothing. Imported participants are marked ``imported`` and keep their ids as given.

The file is read as a stream and stored in chunks (PostgreSQL ``COPY``, see ``bulk``) inside one
transaction, rolled back on any problem or on a dry run, so memory stays flat however many rows
it has. API uploads over the inline limit are stored and imported by a Celery task (an
``ImportJob`` with progress), up to ``settings.IMPORT_MAX_BYTES``; ``manage.py importresponses``
has no limit. The recompute is asked for once the import commits, never run inside it.
"""

import csv
import difflib
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from results.exports.bulk import Irreplaceable, Row, Writer, replace_existing
from results.exports.cells import CellError, Decoder, integer, keys_of, real, shortlist
from results.exports.codebook import STEPS, wide_variables
from results.exports.writers import FORMULA_STARTS
from surveys.definition.spec import poll_spec
from surveys.models import Participant, Poll, Question

MAX_ERRORS = 200
# A cell is quoted in a message up to this many characters; one message, and the whole list,
# are bounded too, so a file of huge bad cells gives a short answer (and a small ImportJob).
QUOTED = 80
MAX_MESSAGE = 1000
MAX_REPORT = 100_000
IGNORED_COLUMNS = {"imported"}
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
CHUNK_ROWS = 2000
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
    complete: int = 0
    incomplete: int = 0
    answers: int = 0
    replaced: int = 0
    dry_run: bool = False
    # False when the file had no completed_at column: every row was taken as complete.
    completion_given: bool = True

    def summary(self) -> str:
        verb = "Checked, nothing stored (dry run): would import" if self.dry_run else "Imported"
        lines = [
            f"{verb} {self.participants:,} participants ({self.complete:,} complete, "
            f"{self.incomplete:,} incomplete) and {self.answers:,} answers."
        ]
        if self.replaced:
            lines.append(f"{self.replaced:,} participants with the same ids were replaced.")
        if self.incomplete:
            lines.append(
                f"The {self.incomplete:,} incomplete (empty completed_at) are left out of the "
                "results until they have a completion time."
            )
        if not self.completion_given:
            lines.append(
                "The file has no completed_at column: every row counts as complete, stamped "
                "with the time of the import."
            )
        return "\n".join(lines)


def quoted(text: str) -> str:
    """``'text'``, or its first QUOTED characters and its length when it is longer."""
    if len(text) <= QUOTED:
        return f"'{text}'"
    return f"'{text[:QUOTED]}…' ({len(text):,} characters)"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…"


def _shortened(message: str, text: str) -> str:
    """A check's message with the (long) cell it quotes cut down to QUOTED characters."""
    text = text.strip()
    if len(text) <= QUOTED:
        return message
    message = message.replace(f"'{text}'", quoted(text))
    return message.replace(text, _clip(text, QUOTED))


def _unneutralise(text: str) -> str:
    # The export prefixes a quote to formula-like text; a round trip must give it back as it was.
    if len(text) > 1 and text[0] == "'" and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def _group(text: str) -> int:
    number = integer(text)
    try:
        # The column's own range (0 up to PostgreSQL's integer maximum).
        Participant._meta.get_field("group").run_validators(number)
    except ValidationError as error:
        raise CellError(f"{number} is not a group number: {' '.join(error.messages)}") from None
    return number


def _seconds(text: str) -> float:
    number = real(text)
    if number < 0:
        raise CellError(f"{number} seconds: a time cannot be negative")
    return number


def _datetime(text: str) -> datetime:
    try:
        value = parse_datetime(text.replace(" ", "T", 1))
    except ValueError:  # well formed but impossible, like 2024-13-45T25:61
        value = None
    if value is None:
        raise CellError(
            f"{quoted(text)} is not an ISO 8601 date and time (e.g. 2024-05-01T10:30:00Z)"
        )
    return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)


def suggestion(name: str, known: list[str]) -> str:
    """``did you mean Q2A_t1?`` for a column name that is not the poll's, or ""."""
    folded = {k.casefold(): k for k in known}
    key = name.strip().casefold()
    if key in folded:
        return f"did you mean {folded[key]}? (names are case-sensitive)"
    waves = [folded[f"{key}_t{w}"] for w in (1, 2) if f"{key}_t{w}" in folded]
    if waves:
        return f"did you mean {' or '.join(waves)}? (one column per wave)"
    close = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return f"did you mean {folded[close[0]]}?" if close else ""


class Parser:
    """Checks every cell of a file against the poll; collects errors rather than stopping."""

    def __init__(self, poll: Poll) -> None:
        self.poll = poll
        self.spec = poll_spec(poll)
        self.variables = {v.name: v for v in wide_variables(poll)}
        self.question_ids = dict(poll.questions.values_list("key", "id"))
        self.positions = list(poll.positions.values_list("key", flat=True))
        self.options = list(poll.options.order_by("order", "id").values_list("key", flat=True))
        self.errors: list[RowError] = []
        self.more = 0  # problems found past MAX_ERRORS (or MAX_REPORT): counted, not listed
        self.report = 0  # characters of the listed messages
        self.items: list[tuple[int, str, int, int, Decoder, bool]] = []
        self.design: list[tuple[int, str]] = []

    def error(self, row: int, column: str, message: str) -> None:
        column, message = _clip(column, QUOTED), _clip(message, MAX_MESSAGE)
        size = len(column) + len(message)
        if len(self.errors) < MAX_ERRORS and self.report + size <= MAX_REPORT:
            self.errors.append(RowError(row, column, message))
            self.report += size
        else:
            self.more += 1

    def check_header(self, header: list[str]) -> None:
        if "participant" not in header:
            hint = suggestion("participant", header)
            hint = f" ({hint.replace('did you mean', 'is it')})" if hint else ""
            self.error(1, "participant", f"the participant column is missing{hint}")
        seen: set[str] = set()
        expected_named = False
        decoders: dict[str, Decoder] = {}
        for index, name in enumerate(header):
            if name in seen:
                self.error(1, name, "duplicate column")
            seen.add(name)
            variable = self.variables.get(name)
            if variable is None and name not in IGNORED_COLUMNS:
                message = "unknown column: not a variable of this poll's codebook"
                hint = suggestion(name, list(self.variables))
                if hint:
                    message += f"; {hint}"
                if not expected_named:
                    # Named once: the list is long, and the same for every unknown column.
                    expected = shortlist([n for n, v in self.variables.items() if v.item])
                    message += f". Expected item columns: {expected} (importresponses --template)"
                    expected_named = True
                self.error(1, name, message)
            elif variable is not None and variable.item:
                spec = self.spec.by_key[variable.item]
                decoder = decoders.setdefault(spec.key, Decoder(spec, self.options))
                text = spec.kind == Question.Kind.TEXT
                qid = self.question_ids[variable.item]
                self.items.append((index, name, qid, variable.wave or 1, decoder, text))
            elif variable is not None:
                self.design.append((index, name))

    def cell(self, number: int, column: str, text: str, convert: Callable[[str], Any]) -> Any:
        try:
            return convert(text)
        except CellError as problem:
            self.error(number, column, _shortened(str(problem), text))
            return None

    def participant(self, number: int, row: dict[str, str]) -> dict[str, Any]:
        fields: dict[str, Any] = {"step_times": {}, "position_seconds": {}}
        arm = row.get("arm", "")
        if arm not in ("", *Participant.Arm.values):
            self.error(number, "arm", f"{quoted(arm)} is not treatment, control or empty")
        fields["arm"] = arm
        for column, convert in (("group", _group), ("weight", real)):
            text = row.get(column, "")
            fields[column] = self.cell(number, column, text, convert) if text else None
        if fields["weight"] is not None and fields["weight"] <= 0:
            self.error(number, "weight", "a weight must be positive")
        for column, known in (("position_order", self.positions), ("option_order", self.options)):
            keys = keys_of(row.get(column, ""))
            if any(key not in known for key in keys):
                expected = shortlist(known) or "none (this poll has none)"
                self.error(number, column, f"unknown keys; expected among {expected}")
            fields[column] = keys
        language = row.get("language") or self.poll.languages[0]
        if language not in self.poll.languages:
            self.error(number, "language", f"{quoted(language)} is not a language of this poll")
        fields["language"] = language
        fields["flags"] = keys_of(row.get("flags", ""))
        for column, target in (("started_at", "consented_at"), ("completed_at", "completed_at")):
            text = row.get(column, "")
            fields[target] = self.cell(number, column, text, _datetime) if text else None
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

    def answers(self, number: int, row: list[str]) -> list[Any]:
        answers = []
        for index, column, question, wave, decoder, text in self.items:
            try:
                decoded = decoder(row[index])
            except CellError as problem:
                self.error(number, column, _shortened(str(problem), row[index]))
                continue
            if decoded is not None:
                if text and not decoded[2]:
                    decoded = (_unneutralise(decoded[0]), None, "")
                answers.append((question, wave, decoded))
        return answers


class Rows:
    """The file's rows, checked, in chunks; every problem goes to ``parser.errors``."""

    def __init__(self, poll: Poll, parser: Parser, *, replace: bool) -> None:
        self.poll, self.parser, self.replace = poll, parser, replace
        # Each id of the poll and whether it was imported: only imported ones may be replaced.
        self.existing = dict(poll.participants.values_list("public_id", "imported"))
        self.seen: dict[str, int] = {}
        self.completion_given = True

    def chunks(self, stream: IO[str]) -> Iterator[list[Row]]:
        parser = self.parser
        reader = csv.reader(stream)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise ImportFailed([RowError(1, "", "the file is empty: expected a header row")])
        parser.check_header(header)
        if parser.errors:
            raise ImportFailed(parser.errors, parser.more)
        self.completion_given = "completed_at" in header
        design = parser.design
        chunk: list[Row] = []
        number = 1
        try:
            # Past MAX_ERRORS the file is still read to the end, so the answer can say how many
            # more problems there are (nothing is written after the first one).
            for number, row in enumerate(reader, 2):
                if len(row) != len(header):
                    parser.error(number, "", f"expected {len(header)} cells in this row")
                    continue
                if "\x00" in "".join(row):
                    # PostgreSQL text and JSON cannot hold NUL; no spreadsheet cell needs one.
                    for index, value in enumerate(row):
                        if "\x00" in value:
                            parser.error(number, header[index], "the cell contains a NUL character")
                    continue
                cells = {name: row[index].strip() for index, name in design}
                public_id = self.check_id(number, cells.get("participant", ""))
                fields = parser.participant(number, cells)
                if not self.completion_given:
                    fields["completed_at"] = timezone.now()
                chunk.append((public_id, fields, parser.answers(number, row)))
                if len(chunk) >= CHUNK_ROWS:
                    yield chunk
                    chunk = []
        except csv.Error as error:
            # The reader stops at the row after the last one it gave (a field over its size).
            parser.error(number + 1, "", f"not a readable CSV line: {error}")
        if chunk:
            yield chunk
        if not self.seen and not parser.errors:
            parser.error(2, "", "the file has no data rows")

    def check_id(self, number: int, public_id: str) -> str:
        parser = self.parser
        if not public_id:
            parser.error(number, "participant", "the participant id is empty")
        elif len(public_id) > ID_LENGTH:
            message = f"the participant id has {len(public_id)} characters; at most {ID_LENGTH}"
            parser.error(number, "participant", message)
        elif public_id in self.seen:
            parser.error(number, "participant", f"the same id as row {self.seen[public_id]}")
        elif self.existing.get(public_id) is False:
            # Replacing would delete their answers and live-room seat (and fail on their
            # messages): a file never stands in for someone who took part online.
            parser.error(
                number,
                "participant",
                f"{public_id} took part online in this poll (not imported); only imported "
                "participants can be replaced, so give this row another id",
            )
        elif public_id in self.existing and not self.replace:
            parser.error(
                number,
                "participant",
                f"{public_id} is already in this poll; import with --replace (API: "
                "replace=true) to replace the participants with the same ids",
            )
        self.seen.setdefault(public_id, number)
        return public_id


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
    replace: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Store every row of a wide CSV as an imported participant with answers, or nothing; once
    stored, ``recompute(poll_id)`` asks for the results (callers pass
    ``results.tasks.schedule_recompute``, which queues it on commit: the tasks import this
    module, not the reverse).

    Files over ``max_bytes`` are refused before a byte is parsed (``None``: no limit, for the
    command line). Chunks are written as they pass their checks; the first problem stops the
    writing, the rest of the file is still checked, and any problem rolls everything back.
    ``replace``: the poll's imported participants with the file's ids are replaced (in the
    same transaction); the id of one who took part online is always a row error.
    ``dry_run``: everything is checked and written, then rolled back.
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
    rows = Rows(poll, parser, replace=replace)
    writer = Writer(poll)
    result = ImportResult(dry_run=dry_run)
    read = 0
    try:
        for chunk in rows.chunks(stream):  # type: ignore[arg-type]
            read += len(chunk)
            if not parser.errors:
                if replace:
                    ids = [public_id for public_id, _, _ in chunk if rows.existing.get(public_id)]
                    try:
                        result.replaced += replace_existing(poll, ids)
                    except Irreplaceable as refused:
                        for public_id, what in refused.blocked.items():
                            message = f"{public_id} cannot be replaced: {what} refer to it"
                            parser.error(rows.seen[public_id], "participant", message)
                if not parser.errors:
                    writer.store(chunk)
            if progress is not None:
                progress(read)
    except UnicodeDecodeError as error:
        parser.error(0, "", f"the file is not UTF-8 text: {error}")
    if parser.errors:
        raise ImportFailed(parser.errors, parser.more)
    result.participants, result.answers = writer.participants, writer.answers
    result.complete = writer.complete
    result.incomplete = writer.participants - writer.complete
    result.completion_given = rows.completion_given
    if dry_run:
        transaction.set_rollback(True)
    else:
        recompute(poll.pk)
    return result
