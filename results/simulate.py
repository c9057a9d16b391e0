"""Simulated participants for tests, demos and the benchmark (never for real polls' results).

A latent position on the poll's axis drives plausible answers: ratings fall with the distance
between a participant's position and each option, rankings follow the ratings, knowledge is
right more often at T2 in the treatment arm, and the treatment arm moves towards the centre and
towards consensus. Rows are written in bulk: ``bulk_create`` for small polls, PostgreSQL ``COPY``
for the benchmark's millions of answers.
"""

import json
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from surveys.definition.spec import build_spec
from surveys.models import Answer, Participant, Poll, Question


@dataclass(frozen=True)
class Simulated:
    participants: int
    answers: int


def _ratings(
    position: np.ndarray, axis: np.ndarray, low: int, high: int, rng: np.random.Generator
) -> np.ndarray:
    span = high - low
    distance = np.abs(position[:, None] - axis[None, :])
    raw = high - distance * span / 6 * 1.1
    raw = raw + rng.normal(0, span * 0.12, raw.shape)
    return np.clip(np.rint(raw), low, high)


def _consideration(
    position: np.ndarray,
    place: float,
    low: int,
    high: int,
    rng: np.random.Generator | None,
) -> np.ndarray:
    """Ratings of a statement of the considerations battery. A statement argues for a place on
    the options' axis (the statements take the options' places in turn), and agreement falls
    with the distance to it as an option's rating does, so reasons and preferences share one
    structure; noise as for ratings (none without ``rng``)."""
    if rng is not None:
        return _ratings(position, np.array([place]), low, high, rng)[:, 0]
    span = high - low
    return np.clip(np.rint(high - np.abs(position - place) * span / 6 * 1.1), low, high)


