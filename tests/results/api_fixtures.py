"""Helpers of the research API tests: the small poll's definition, its simulated answers, a
sample results payload and a client with a bearer token. The fixtures built from them (``poll``,
``snapshot``, ``make_researcher``, ``researcher``, ``outsider``) are in ``conftest.py``."""

import random
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.test import APIClient

from surveys.models import Answer, Participant, Poll, Question
from tests.factories import small_definition, texts

FORMULAS = ['=HYPERLINK("x")', "@SUM(1)", "+1+1"]


def research_definition(slug: str = "small-poll") -> dict[str, Any]:
    """The small poll plus a free-text and a number item (where formulas and negatives live)."""
    definition = small_definition(slug=slug)
    definition["questions"] += [
        {
            "key": "comment",
            "kind": "text",
            "section": "evaluation",
            "waves": "t2",
            "required": False,
            "text": texts("Anything else?"),
        },
        {
            "key": "budget",
            "kind": "number",
            "section": "policy",
            "waves": "both",
            "text": texts("Change in aid budget, billions"),
            "number": {"min": -100, "max": 100},
        },
    ]
    return definition


def answer_value(question: Question, rng: random.Random, index: int, wave: int) -> Any:
    """(value, number, dont_know) as the participant journey stores them."""
    kind = question.kind
    if question.dont_know and rng.random() < 0.08:
        return None, None, True
    if kind == Question.Kind.RATING:
        value = rng.randint(question.scale_min, question.scale_max)
        return value, float(value), False
    if kind in (Question.Kind.SINGLE, Question.Kind.KNOWLEDGE):
        code = rng.randint(1, len(question.choices))
        return question.choice_keys()[code - 1], float(code), False
    if kind == Question.Kind.RANKING:
        keys = list(question.poll.options.order_by("order").values_list("key", flat=True))
        rng.shuffle(keys)
        return keys, None, False
    if kind == Question.Kind.NUMBER:
        value = float(rng.randint(-20, 20))
        return value, value, False
    text = FORMULAS[index % len(FORMULAS)] if index < len(FORMULAS) else f"comment {index}"
    return text, None, False


def fill_poll(poll: Poll, *, participants: int = 24, seed: int = 1) -> list[Participant]:
    rng = random.Random(seed)
    questions = list(poll.questions.select_related("poll"))
    people = []
    start = timezone.now() - timedelta(days=1)
    for index in range(participants):
        arm = "treatment" if index % 2 == 0 else "control"
        people.append(
            Participant(
                poll=poll,
                arm=arm,
                group=index % 3 if arm == "treatment" else None,
                position_order=["A", "B"] if index % 2 else ["B", "A"],
                option_order=["exit", "aid", "escalate"],
                weight=1.0 + (index % 3) / 10,
                label=f"secret label {index}",
                contact=f"person{index}@example.org",
                token_hash=f"{index:064x}",
                consented_at=start,
                completed_at=start + timedelta(minutes=20) if index % 7 else None,
                step_times={"t1": 120.0, "t2": 90.5},
                position_seconds={"A": 30.0, "B": 41.0},
                flags=["too_fast"] if index == 3 else [],
            )
        )
    Participant.objects.bulk_create(people)
    answers = []
    for index, person in enumerate(people):
        for question in questions:
            for wave in (1, 2):
                if not question.in_wave(wave):
                    continue
                value, number, dk = answer_value(question, rng, index, wave)
                answers.append(
                    Answer(
                        poll=poll,
                        participant=person,
                        question=question,
                        wave=wave,
                        value=value,
                        number=number,
                        missing="dont_know" if dk else "",
                    )
                )
    Answer.objects.bulk_create(answers)
    return people


def sample_payload() -> dict[str, Any]:
    item = {
        "item": "rate_exit",
        "arm": "all",
        "subgroup": "",
        "subgroup_value": "",
        "weighted": False,
        "n_pairs": 20,
        "mean_t1": 5.5,
        "mean_t2": 4.25,
        "mean_diff": -1.25,
        "ci_low": -2.0,
        "ci_high": -0.5,
        "t": -3.1,
        "p_t": 0.004,
        "p_wilcoxon": 0.01,
        "d_z": -0.61,
        "p_holm": 0.012,
        "p_bh": 0.008,
        **{f"pct_{c}_t{w}": 25.0 for c in ("oppose", "neutral", "support", "dk") for w in (1, 2)},
        "var_t1": 6.1,
        "var_t2": 4.2,
        "agreement_t1": 0.2,
        "agreement_t2": 0.35,
        "consensus_t1": 0.6,
        "consensus_t2": 0.7,
        "population_t1": "answered",
        "population_t2": "answered",
    }
    knowledge = {
        "item": "k_capital",
        "arm": "all",
        "subgroup": "",
        "subgroup_value": "",
        "weighted": False,
        "n_items": 1,
        "n_t1": 20,
        "n_t2": 20,
        "population_t1": "answered",
        "population_t2": "answered",
        "n_pairs": 20,
        "mean_t1": 0.6,
        "mean_t2": 0.8,
        "mean_diff": 0.2,
        "ci_low": 0.05,
        "ci_high": 0.35,
        "t": 2.8,
        "p_t": 0.011,
        "d_z": 0.6,
        "pct_correct_t1": 60.0,
        "pct_correct_t2": 80.0,
    }
    return {
        "items": [item, {**item, "item": "rate_aid", "mean_diff": 0.5, "arm": "treatment"}],
        "did": [],
        "gaps": [
            {
                "item": "rate_exit",
                "subgroup": "leaning",
                "value_a": "left",
                "value_b": "right",
                "gap_t1": 2.0,
                "gap_t2": 1.0,
                "gap_change": -1.0,
                "p_welch": 0.2,
            }
        ],
        "knowledge": [knowledge],
        "options": {"borda": [{"option": "exit", "borda_t1": 10, "borda_t2": 12}], "tau": 0.4},
        "small_groups": [],
        "meta": {"n": 24},
    }


def bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client
