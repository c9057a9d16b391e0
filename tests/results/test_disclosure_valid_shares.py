"""Complementary suppression holds for the shares over substantive answers (``*_valid_*``).

A valid share times the wave's substantive answerers (n_t minus the missing shares) is a count,
so the attacks of test_disclosure are run again on those counts: margins subtracted across
cells, and a wave's substantive answerers minus the same cell's complete pairs (the transition
counts). The truth is the same poll computed with no suppression at all.
"""

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from results.compute.recompute import recompute_poll
from surveys.models import Answer, Participant, Poll
from tests.results.test_disclosure import (
    CATEGORIES,
    LONE_AT_T1,
    LONE_AT_T1_ANSWERS,
    Derived,
    Key,
    _put,
    build_poll,
    margins,
    oracle,
    outsiders,
    rows_by_cell,
    subtract,
    true_sizes,
)

pytestmark = pytest.mark.django_db
MISSING = ("dk", "refused", "skipped")


def valid_sizes(poll: Poll) -> dict[tuple[str, int], dict[Key, int]]:
    """(item, wave) -> cell -> participants with a substantive answer, from the answer rows."""
    people = {p.pk: p for p in Participant.objects.filter(poll=poll, completed_at__isnull=False)}
    leaning = dict(
        Answer.objects.filter(poll=poll, question__key="leaning").values_list(
            "participant_id", "value"
        )
    )
    out: dict[tuple[str, int], dict[Key, int]] = {}
    rows = Answer.objects.filter(poll=poll, question__key__startswith="rate_", missing="")
    for item, pk, wave in rows.values_list("question__key", "participant_id", "wave"):
        if pk not in people:
            continue
        person = people[pk]
        arm = person.arm or "unassigned"
        value = leaning.get(pk) or "(none)"
        keys = [(a, "", "") for a in {"all", arm}] + [(a, "leaning", value) for a in {"all", arm}]
        if person.arm:
            keys.append((arm, "group", "(none)" if person.group is None else str(person.group)))
        cells = out.setdefault((item, wave), {})
        for key in keys:
            cells[key] = cells.get(key, 0) + 1
    return out


def valid_counts(row: dict[str, Any], detail: dict[str, Any], wave: int) -> list[float] | None:
    """Oppose, neutral and support counts among the wave's substantive answers, or None."""
    n = detail.get(f"n_t{wave}")
    missing = [row.get(f"pct_{kind}_t{wave}") for kind in MISSING]
    shares = [row.get(f"pct_{c}_valid_t{wave}") for c in CATEGORIES]
    if n is None or None in missing or None in shares:
        return None
    n_valid = n * (100 - sum(missing)) / 100
    return [share * n_valid / 100 for share in shares]


def valid_outsiders(payload: dict[str, Any]) -> Derived:
    """(item, cell, wave) -> substantive answerers outside the pairs and their categories."""
    out: Derived = {}
    details = {
        (r["item"], r["arm"], r["subgroup"], r["subgroup_value"]): r
        for r in payload["item_details"]
        if not r["weighted"]
    }
    for row in payload["items"]:
        if row["weighted"]:
            continue
        cell = (row["item"], row["arm"], row["subgroup"], row["subgroup_value"])
        detail = details[cell]
        for wave in (1, 2):
            counts = valid_counts(row, detail, wave)
            if counts is None:
                continue
            pairs = [
                sum(
                    detail[f"transition_{a}_{b}" if wave == 1 else f"transition_{b}_{a}"]
                    for b in CATEGORIES
                )
                for a in CATEGORIES
            ]
            size = sum(counts) - row["n_pairs"]
            _put(out, (*cell, wave), size, *[c - p for c, p in zip(counts, pairs, strict=True)])
    return out


def valid_leaks(payload: dict[str, Any], full: dict[str, Any], poll: Poll) -> Iterator[str]:
    k = payload["meta"]["min_subgroup_size"]
    truth = valid_outsiders(full)
    for key, derived in valid_outsiders(payload).items():
        true = truth.get(key)
        if true is not None and 0 < true[0] < k and np.allclose(derived, true, atol=1e-4):
            yield f"{key}: substantive answerers minus pairs gives {true[0]:g} people: {derived}"
    sizes = valid_sizes(poll)
    pairs = true_sizes(poll)
    margin_list = margins(true_sizes(poll))
    for (item, wave), people in sizes.items():
        shown_rows = rows_by_cell(payload["items"], item, False)
        true_rows = rows_by_cell(full["items"], item, False)
        shown_details = rows_by_cell(payload["item_details"], item, False)
        true_details = rows_by_cell(full["item_details"], item, False)
        over_pairs = {
            key: people.get(key, 0) - pairs[(item, "n_pairs")].get(key, 0)
            for key, r in shown_rows.items()
            if r[f"population_t{wave}"] == "pairs"
        }
        for j, category in enumerate(CATEGORIES):
            yield from subtract(
                ("valid", item, wave, category),
                category_counts(shown_rows, shown_details, wave, j),
                category_counts(true_rows, true_details, wave, j),
                people,
                margin_list,
                k,
                over_pairs,
            )


def category_counts(
    rows: dict[Key, dict], details: dict[Key, dict], wave: int, j: int
) -> dict[Key, float | None]:
    """Cell -> substantive answers of category j at the wave (None where not shown)."""
    out: dict[Key, float | None] = {}
    for key, row in rows.items():
        values = valid_counts(row, details.get(key, {}), wave)
        out[key] = None if values is None else values[j]
    return out


# Six outside the pairs at T1 in the treatment arm (not a small group of answerers), but only
# two of them with a substantive T1 answer (the other four said don't know at T1): the
# substantive answerers outside the pairs are the small group.
MIXED: dict[str, Any] = {
    "sizes": {"left": 11, "right": 11},
    "dk_every": 0,
    "dk_t1": frozenset({0, 2, 4, 6}),
    "dont_know": frozenset({8, 10}),
}
SCENARIOS = [
    pytest.param({"sizes": LONE_AT_T1, **LONE_AT_T1_ANSWERS}, id="two-answer-at-t1-only"),
    pytest.param({"sizes": {"left": 11, "right": 2}}, id="two-answers-2-in-one"),
    pytest.param(
        {"sizes": {"left": 11, "right": 11}, "dk_every": 0, "dont_know": outsiders(2, "treatment")},
        id="2-dont-know-at-t2",
    ),
    pytest.param(
        {"sizes": {"left": 11, "right": 11}, "dk_every": 0, "dk_t1": outsiders(4, "both-arms")},
        id="4-dont-know-at-t1-both-arms",
    ),
    pytest.param(MIXED, id="4-dont-know-at-t1-and-2-at-t2"),
]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_substantive_share_reveals_a_withheld_group(scenario: dict[str, Any]) -> None:
    poll = build_poll(**scenario, seed=3)
    payload = recompute_poll(poll.pk).payload
    full = oracle(poll)
    assert list(valid_leaks(payload, full, poll)) == []
    # Shown rows keep their substantive shares (nothing blanked without need).
    whole = rows_by_cell(payload["items"], "rate_exit", False)[("all", "", "")]
    assert all(whole[f"pct_{c}_valid_t1"] is not None for c in CATEGORIES)


def test_the_attack_on_substantive_shares_is_real_without_suppression() -> None:
    """On unsuppressed tables the two substantive T1 answerers outside the pairs (MIXED) are
    found by the attack."""
    poll = build_poll(**MIXED, seed=3)
    full = oracle(poll)
    leaks = list(valid_leaks({**full, "meta": recompute_poll(poll.pk).payload["meta"]}, full, poll))
    assert leaks