def simulate_answers(
    poll: Poll,
    n: int,
    *,
    seed: int = 0,
    weights: bool = False,
    dk_share: float = 0.03,
    group_size: int | None = None,
) -> tuple[list[Participant], list[tuple[int, int, int, object, float | None, bool]]]:
    """Unsaved participants and answer tuples (participant index, question id, wave, value,
    number, dont_know) for ``n`` simulated participants who completed ``poll``."""
    rng = np.random.default_rng(seed)
    questions = list(poll.questions.select_related("option"))
    options = list(poll.options.order_by("axis"))
    axis_values = np.array([o.axis for o in options], dtype=float)
    axis_min, axis_max = (axis_values.min(), axis_values.max()) if options else (1.0, 1.0)
    control = rng.random(n) < poll.control_share
    position = {1: rng.normal((axis_min + axis_max) / 2, (axis_max - axis_min) / 3 + 0.5, n)}
    treated = ~control
    centre = (axis_min + axis_max) / 2
    position[2] = position[1] + treated * (centre - position[1]) * 0.35 + rng.normal(0, 0.3, n)
    now = timezone.now()
    participants = []
    counters = {"treatment": 0, "control": 0}
    for i in range(n):
        arm = "control" if control[i] else "treatment"
        group = counters[arm] // (group_size or poll.group_size) + 1
        counters[arm] += 1
        participants.append(
            Participant(
                poll=poll,
                arm=arm,
                group=group,
                weight=float(np.round(rng.uniform(0.5, 2.0), 3)) if weights else None,
                consented_at=now - timedelta(hours=2),
                briefed_at=now - timedelta(hours=1),
                completed_at=now,
                step=Participant.Step.DONE,
            )
        )
    spec = build_spec(poll)
    rows: list[tuple[int, int, int, object, float | None, bool]] = []
    ratings_by_option: dict[tuple[str, int], np.ndarray] = {}
    for question in questions:
        for wave in (1, 2):
            if not question.in_wave(wave):
                continue
            dk = rng.random(n) < (dk_share if question.dont_know else 0)
            if question.kind == Question.Kind.RATING:
                low, high = question.scale_min, question.scale_max
                if question.option_id:
                    axis = np.array([float(question.option.axis)])
                    values = _ratings(position[wave], axis, low, high, rng)[:, 0]
                    ratings_by_option[(question.option.key, wave)] = values
                elif question.family.strip().casefold() == "considerations":
                    place = float(axis_values[question.order % len(axis_values)])
                    values = _consideration(position[wave], place, low, high, rng)
                    if wave == 2:
                        # Deliberation makes reasons hang together with preferences: a
                        # quarter of the noise in the treatment arm's T2 ratings.
                        exact = _consideration(position[wave], place, low, high, None)
                        values = np.where(treated, np.rint((values + 3 * exact) / 4), values)
                else:
                    values = np.clip(np.rint(rng.normal((low + high) * 0.6, 2, n)), low, high)
                rows.extend(
                    (
                        i,
                        question.id,
                        wave,
                        None if dk[i] else int(values[i]),
                        None if dk[i] else float(values[i]),
                        bool(dk[i]),
                    )
                    for i in range(n)
                )
            elif question.kind in (Question.Kind.KNOWLEDGE, Question.Kind.SINGLE):
                keys = question.choice_keys()
                code_of = spec.by_key[question.key].choice_codes()
                if question.kind == Question.Kind.KNOWLEDGE:
                    p_right = 0.45 + 0.25 * (wave == 2) * treated
                    right = rng.random(n) < p_right
                    wrong = rng.integers(0, len(keys), n)
                    codes = np.where(right, keys.index(question.answer), wrong)
                else:
                    # Background answers lean with the participant's position.
                    scaled = (position[1] - axis_min) / max(axis_max - axis_min, 1)
                    codes = np.clip(
                        np.rint(scaled * (len(keys) - 1) + rng.normal(0, 0.8, n)), 0, len(keys) - 1
                    ).astype(int)
                    dk[:] = False
                rows.extend(
                    (
                        i,
                        question.id,
                        wave,
                        None if dk[i] else keys[codes[i]],
                        None if dk[i] else float(code_of[keys[codes[i]]]),
                        bool(dk[i]),
                    )
                    for i in range(n)
                )
    for question in questions:
        if question.kind != Question.Kind.RANKING:
            continue
        for wave in (1, 2):
            if not question.in_wave(wave):
                continue
            # Rankings follow the latent distance to each option, so most are single-peaked.
            distance = np.abs(position[wave][:, None] - axis_values[None, :])
            matrix = -distance + rng.normal(0, 0.35, distance.shape)
            order = np.argsort(-matrix, axis=1)
            keys = [o.key for o in options]
            rows.extend(
                (i, question.id, wave, [keys[j] for j in order[i]], None, False) for i in range(n)
            )
    return participants, rows


def add_simulated_participants(
    *, poll: Poll, n: int, seed: int = 0, weights: bool = False, group_size: int | None = None
) -> Simulated:
    """Create ``n`` completed simulated participants with all their answers (bulk_create)."""
    participants, rows = simulate_answers(
        poll, n, seed=seed, weights=weights, group_size=group_size
    )
    with transaction.atomic():
        created = Participant.objects.bulk_create(participants, batch_size=2000)
        answers = [
            Answer(
                poll=poll,
                participant_id=created[i].pk,
                question_id=question_id,
                wave=wave,
                value=value,
                number=number,
                missing=Answer.Missing.DONT_KNOW if dont_know else "",
            )
            for i, question_id, wave, value, number, dont_know in rows
        ]
        Answer.objects.bulk_create(answers, batch_size=5000)
    return Simulated(participants=len(created), answers=len(answers))


def copy_answers(*, poll: Poll, participant_ids: list[int], rows: list[tuple]) -> int:
    """Write answer tuples with PostgreSQL COPY (the benchmark's millions of rows)."""
    now = timezone.now()
    columns = "(poll_id, participant_id, question_id, wave, value, number, missing, answered_at)"
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY surveys_answer {columns} FROM STDIN") as copy,
    ):
        for i, question_id, wave, value, number, dont_know in rows:
            copy.write_row(
                (
                    poll.pk,
                    participant_ids[i],
                    question_id,
                    wave,
                    None if value is None else json.dumps(value),
                    number,
                    Answer.Missing.DONT_KNOW.value if dont_know else "",
                    now,
                )
            )
    return len(rows)
