"""Bulk loading of a poll's answers into numpy: the input of every results computation.

Answers are read in bulk, never as model instances. On PostgreSQL one ``COPY (SELECT ...) TO
STDOUT (FORMAT binary)`` streams every numeric answer of the poll as fixed-width rows that
``numpy.frombuffer`` decodes without a Python loop; elsewhere (the embedded SQLite default)
``values_list().iterator()`` does the same job more slowly. Rankings, the only answers that need
their JSON, are read separately for the few ranking questions.

Who enters the results: participants who completed the poll (``completed_at`` set, imported
participants included when their import marks them completed). Answers of participants still in
progress can change until they finish, and their arm is final only then; they enter with the
recompute their completion triggers. Paired measures use complete pairs (a substantive answer at
both waves); the distributions count everyone who answered that wave, don't know, refused and
skipped included (results.tables.MISSING_KINDS_RULE).
"""

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Func, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Greatest

from results.stats import MISSING_CODES
from surveys.definition.spec import QuestionSpec, build_spec
from surveys.models import Answer, Participant, Poll, Question

# Numeric answers come as (participant, question, wave, number, missing): NaN where no number
# was stored, and the answer's missing kind as a small integer (0 none, then the codes of
# results.stats.MISSING_KINDS: 1 don't know, 2 refused, 3 skipped, 4 not asked), as PollData
# and results.stats hold it (NaN and a kind array) all the way to the payload. Five fixed-width
# fields: every row of the binary COPY has the same width, so numpy decodes the stream without
# a loop.
_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_p", ">i4"),
        ("participant", ">i4"),
        ("len_q", ">i4"),
        ("question", ">i4"),
        ("len_w", ">i4"),
        ("wave", ">i4"),
        ("len_n", ">i4"),
        ("number", ">f8"),
        ("len_missing", ">i4"),
        ("missing", ">i2"),
    ]
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"
_COPY_TRAILER = b"\xff\xff"
NUMERIC_SQL = (
    "SELECT participant_id::int4, question_id::int4, wave::int4, "
    "COALESCE(number, 'NaN'::float8), "
    "(CASE missing "
    + " ".join(f"WHEN '{kind}' THEN {code}" for kind, code in MISSING_CODES.items())
    + " ELSE 0 END)::int2 "
    "FROM surveys_answer WHERE poll_id = {poll_id}"
)
# The rows of both readers (COPY and values_list): what ``arrange`` scatters into PollData.
ANSWER_ROW = np.dtype(
    [
        ("participant", "i8"),
        ("question", "i8"),
        ("wave", "i4"),
        ("number", "f8"),
        ("missing", "i1"),
    ]
)
ARM_CODES = {"": 0, "treatment": 1, "control": 2}


@dataclass
class PollData:
    """A poll's answers as dense arrays: ``values[q, w, i]`` is participant i's answer to
    question q at wave w+1 (NaN when missing, whatever the kind), ``dont_know[q, w, i]`` flags
    don't know, ``missing[q, w, i]`` holds the missing kind (0 none, else a code of
    results.stats.MISSING_CODES; without it, don't know is the only kind), ``answered[q, w, i]``
    flags an answer put to the participant (any stored answer but "not asked"). Participants
    are sorted by id."""

    poll_id: int
    min_subgroup_size: int
    questions: list[QuestionSpec]
    option_axis: dict[str, int]
    participant_ids: np.ndarray
    arm: np.ndarray
    group: np.ndarray
    weight: np.ndarray
    values: np.ndarray
    dont_know: np.ndarray
    answered: np.ndarray
    rankings: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    data_as_of: datetime | None = None
    n_answers: int = 0
    missing: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))

    def __post_init__(self) -> None:
        if self.missing.shape != self.dont_know.shape:
            # Arrays made by hand (tests, benchmarks) know don't know only.
            self.missing = self.dont_know.astype(np.int8) * MISSING_CODES["dont_know"]

    def index(self, key: str) -> int:
        for position, question in enumerate(self.questions):
            if question.key == key:
                return position
        raise KeyError(key)

    @property
    def n(self) -> int:
        return int(self.participant_ids.size)

    @property
    def has_weights(self) -> bool:
        return bool(np.isfinite(self.weight).any())

    def fingerprint(self) -> str:
        """SHA-256 of everything the results depend on, independent of storage row order."""
        digest = hashlib.sha256()
        definition = [
            [
                q.key,
                q.kind,
                q.waves,
                q.scale_min,
                q.scale_max,
                q.choice_keys(),
                q.option,
                q.breakdown,
                q.correct,
                q.family,
                list(q.bins),
            ]
            for q in self.questions
        ]
        digest.update(json.dumps([definition, self.option_axis], sort_keys=True).encode())
        for array in (self.participant_ids, self.arm, self.group, self.weight):
            digest.update(np.ascontiguousarray(array).tobytes())
        for array in (self.values, self.dont_know, self.missing, self.answered):
            digest.update(np.ascontiguousarray(array).tobytes())
        for key in sorted(self.rankings):
            digest.update(repr(key).encode())
            digest.update(np.ascontiguousarray(self.rankings[key]).tobytes())
        return digest.hexdigest()


