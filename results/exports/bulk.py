"""Writing checked import rows: PostgreSQL ``COPY FROM STDIN`` (psycopg 3 ``cursor.copy``) for
participants and answers, ``bulk_create`` on the embedded SQLite default.

COPY skips Django's model layer, so every column is written explicitly: the model's own defaults
(computed once per import from its fields) and the row's values over them. Participant ids come
from the table's own sequence first, so answers can name their participant without reading the
participants back.
"""

import json
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Model, ProtectedError
from django.db.models.deletion import Collector
from django.utils import timezone

from surveys.models import Answer, Participant, Poll

# (question id, wave, (value, number, missing kind))
DecodedAnswer = tuple[int, int, tuple[Any, float | None, str]]
# (participant id as given, participant fields, answers)
Row = tuple[str, dict[str, Any], list[DecodedAnswer]]


def _columns(model: type[Model], fixed: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """Every concrete column but the primary key, and its default value (``fixed`` over the
    model's defaults), ready for COPY: JSON as text, everything else as psycopg adapts it."""
    names, defaults = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        names.append(field.attname)
        value = fixed[field.attname] if field.attname in fixed else field.get_default()
        defaults.append(value)
    return names, defaults


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


class Writer:
    """Stores chunks of rows for one import; counts what it stored."""

    def __init__(self, poll: Poll) -> None:
        self.poll = poll
        self.now = timezone.now()
        self.participants = 0
        self.answers = 0
        self.complete = 0
        self.postgres = connection.vendor == "postgresql"
        self.person_columns, self.person_defaults = _columns(
            Participant,
            {
                "poll_id": poll.pk,
                "imported": True,
                "created_at": self.now,
                "updated_at": self.now,
                "token_hash": None,
                "return_token_hash": None,
                "entry_key": None,
            },
        )
        self.answer_columns, self.answer_base = _columns(
            Answer, {"poll_id": poll.pk, "answered_at": self.now}
        )
        self.answer_places = [
            self.answer_columns.index(name)
            for name in ("participant_id", "question_id", "wave", "value", "number", "missing")
        ]
        self.json_person = {
            f.attname
            for f in Participant._meta.concrete_fields
            if f.get_internal_type() == "JSONField"
        }

    def store(self, rows: list[Row]) -> None:
        fields = [self._participant(public_id, values) for public_id, values, _ in rows]
        if self.postgres:
            ids = self._copy_participants(fields)
        else:
            created = Participant.objects.bulk_create(
                [Participant(**dict(zip(self.person_columns, f, strict=True))) for f in fields]
            )
            ids = [p.pk for p in created]
        answers = (
            self._answer(person, question, wave, decoded)
            for person, (_, _, given) in zip(ids, rows, strict=True)
            for question, wave, decoded in given
        )
        if self.postgres:
            self.answers += self._copy("surveys_answer", self.answer_columns, answers)
        else:
            made = Answer.objects.bulk_create(
                (Answer(**dict(zip(self.answer_columns, a, strict=True))) for a in answers),
                batch_size=2000,
            )
            self.answers += len(made)
        self.participants += len(rows)

    def _participant(self, public_id: str, given: dict[str, Any]) -> list[Any]:
        values = dict(zip(self.person_columns, self.person_defaults, strict=True))
        values.update(given, public_id=public_id)
        if given.get("completed_at") is not None:
            values["step"] = Participant.Step.DONE
            self.complete += 1
        if self.postgres:
            for name in self.json_person:
                values[name] = _json(values[name])
        return [values[name] for name in self.person_columns]

    def _answer(
        self, participant: int, question: int, wave: int, decoded: tuple[Any, Any, str]
    ) -> list[Any]:
        # The hot loop of an import (one call per answer): a copy of the defaults with six
        # places set, no dict per answer.
        value, number, missing = decoded
        row = self.answer_base.copy()
        places = self.answer_places
        row[places[0]] = participant
        row[places[1]] = question
        row[places[2]] = wave
        if self.postgres:
            # JSON text; a whole number's text is its JSON, without a call to json.dumps.
            value = str(value) if type(value) is int else _json(value)
        row[places[3]] = value
        row[places[4]] = number
        row[places[5]] = missing
        return row

    def _copy_participants(self, rows: list[list[Any]]) -> list[int]:
        with connection.cursor() as cursor:
            # The ids first, from the column's own sequence, so answers can refer to them.
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('surveys_participant', 'id')) "
                "FROM generate_series(1, %s)",
                [len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
        self._copy(
            "surveys_participant",
            ["id", *self.person_columns],
            ([pk, *row] for pk, row in zip(ids, rows, strict=True)),
        )
        return ids

    @staticmethod
    def _copy(table: str, columns: list[str], rows: Iterable[list[Any]]) -> int:
        count = 0
        names = ", ".join(f'"{name}"' for name in columns)
        with connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg's own cursor: Django's wrapper has no copy()
            with raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        return count


class Irreplaceable(Exception):
    """Imported participants that other records protect from deletion (a live-room message
    names its author's seat): ``blocked`` maps each id to what refers to it."""

    def __init__(self, blocked: dict[str, str]) -> None:
        self.blocked = blocked
        super().__init__(", ".join(blocked))


def _what_protects(poll: Poll, public_id: str) -> str:
    """What keeps this participant from being deleted ("" when nothing does), found by Django's
    own deletion collector, which deletes nothing."""
    collector = Collector(using=connection.alias)
    try:
        people = Participant.objects.filter(poll=poll, public_id=public_id, imported=True)
        collector.collect(list(people))
    except ProtectedError as error:
        names = sorted({str(o._meta.verbose_name_plural) for o in error.protected_objects})
        return ", ".join(names)
    return ""


def replace_existing(poll: Poll, public_ids: list[str]) -> int:
    """Delete the poll's imported participants with these ids (and their answers) before they
    are stored again: one transaction with the import, so a failed import keeps them.

    Only imported participants are ever deleted: one who took part online (their answers, their
    live-room seat) is never replaced by a file; ``Rows.check_id`` refuses such ids before this
    runs. ``Irreplaceable`` if other records protect any of them."""
    deleted = 0
    for start in range(0, len(public_ids), 5000):
        batch = public_ids[start : start + 5000]
        people = Participant.objects.filter(poll=poll, public_id__in=batch, imported=True)
        Answer.objects.filter(participant_id__in=list(people.values_list("pk", flat=True))).delete()
        try:
            _, by_model = people.delete()
        except ProtectedError:
            # Raised by the collector before anything of this batch is deleted; the caller
            # fails the import, which rolls the answers above back too.
            found = {pid: _what_protects(poll, pid) for pid in batch}
            blocked = {pid: what for pid, what in found.items() if what}
            if not blocked:
                raise
            raise Irreplaceable(blocked) from None
        deleted += by_model.get(Participant._meta.label, 0)
    return deleted