def load_questions(poll_id: int) -> tuple[list[QuestionSpec], dict[str, int]]:
    """The poll's questions in their one shape (built afresh: a recompute must not read a
    cached definition) and each option's place on the axis."""
    poll = Poll.objects.get(pk=poll_id)
    axis = dict(poll.options.order_by("axis").values_list("key", "axis"))
    return list(build_spec(poll).questions), axis


def load_participants(poll_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ids, arm codes (0 none, 1 treatment, 2 control), group (-1 none), weight (NaN none)."""
    rows = list(
        Participant.objects.filter(poll_id=poll_id)
        .completed()
        .order_by("id")
        .values_list("id", "arm", "group", "weight")
        .iterator(chunk_size=20_000)
    )
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    arm = np.fromiter((ARM_CODES.get(row[1], 0) for row in rows), dtype=np.int8, count=len(rows))
    group = np.array([-1 if row[2] is None else row[2] for row in rows], dtype=np.int64)
    weight = np.array([row[3] for row in rows], dtype=np.float64)  # None becomes NaN
    return ids, arm, group, weight


def _copy_header_size(view: memoryview) -> int:
    header_size = len(_COPY_HEADER) + 8
    if bytes(view[: len(_COPY_HEADER)]) != _COPY_HEADER:
        raise ValueError("not a PostgreSQL binary COPY stream")
    return header_size + int.from_bytes(view[header_size - 4 : header_size], "big")


def _checked_rows(view: memoryview | bytes) -> np.ndarray:
    rows = np.frombuffer(view, dtype=_ROW)
    if rows.size and (rows["nfields"] != 5).any():
        raise ValueError("binary COPY rows do not have five fields")
    return rows


# Rows decoded and placed at a time: the stream is never held whole, so a recompute's memory is
# its arrays plus one block (at 6 million rows the whole stream and its decoded columns took
# about 700 MB more).
COPY_BLOCK_ROWS = 500_000


def copy_numeric_blocks(poll_id: int, block_rows: int = COPY_BLOCK_ROWS) -> Iterator[np.ndarray]:
    """The binary COPY of a poll's numeric answers, decoded block by block (PostgreSQL only)."""
    sql = f"COPY ({NUMERIC_SQL.format(poll_id=int(poll_id))}) TO STDOUT (FORMAT binary)"
    pending = bytearray()
    limit = block_rows * _ROW.itemsize
    started = False  # the stream's header is behind us
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        # psycopg hands over one row per chunk, six million at 100,000 participants: the loop
        # only appends (a chunk kept instead of copied at once made the read five times
        # slower) and looks at the length.
        for chunk in copy:
            pending += chunk
            if len(pending) >= limit:
                if not started:
                    del pending[: _copy_header_size(memoryview(pending))]
                    started = True
                whole = len(pending) - len(pending) % _ROW.itemsize
                yield _checked_rows(bytes(pending[:whole]))
                del pending[:whole]
    if not started and len(pending) >= len(_COPY_HEADER) + 8:
        del pending[: _copy_header_size(memoryview(pending))]
        started = True
    # What is left is rows and the trailer, which is shorter than a row.
    if not started or pending[-len(_COPY_TRAILER) :] != _COPY_TRAILER:
        raise ValueError("binary COPY stream ended without its trailer")
    del pending[-len(_COPY_TRAILER) :]
    if len(pending) % _ROW.itemsize:
        raise ValueError("binary COPY rows are not the expected fixed width")
    if pending:
        yield _checked_rows(bytes(pending))


def copy_numeric_answers(poll_id: int) -> np.ndarray:
    """The raw binary COPY of a poll's numeric answers, decoded (PostgreSQL only)."""
    blocks = list(copy_numeric_blocks(poll_id))
    return np.concatenate(blocks) if blocks else np.empty(0, dtype=_ROW)


def iterate_numeric_answers(poll_id: int) -> np.ndarray:
    """The same rows as copy_numeric_answers through values_list (any database)."""
    rows = list(
        Answer.objects.filter(poll_id=poll_id)
        .values_list("participant_id", "question_id", "wave", "number", "missing")
        .iterator(chunk_size=50_000)
    )
    out = np.empty(len(rows), dtype=ANSWER_ROW)
    if rows:
        participant, question, wave, number, missing = zip(*rows, strict=True)
        out["participant"] = participant
        out["question"] = question
        out["wave"] = wave
        out["number"] = np.array(number, dtype=np.float64)  # None becomes NaN
        out["missing"] = [MISSING_CODES.get(kind, 0) for kind in missing]
    return out


def numeric_answer_blocks(poll_id: int) -> Iterator[np.ndarray]:
    """A poll's numeric answers in blocks: COPY on PostgreSQL, values_list elsewhere."""
    if connection.vendor == "postgresql":
        yield from copy_numeric_blocks(poll_id)
    else:
        yield iterate_numeric_answers(poll_id)


def load_rankings(
    poll_id: int,
    questions: list[QuestionSpec],
    participant_ids: np.ndarray,
    option_keys: list[str],
) -> dict[tuple[int, int], np.ndarray]:
    """Per (question index, wave): rank of each option for each participant, 1 = best, NaN when
    the participant did not rank (or did not place) that option."""
    ranking = {q.id: i for i, q in enumerate(questions) if q.kind == Question.Kind.RANKING}
    out: dict[tuple[int, int], np.ndarray] = {}
    if not ranking:
        return out
    column = {key: j for j, key in enumerate(option_keys)}
    for q_index in ranking.values():
        for wave in (1, 2):
            out[(q_index, wave)] = np.full((participant_ids.size, len(option_keys)), np.nan)
    rows = (
        Answer.objects.filter(poll_id=poll_id, question_id__in=list(ranking))
        .values_list("participant_id", "question_id", "wave", "value")
        .iterator(chunk_size=20_000)
    )
    for participant_id, question_id, wave, value in rows:
        position = np.searchsorted(participant_ids, participant_id)
        if position >= participant_ids.size or participant_ids[position] != participant_id:
            continue
        if not isinstance(value, list):
            continue
        target = out[(ranking[question_id], wave)][position]
        for rank, key in enumerate(value, 1):
            if key in column:
                target[column[key]] = rank
    return out


def results_data_changed_at() -> Func:
    """When the data that enters a poll's results last changed, as an annotation on Poll: the
    newest answer or completion of a participant who completed the poll.

    The snapshot's ``data_as_of`` and the reconciler's staleness test both use this, so a
    snapshot is current exactly when nothing it would include has changed since. Answers of
    participants still in progress are left out as they are left out of the results: counting
    them made a poll with one participant who left mid-questionnaire stale for ever.
    """
    completed = Q(participant__completed_at__isnull=False)
    newest_answer = (
        Answer.objects.filter(completed, poll=OuterRef("pk"))
        .order_by("-answered_at")
        .values("answered_at")[:1]
    )
    newest_completion = (
        Participant.objects.filter(poll=OuterRef("pk"), completed_at__isnull=False)
        .order_by("-completed_at")
        .values("completed_at")[:1]
    )
    # A completion is stamped a moment before its last answers are saved, so the newest of the
    # two. Coalesce: SQLite's GREATEST is NULL when any argument is (a completed participant
    # without answers), PostgreSQL's ignores NULLs.
    completion = Subquery(newest_completion)
    return Greatest(Coalesce(Subquery(newest_answer), completion), completion)


def load_poll_data(
    poll_id: int, *, progress: Callable[[float, str], None] | None = None
) -> PollData:
    """Everything results.stats needs about a poll, read in bulk; call inside one transaction
    (repeatable read on PostgreSQL) so participants and answers are one consistent snapshot."""
    poll = Poll.objects.values("min_subgroup_size").get(pk=poll_id)
    questions, option_axis = load_questions(poll_id)
    data_as_of = (
        Poll.objects.filter(pk=poll_id)
        .annotate(changed=results_data_changed_at())
        .values_list("changed", flat=True)
        .get()
    )
    ids, arm, group, weight = load_participants(poll_id)
    if progress:
        progress(0.15, f"reading answers of {ids.size} participants")
    values, missing, answered = empty_answers(len(questions), ids.size)
    n_answers = 0
    for rows in numeric_answer_blocks(poll_id):
        place_answers(rows, ids, questions, values, missing, answered)
        n_answers += rows.size
    if progress:
        progress(0.4, f"{n_answers} answers read")
    option_keys = list(option_axis)
    rankings = load_rankings(poll_id, questions, ids, option_keys)
    return PollData(
        poll_id=poll_id,
        min_subgroup_size=poll["min_subgroup_size"],
        questions=questions,
        option_axis=option_axis,
        participant_ids=ids,
        arm=arm,
        group=group,
        weight=weight,
        values=values,
        dont_know=missing == MISSING_CODES["dont_know"],
        answered=answered,
        rankings=rankings,
        data_as_of=data_as_of,
        n_answers=n_answers,
        missing=missing,
    )


def positions(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The index in ``ids`` (distinct, any order) of each key, -1 for a key not among them.

    A poll's participant ids are a stretch of one sequence shared by all polls, so a table
    indexed by id (one slot per id between the smallest and the largest) finds 6 million
    keys faster than a binary search (placing them took 0.7 s instead of 1.2 s at 100,000
    participants, one run); ids spread too thinly for a small table are searched.
    """
    out = np.full(keys.size, -1, dtype=np.int64)
    if not ids.size or not keys.size:
        return out
    low, high = int(ids.min()), int(ids.max())
    span = high - low + 1
    if span <= 16 * ids.size + (1 << 16):
        # Slot 0 and the last slot stand for every key below and above the ids.
        table = np.full(span + 2, -1, dtype=np.int32)
        table[ids - low + 1] = np.arange(ids.size, dtype=np.int32)
        return table[np.clip(keys - low + 1, 0, span + 1)].astype(np.int64)
    order = np.argsort(ids)
    found = np.minimum(np.searchsorted(ids[order], keys), ids.size - 1)
    hit = ids[order][found] == keys
    out[hit] = order[found[hit]]
    return out


def empty_answers(n_questions: int, n_participants: int) -> tuple[np.ndarray, ...]:
    """(values, missing, answered) before any answer: NaN, no kind, not answered."""
    shape = (n_questions, 2, n_participants)
    return np.full(shape, np.nan), np.zeros(shape, dtype=np.int8), np.zeros(shape, dtype=bool)


def arrange_answers(
    rows: np.ndarray, participant_ids: np.ndarray, questions: list[QuestionSpec]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scatter long rows into dense (question, wave, participant) arrays, vectorised: the
    values (NaN for any missing kind), the missing kinds and whether the answer was asked."""
    values, missing, answered = empty_answers(len(questions), participant_ids.size)
    place_answers(rows, participant_ids, questions, values, missing, answered)
    return values, missing, answered


def place_answers(
    rows: np.ndarray,
    participant_ids: np.ndarray,
    questions: list[QuestionSpec],
    values: np.ndarray,
    missing: np.ndarray,
    answered: np.ndarray,
) -> None:
    """Write long rows into the dense arrays ``empty_answers`` made. Rows of participants
    outside the analysed population, of questions the poll no longer has and of invalid waves
    are dropped."""
    n_p = participant_ids.size
    if not rows.size or not questions or not n_p:
        return
    question_ids = np.array([q.id for q in questions], dtype=np.int64)
    p_pos = positions(rows["participant"].astype(np.int64), participant_ids)
    q_idx = positions(rows["question"].astype(np.int64), question_ids)
    wave = rows["wave"].astype(np.int64) - 1
    kind = rows["missing"].astype(np.int8)
    number = rows["number"].astype(np.float64)
    keep = (p_pos >= 0) & (q_idx >= 0) & (wave >= 0) & (wave <= 1)
    if not keep.all():
        p_pos, q_idx, wave, kind, number = (a[keep] for a in (p_pos, q_idx, wave, kind, number))
    # One flat index into the (question, wave, participant) arrays serves all three.
    flat = (q_idx * 2 + wave) * n_p + p_pos
    values.reshape(-1)[flat] = np.where(kind > 0, np.nan, number)
    missing.reshape(-1)[flat] = kind
    # A "not asked" row records why there is no answer; it is no answer to anyone counting.
    answered.reshape(-1)[flat] = kind != MISSING_CODES["not_asked"]


def arrange(
    rows: np.ndarray, participant_ids: np.ndarray, questions: list[QuestionSpec]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``arrange_answers`` with don't know as a flag (values, dont_know, answered)."""
    values, missing, answered = arrange_answers(rows, participant_ids, questions)
    return values, missing == MISSING_CODES["dont_know"], answered


def as_json_number(value: Any) -> Any:
    """JSON scalar for a numpy or Python value; NaN and infinities become null."""
    if value is None:
        return None
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        number = float(value)
        return number if np.isfinite(number) else None
    return value


def json_row(values: dict[str, Any], columns: Iterable[str]) -> dict[str, Any]:
    """A payload row: exactly ``columns``, in order, each a JSON scalar (missing ones null)."""
    return {column: as_json_number(values.get(column)) for column in columns}
