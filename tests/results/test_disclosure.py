"""Complementary suppression, attacked: polls with 1, 2 and 4 participants in a breakdown answer
(two and three answers, arms, small groups, weights, don't knows), then every subtraction of
published rows across every margin (whole minus the other answers, "all" minus an arm, an arm
minus its small groups) on every additive column, checked against the same poll computed with
no suppression at all (minimum 1), which is what an attacker would be recovering.

The attack needs nothing but the payload: it uses none of the suppression code.
"""

import io
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse
from django.utils import timezone

from results.compute.loading import load_poll_data
from results.compute.recompute import build_payload, recompute_poll
from surveys.models import Answer, Participant, Poll
from tests.factories import leaning_question, make_poll, small_definition
from tests.results.api_fixtures import bearer

pytestmark = pytest.mark.django_db

K = 5
ARMS = ("treatment", "control")
Key = tuple[str, str, str]


def build_poll(
    *,
    sizes: dict[str, int],
    missing: int = 0,
    unassigned: int = 0,
    weighted: bool = False,
    seed: int = 0,
    slug: str = "leaky",
    dont_know: frozenset[int] = frozenset(),
    skipped: frozenset[int] = frozenset(),
    dk_every: int = 4,
    dk_t1: frozenset[int] = frozenset(),
) -> Poll:
    """Participants per leaning answer (``None``: no answer), alternating arms (even index:
    treatment), two small groups in the treatment arm; on rate_exit every ``dk_every``-th
    and ``dont_know`` say don't know at T2, ``dk_t1`` at T1, ``skipped`` skip T1, so the
    waves' counts differ from the complete pairs."""
    definition = small_definition(slug=slug)
    questions = [
        leaning_question(list(sizes)) if q["key"] == "leaning" else q
        for q in definition["questions"]
    ]
    design = {**definition["design"], "min_subgroup_size": K}
    poll = make_poll(slug=slug, questions=questions, design=design)
    rng = random.Random(seed)
    answers_of: list[str | None] = [c for c, n in sizes.items() for _ in range(n)]
    answers_of += [None] * missing
    start = timezone.now() - timedelta(days=1)
    people = []
    for index, answer in enumerate(answers_of + ["_unassigned"] * unassigned):
        arm = "" if answer == "_unassigned" else ARMS[index % 2]
        people.append(
            Participant(
                poll=poll,
                arm=arm,
                group=(index // 2) % 2 if arm == "treatment" else None,
                position_order=["A", "B"],
                option_order=["exit", "aid", "escalate"],
                weight=(0.5 + (index % 4) / 4) if weighted else None,
                token_hash=f"{poll.pk:08x}{index:056x}",
                consented_at=start,
                completed_at=start + timedelta(minutes=20),
            )
        )
    Participant.objects.bulk_create(people)
    questions = {q.key: q for q in poll.questions.all()}
    options = ["exit", "aid", "escalate"]
    rows = []
    for index, (person, answer) in enumerate(
        zip(people, answers_of + [None] * unassigned, strict=True)
    ):
        for wave in (1, 2):
            for key in ("rate_exit", "rate_aid", "rate_escalate"):
                # Every fourth participant (and those in dont_know) says don't know to one
                # item at T2 only.
                every = bool(dk_every) and index % max(dk_every, 1) == 1
                at_t2 = wave == 2 and (every or index in dont_know)
                dk = key == "rate_exit" and (at_t2 or (wave == 1 and index in dk_t1))
                if wave == 1 and key == "rate_exit" and index in skipped:
                    continue  # no answer at all (an optional item, an import)
                value = None if dk else rng.randint(0, 10)
                rows.append((person, questions[key], wave, value, value, dk))
            kyiv = rng.random() < (0.5 if wave == 1 else 0.8)
            code = 1 if kyiv else 2
            rows.append(
                (person, questions["k_capital"], wave, "kyiv" if kyiv else "lviv", code, False)
            )
            rows.append((person, questions["rank"], wave, rng.sample(options, 3), None, False))
            rows.append((person, questions["balanced"], 2, 5, 5.0, False)) if wave == 2 else None
        if answer is not None:
            code = list(sizes).index(answer) + 1
            rows.append((person, questions["leaning"], 1, answer, float(code), False))
    Answer.objects.bulk_create(
        [
            Answer(
                poll=poll,
                participant=p,
                question=q,
                wave=w,
                value=v,
                number=None if n is None else float(n),
                missing="dont_know" if dk else "",
            )
            for p, q, w, v, n, dk in rows
        ]
    )
    return poll


def oracle(poll: Poll) -> dict[str, Any]:
    """The same poll's tables with nothing suppressed: what an attacker tries to recover."""
    return build_payload(replace(load_poll_data(poll.pk), min_subgroup_size=1))


# -- the margins an attacker subtracts across ------------------------------------------------


def margins(sizes: dict[tuple[str, str], dict[Key, int]]) -> list[tuple[Key, list[Key]]]:
    """(total, parts): "all" = treatment + control + unassigned (never a row), an arm = its
    breakdown answers + those without one (never a row), an arm = its small groups + those
    in none. The cells are every participant's, so hidden ones are included."""
    keys = {key for cells in sizes.values() for key in cells}
    out: list[tuple[Key, list[Key]]] = [
        (("all", "", ""), [(a, "", "") for a in (*ARMS, "unassigned")])
    ]
    values = sorted({k[2] for k in keys if k[1] == "leaning"} - {"(none)"})
    for arm in ("all", *ARMS):
        out.append(((arm, "", ""), [(arm, "leaning", v) for v in [*values, "(none)"]]))
    for value in [*values, "(none)"]:
        parts = [(a, "leaning", value) for a in (*ARMS, "unassigned")]
        out.append((("all", "leaning", value), parts))
    for arm in ARMS:
        groups = sorted({k[2] for k in keys if k[0] == arm and k[1] == "group"} - {"(none)"})
        if groups:
            out.append(((arm, "", ""), [(arm, "group", g) for g in [*groups, "(none)"]]))
    return out


def additive(table: str, row: dict[str, Any], column: str, sizes: dict[str, Any]) -> float | None:
    """A column as a sum over the cell's people (mean x n, share x n), None if not shown."""
    value = row.get(column)
    if value is None:
        return None
    if column.startswith("n_"):
        return float(value)
    if column.startswith("pct_"):
        n = sizes.get(f"n_t{column[-1]}")
        return None if n is None else value * n / 100
    return value * row["n_pairs"]


ADDITIVE = {
    "items": ["n_pairs", "mean_t1", "mean_t2", "mean_diff"]
    + [f"pct_{c}_t{w}" for c in ("oppose", "neutral", "support", "dk") for w in (1, 2)],
    "knowledge": ["n_pairs", "n_t1", "n_t2", "mean_t1", "mean_t2", "pct_correct_t1"],
}


def rows_by_cell(table: list[dict[str, Any]], item: str, weighted: bool) -> dict[Key, dict]:
    return {
        (r["arm"], r["subgroup"], r["subgroup_value"]): r
        for r in table
        if r["item"] == item and r["weighted"] == weighted
    }


def wave_sizes(payload: dict[str, Any], table: str, item: str, weighted: bool) -> dict[Key, dict]:
    """n_t1 and n_t2 of each cell: in item_details for items, in the row for knowledge."""
    source = payload["item_details"] if table == "items" else payload[table]
    return {
        key: {c: row[c] for c in ("n_t1", "n_t2") if row.get(c) is not None}
        for key, row in rows_by_cell(source, item, weighted).items()
    }


def true_sizes(poll: Poll) -> dict[tuple[str, str], dict[Key, int]]:
    """(item, "pairs" | "n_t1" | "n_t2") -> cell -> participants, from the answer rows: the
    ground truth, including cells that have no row anywhere (no answer, no arm, no pairs)."""
    people = {p.pk: p for p in Participant.objects.filter(poll=poll, completed_at__isnull=False)}
    leaning = dict(
        Answer.objects.filter(poll=poll, question__key="leaning").values_list(
            "participant_id", "value"
        )
    )

    def keys(pk: int) -> list[Key]:
        person = people[pk]
        arm = person.arm or "unassigned"
        value = leaning.get(pk) or "(none)"
        out = [(a, "", "") for a in {"all", arm}]
        out += [(a, "leaning", value) for a in {"all", arm}]
        if arm in ARMS:
            out.append((arm, "group", "(none)" if person.group is None else str(person.group)))
        return out

    answers: dict[tuple[str, int, int], bool] = {}  # (item, participant, wave) -> substantive
    for key, pk, wave, missing in Answer.objects.filter(poll=poll).values_list(
        "question__key", "participant_id", "wave", "missing"
    ):
        dk = missing == "dont_know"
        if pk in people:
            # A knowledge DK is a wrong answer (asked); a rating DK is not a pair.
            answers[(key, pk, wave)] = key.startswith("k_") or not dk
    out: dict[tuple[str, str], dict[Key, int]] = {}
    for item in ("rate_exit", "rate_aid", "rate_escalate", "k_capital"):
        for pk in people:
            at = [(item, pk, w) in answers for w in (1, 2)]
            pair = all(answers.get((item, pk, w), False) for w in (1, 2))
            for base, counted in (("n_t1", at[0]), ("n_t2", at[1]), ("n_pairs", pair)):
                cells = out.setdefault((item, base), {})
                for key in keys(pk):
                    cells[key] = cells.get(key, 0) + int(counted)
    out.update(
        {("_knowledge_index", b): out[("k_capital", b)] for b in ("n_t1", "n_t2", "n_pairs")}
    )
    return out


def attacks(
    payload: dict[str, Any], full: dict[str, Any], sizes: dict[tuple[str, str], dict[Key, int]]
) -> Iterator[str]:
    """Every leak found by subtracting published rows: a description of each."""
    k = payload["meta"]["min_subgroup_size"]
    margin_list = margins(sizes)
    for table, columns in ADDITIVE.items():
        for item in {r["item"] for r in full[table]}:
            for weighted in {r["weighted"] for r in full[table]}:
                shown = rows_by_cell(payload[table], item, weighted)
                truth = rows_by_cell(full[table], item, weighted)
                shown_n = wave_sizes(payload, table, item, weighted)
                true_n = wave_sizes(full, table, item, weighted)
                for column in columns:
                    # Whose answers the column sums: the pairs, or everyone asked at a wave.
                    base = f"n_t{column[-1]}" if column.startswith(("pct_", "n_t")) else "n_pairs"
                    people = sizes[(item, base)]
                    # A wave column over the complete pairs (labelled) leaves its outsiders.
                    over_pairs = {}
                    if base != "n_pairs":
                        labels = rows_by_cell(payload[table], item, weighted)
                        if table == "items" and column.startswith("n_"):
                            labels = rows_by_cell(payload["item_details"], item, weighted)
                        over_pairs = {
                            key: people[key] - sizes[(item, "n_pairs")][key]
                            for key, r in labels.items()
                            if r.get(f"population_t{column[-1]}") == "pairs"
                        }
                    yield from subtract(
                        (table, item, weighted, column),
                        {
                            key: additive(table, r, column, shown_n.get(key, {}))
                            for key, r in shown.items()
                        },
                        {
                            key: additive(table, r, column, true_n.get(key, {}))
                            for key, r in truth.items()
                        },
                        people,
                        margin_list,
                        k,
                        over_pairs,
                    )


def subtract(
    what: tuple,
    shown: dict[Key, float | None],
    truth: dict[Key, float | None],
    people: dict[Key, int],
    margin_list: list[tuple[Key, list[Key]]],
    k: int,
    over_pairs: dict[Key, int] | None = None,
) -> Iterator[str]:
    """Each margin's published total minus its published parts: the sum over the rest, and
    over the outsiders of parts published over their complete pairs (``over_pairs``: part ->
    how many answered the wave outside them)."""
    over_pairs = over_pairs or {}
    for total, parts in margin_list:
        if not shown.get(total) or total in over_pairs:
            continue  # not shown, or zero: a zero total says every part is zero, nothing more
        unknown = [p for p in parts if shown.get(p) is None and people.get(p, 0) > 0]
        outside = [p for p in parts if p in over_pairs and over_pairs[p] > 0]
        if not unknown and not outside:
            continue
        derived = shown[total] - sum(shown[p] for p in parts if shown.get(p) is not None)
        lone = unknown[0] if len(unknown) == 1 and not outside else None
        if lone is not None and truth.get(lone) is not None and abs(derived - truth[lone]) < 1e-6:
            yield f"{what}: {total} minus published parts gives {lone} = {derived:.4f}"
        hidden_people = sum(people.get(p, 0) for p in unknown)
        hidden_people += sum(over_pairs[p] for p in outside)
        if 0 < hidden_people < k:
            yield f"{what}: {total} minus published parts gives {unknown} ({hidden_people} people)"


def determined(
    payload: dict[str, Any], full: dict[str, Any], sizes: dict[tuple[str, str], dict[Key, int]]
) -> Iterator[str]:
    """Combining margins (rank of the linear system): a withheld cell fixed by published ones."""
    for item in {r["item"] for r in full["items"]}:
        shown = set(rows_by_cell(payload["items"], item, False))
        people = sizes[(item, "n_pairs")]
        # Hidden cells ("(none)", unassigned) are never rows: unknown whenever not empty.
        unknown = sorted(key for key, n in people.items() if n > 0 and key not in shown)
        column = {key: j for j, key in enumerate(unknown)}
        equations = []
        for total, parts in margins(sizes):
            row = np.zeros(len(unknown))
            for p in parts:
                if p in column:
                    row[column[p]] = 1
            if total in column:
                row[column[total]] = -1
            if row.any():
                equations.append(row)
        if not equations:
            continue
        _, singular, vt = np.linalg.svd(np.array(equations))
        rank = int((singular > 1e-9).sum())
        free = (
            np.abs(vt[rank:]).max(axis=0) > 1e-9
            if rank < len(unknown)
            else np.zeros(len(unknown), bool)
        )
        for key, j in column.items():
            if not free[j] and 0 < people.get(key, 0) < K:
                yield f"{item}: {key} is determined by the published rows"


def cross_table_leaks(payload: dict[str, Any]) -> Iterator[str]:
    """DID, gaps, knowledge DID and small groups repeat cells of the items/knowledge tables:
    they may only show what those tables show."""
    items = {(r["item"], r["arm"], r["subgroup"], r["subgroup_value"]) for r in payload["items"]}
    knowledge = {
        (r["item"], r["arm"], r["subgroup"], r["subgroup_value"]) for r in payload["knowledge"]
    }
    for row in payload["did"]:
        shown = knowledge if row["item"] == "_knowledge_index" else items
        for arm in ARMS:
            if (row["item"], arm, row["subgroup"], row["subgroup_value"]) not in shown:
                yield f"did {row['item']} {row['subgroup_value']} shows withheld {arm}"
    waves = {
        (r["item"], r["arm"], r["subgroup"], r["subgroup_value"], r["weighted"], w): r[f"n_t{w}"]
        for r in payload["item_details"]
        for w in (1, 2)
    }
    for row in payload["distributions"]:
        ident = (row["item"], row["arm"], row["subgroup"], row["subgroup_value"], row["weighted"])
        if row["pct"] is not None and waves.get((*ident, row["wave"])) is None:
            yield f"distribution {ident} T{row['wave']} shown where the items table withholds it"
    if payload["meta"]["weighted"]:
        by_weight = {
            w: {
                (r["item"], r["arm"], r["subgroup"], r["subgroup_value"])
                for r in payload["items"]
                if r["weighted"] == w
            }
            for w in (False, True)
        }
        if by_weight[False] != by_weight[True]:
            yield "weighted and unweighted rows withhold different cells"
    arm = payload["meta"]["gaps_arm"]
    for row in payload["gaps"]:
        for value in (row["value_a"], row["value_b"]):
            if (row["item"], arm, row["subgroup"], value) not in items:
                yield f"gap {row['item']} {row['value_a']}-{row['value_b']} shows withheld {value}"
    groups = payload["small_groups"]
    for row in groups["groups"]:
        if (row["item"], row["arm"], "group", str(row["group"])) not in items:
            yield f"small group {row['arm']} {row['group']} {row['item']} withheld in items"
    for row in groups["summary"]:
        members = sum(
            g["n"] for g in groups["groups"] if g["item"] == row["item"] and g["arm"] == row["arm"]
        )
        if members != row["n_participants"]:
            yield f"small-group summary {row['arm']} {row['item']} averages a withheld group"


def option_leaks(payload: dict[str, Any], full: dict[str, Any]) -> Iterator[str]:
    """Options tables per arm: "all" minus the published arms; a wave's option ratings."""
    k = payload["meta"]["min_subgroup_size"]
    sizes = {r["arm"]: r["n_participants"] for r in full["options"]["summary"]}
    shown = {r["arm"] for r in payload["options"]["summary"]}
    unassigned = full["meta"]["n_unassigned"]
    if "all" in shown:
        hidden = [a for a in ARMS if a not in shown and sizes.get(a)]
        hidden_people = sum(sizes[a] for a in hidden) + unassigned
        if (len(hidden) + bool(unassigned) == 1 and hidden) or 0 < hidden_people < k:
            yield f"options: all minus published arms gives {hidden} ({hidden_people} people)"
    for row in payload["options"]["rankings"]:
        for wave in (1, 2):
            key = (f"rate_{row['option']}", row["arm"], "", "")
            cell = rows_by_cell(payload["item_details"], key[0], False).get(key[1:])
            population = f"population_t{wave}"
            if row[f"n_t{wave}"] is not None and (
                cell is None or cell.get(population) != row.get(population)
            ):
                yield f"rankings {row['arm']} {row['option']} T{wave}: not the items' population"


# -- the reviewer's attack: a wave's answerers minus the same cell's complete pairs ---------

CATEGORIES = ("oppose", "neutral", "support")
Derived = dict[tuple, tuple[float, ...]]


def _put(out: Derived, key: tuple, size: float | None, *parts: float | None) -> None:
    """One subtraction: the outsiders' size and what it gives about them (skipped if unknown)."""
    if size is not None and all(p is not None for p in parts):
        out[key] = (round(size, 6), *(round(p, 6) for p in parts))


def outsider_subtractions(payload: dict[str, Any]) -> Derived:
    """Everything a reader gets by subtracting, for one cell, item and wave, a published number
    over the complete pairs from the same number over the wave's answerers, in the same or
    another table: (table, item, cell, wave) -> (how many outside the pairs, their sums)."""
    out: Derived = {}
    details = {
        (r["item"], r["arm"], r["subgroup"], r["subgroup_value"]): r
        for r in payload["item_details"]
        if not r["weighted"]
    }
    dist: dict[tuple, dict[int, float | None]] = {}
    for r in payload["distributions"]:
        if not r["weighted"]:
            key = (r["item"], r["arm"], r["subgroup"], r["subgroup_value"], r["wave"])
            dist.setdefault(key, {})[r["value"]] = r["pct"]
    items = {}
    for row in payload["items"]:
        if row["weighted"]:
            continue
        cell = (row["item"], row["arm"], row["subgroup"], row["subgroup_value"])
        items[cell] = row
        detail = details[cell]
        for wave in (1, 2):
            n = detail[f"n_t{wave}"]
            if n is None:
                continue
            # The pairs' categories at this wave: transition row (T1) or column (T2) sums.
            pairs = [
                sum(
                    detail[f"transition_{a}_{b}" if wave == 1 else f"transition_{b}_{a}"]
                    for b in CATEGORIES
                )
                for a in CATEGORIES
            ]
            size = n - row["n_pairs"]
            shares = [row[f"pct_{c}_t{wave}"] for c in (*CATEGORIES, "dk")]
            # items: its percentages x n_t (item_details) minus the transitions; the means.
            _put(
                out,
                ("items", *cell, wave),
                size,
                *[
                    None if share is None else share * n / 100 - pairs[j]
                    for j, share in enumerate(shares[:3])
                ],
                None if shares[3] is None else shares[3] * n / 100,
            )
            # distributions: the scale points x n_t, collapsed at the midpoint, minus the same.
            points = dist.get((*cell, wave), {})
            if points and all(v is not None for v in points.values()):
                mid = (min(points) + max(points)) / 2
                collapsed = [0.0, 0.0, 0.0]
                for value, pct in points.items():
                    collapsed[0 if value < mid else 1 if value == mid else 2] += pct * n / 100
                _put(
                    out,
                    ("distributions", *cell, wave),
                    size,
                    *[collapsed[j] - pairs[j] for j in range(3)],
                )
    for row in payload["options"]["rankings"]:
        pair = items.get((f"rate_{row['option']}", row["arm"], "", ""))
        for wave in (1, 2):
            n, mean = row[f"n_t{wave}"], row[f"mean_t{wave}"]
            if pair is None or n is None or mean is None or pair[f"mean_t{wave}"] is None:
                continue
            # The reviewer's: rankings (everyone rating it) minus items (complete pairs).
            total = mean * n - pair[f"mean_t{wave}"] * pair["n_pairs"]
            _put(
                out,
                ("rankings", pair["item"], row["arm"], "", "", wave),
                n - pair["n_pairs"],
                total,
            )
    for row in payload["knowledge"]:
        if row["weighted"]:
            continue
        cell = (row["item"], row["arm"], row["subgroup"], row["subgroup_value"])
        for wave in (1, 2):
            n, pct = row[f"n_t{wave}"], row[f"pct_correct_t{wave}"]
            mean = row[f"mean_t{wave}"]
            if n is None:
                continue
            correct = None
            if row["item"] != "_knowledge_index" and pct is not None and mean is not None:
                correct = pct * n / 100 - mean * row["n_pairs"]
            _put(
                out,
                ("knowledge", *cell, wave),
                n - row["n_pairs"],
                *([correct] * (correct is not None)),
            )
    return out


def outsider_leaks(payload: dict[str, Any], full: dict[str, Any]) -> Iterator[str]:
    """The subtractions that give the true numbers of a group of 1..k-1 outside the pairs
    (the truth: the same subtraction on the unsuppressed tables, where every wave is over
    its answerers)."""
    k = payload["meta"]["min_subgroup_size"]
    truth = outsider_subtractions(full)
    for key, derived in outsider_subtractions(payload).items():
        true = truth.get(key)
        if true is None or not 0 < true[0] < k:
            continue
        if np.allclose(derived[: len(true)], true[: len(derived)], atol=1e-4):
            yield f"{key}: wave answerers minus complete pairs gives {true[0]:g} people: {derived}"


def _equation(column: dict[tuple, int], plus: list[tuple], minus: list[tuple]) -> np.ndarray:
    """sum(plus) - sum(minus) = published numbers, over the unknown cells only."""
    row = np.zeros(len(column))
    for sign, cells in ((1, plus), (-1, minus)):
        for cell in cells:
            if cell in column:
                row[column[cell]] += sign
    return row


def outsiders_determined(
    payload: dict[str, Any], sizes: dict[tuple[str, str], dict[Key, int]]
) -> Iterator[str]:
    """Across cells: pairs, T1 and T2 answerers of every cell are one linear system (the
    margins of each, and per cell answerers = pairs + outsiders). A wave counts as published
    over its answerers where the payload's n_t equals the true number of answerers. Any
    outsider group of 1..k-1 the published cells determine is a leak."""
    k = payload["meta"]["min_subgroup_size"]
    n_of: dict[tuple, dict[str, Any]] = {}
    for table in ("items", "item_details", "knowledge"):
        for r in payload[table]:
            if not r["weighted"]:
                key = (r["item"], r["arm"], r["subgroup"], r["subgroup_value"])
                n_of.setdefault(key, {}).update(
                    {c: r[c] for c in ("n_pairs", "n_t1", "n_t2") if c in r}
                )
    for item in {r["item"] for r in payload["items"]} | {"k_capital", "_knowledge_index"}:
        pairs = sizes[(item, "n_pairs")]
        keys = sorted(pairs)
        unknown: list[tuple] = []
        for key in keys:
            row = n_of.get((item, *key))
            if row is None or row["n_pairs"] != pairs[key]:
                unknown.append(("pairs", key))
            for wave in (1, 2):
                answered = sizes[(item, f"n_t{wave}")][key]
                if row is None or row[f"n_t{wave}"] != answered:
                    unknown.append((f"t{wave}", key))
                if answered - pairs[key]:
                    unknown.append((f"out{wave}", key))
        column = {u: j for j, u in enumerate(unknown)}
        rows = [
            _equation(column, [(population, p) for p in parts], [(population, total)])
            for population in ("pairs", "t1", "t2", "out1", "out2")
            for total, parts in margins(sizes)
        ]
        rows += [
            _equation(column, [("pairs", key), (f"out{wave}", key)], [(f"t{wave}", key)])
            for key in keys
            for wave in (1, 2)
        ]
        equations = [row for row in rows if row.any()]
        if not equations or not unknown:
            continue
        _, singular, vt = np.linalg.svd(np.array(equations))
        rank = int((singular > 1e-9).sum())
        null = vt[rank:]
        free = np.abs(null).max(axis=0) > 1e-9 if null.size else np.zeros(len(unknown), bool)
        for (population, key), j in column.items():
            if population.startswith("out") and not free[j]:
                size = sizes[(item, f"n_t{population[-1]}")][key] - pairs[key]
                if 0 < size < k:
                    yield f"{item} {key} T{population[-1]}: {size} outside the pairs determined"


def all_leaks(payload: dict[str, Any], full: dict[str, Any], poll: Poll) -> list[str]:
    sizes = true_sizes(poll)
    return [
        *attacks(payload, full, sizes),
        *determined(payload, full, sizes),
        *cross_table_leaks(payload),
        *option_leaks(payload, full),
        *outsider_leaks(payload, full),
        *outsiders_determined(payload, sizes),
    ]


LONE_AT_T1 = {"left": 11, "right": 5}
LONE_AT_T1_ANSWERS: dict[str, Any] = {
    "dont_know": frozenset(range(11, 16)),
    "skipped": frozenset(range(13, 16)),
}
SCENARIOS = (
    [
        pytest.param({"left": 11, "right": small}, {}, id=f"two-answers-{small}-in-one")
        for small in (1, 2, 4)
    ]
    + [
        pytest.param(
            {"left": 11, "centre": small, "right": 9}, {}, id=f"three-answers-{small}-in-one"
        )
        for small in (1, 2, 4)
    ]
    + [
        pytest.param({"left": 12, "right": 10}, {"missing": 1}, id="one-without-an-answer"),
        pytest.param({"left": 12, "right": 2}, {"missing": 6, "weighted": True}, id="weighted"),
        pytest.param({"left": 11, "right": 11}, {"unassigned": 2}, id="two-in-no-arm"),
        pytest.param(LONE_AT_T1, LONE_AT_T1_ANSWERS, id="two-answer-at-t1-only"),
    ]
)


@pytest.mark.parametrize(("sizes", "extra"), SCENARIOS)
def test_no_withheld_cell_can_be_recovered_by_subtracting_published_rows(sizes, extra):
    poll = build_poll(sizes=sizes, **extra)
    payload = recompute_poll(poll.pk).payload
    full = oracle(poll)
    # The attack is real: the unsuppressed tables have the small cells it hunts for.
    small = [r for r in full["items"] if 0 < r["n_pairs"] < K]
    assert small or extra.get("missing") or extra.get("unassigned")
    assert all_leaks(payload, full, poll) == []
    # And suppression did not throw the baby out: the whole sample is always shown.
    whole = rows_by_cell(payload["items"], "rate_aid", False)
    assert ("all", "", "") in whole and whole[("all", "", "")]["n_pairs"] == sum(
        sizes.values()
    ) + sum(extra.get(x, 0) for x in ("missing", "unassigned"))


def test_the_attack_finds_the_leak_in_tables_without_complementary_suppression():
    """The attacker's subtraction, run on tables that only drop cells under the minimum (what
    the engine published before): it recovers the one participant's T1 and T2 answers."""
    poll = build_poll(sizes={"left": 11, "right": 1})
    full = oracle(poll)
    primary_only = {
        **full,
        "items": [r for r in full["items"] if r["n_pairs"] >= K],
        "meta": {**full["meta"], "min_subgroup_size": K},
    }
    leaks = list(attacks(primary_only, full, true_sizes(poll)))
    lone = rows_by_cell(full["items"], "rate_aid", False)[("all", "leaning", "right")]
    assert lone["n_pairs"] == 1
    assert any("('all', 'leaning', 'right') = " in leak and "mean_t1" in leak for leak in leaks)
    recovered = [leak for leak in leaks if "'rate_aid', False, 'mean_t1'" in leak and "= " in leak]
    assert any(f"= {lone['mean_t1']:.4f}" in leak for leak in recovered)


def test_suppressed_cells_are_listed_and_the_csv_leaves_withheld_columns_empty(
    make_researcher,
):
    # The five "right" participants (the 12th to 16th) say don't know at T2 and three of them
    # skipped the item at T1: no complete pair, but two T1 answers that "all" minus "left" at
    # T1 would give.
    poll = build_poll(sizes=LONE_AT_T1, slug="csv-poll", **LONE_AT_T1_ANSWERS)
    payload = recompute_poll(poll.pk).payload
    listed = {(c["arm"], c["subgroup"], c["subgroup_value"]) for c in payload["meta"]["suppressed"]}
    # Two "right" in treatment, three in control: withheld with "left" in each arm.
    assert ("treatment", "leaning", "right") in listed and ("control", "leaning", "left") in listed
    _, secret = make_researcher("analyst", polls=(poll,))
    client = bearer(secret)
    url = reverse("api:results-items", kwargs={"slug": poll.slug})
    table = client.get(url).json()["rows"]
    frame = pd.read_csv(
        io.BytesIO(client.get(url, {"format": "csv"}).content), keep_default_na=False
    )
    shown = set(zip(frame["arm"], frame["subgroup_value"], strict=True))
    assert not {(a, v) for a in ("treatment", "control") for v in ("left", "right")} & shown
    assert {("all", "left"), ("all", "right")} <= shown
    # So a row shows its pairs but not its T1 answerers: its T1 shares describe the pairs,
    # labelled in the row (JSON and CSV) and in item_details; no cell is left empty.
    blank = [r for r in table if r["population_t1"] == "pairs"]
    assert blank and all(r["n_pairs"] >= K and r["pct_dk_t1"] == 0 for r in blank)
    assert (frame["population_t1"] == "pairs").sum() == len(blank)
    assert (frame["pct_support_t1"] == "").sum() == 0
    population = {
        (r["item"], r["arm"], r["subgroup"], r["subgroup_value"], r["weighted"]): r
        for r in payload["item_details"]
    }
    for row in blank:
        detail = population[
            (row["item"], row["arm"], row["subgroup"], row["subgroup_value"], row["weighted"])
        ]
        assert detail["population_t1"] == "pairs" and detail["n_t1"] == row["n_pairs"]
    assert list(frame.columns) == list(table[0])


def outsiders(count: int, where: str) -> frozenset[int]:
    """Participant indices (even: treatment, odd: control) for ``count`` outsiders: all in the
    treatment arm, or alternating between the arms."""
    if where == "treatment":
        return frozenset(range(0, 2 * count, 2))
    return frozenset(range(count))


OUTSIDER_SCENARIOS = [
    pytest.param(wave, count, where, id=f"{count}-outside-at-{wave}-{where}")
    for wave in ("t1", "t2")
    for count in (1, 2, 4)
    for where in ("treatment", "both-arms")
] + [
    # Five in all (not small) but two and three per arm: the arms' waves are the small ones.
    pytest.param("t1", 5, "both-arms", id="5-outside-at-t1-small-per-arm"),
    pytest.param("t2", 5, "both-arms", id="5-outside-at-t2-small-per-arm"),
]


@pytest.mark.parametrize(("wave", "count", "where"), OUTSIDER_SCENARIOS)
def test_nobody_outside_the_complete_pairs_can_be_recovered(wave, count, where):
    """The reviewer's attack: a rating said don't know at one wave (so not a complete pair)
    but given at the other is the wave's answerers minus the pairs, in every table (items
    percentages x item_details n vs transitions, distributions vs transitions, rankings vs
    items means, knowledge), and across cells."""
    people = outsiders(count, where)
    extra = {"dk_t1": people} if wave == "t1" else {"dont_know": people}
    poll = build_poll(sizes={"left": 11, "right": 11}, dk_every=0, seed=count, **extra)
    payload = recompute_poll(poll.pk).payload
    full = oracle(poll)
    # The attack is real: on the unsuppressed tables it recovers the small group.
    assert list(outsider_leaks({**full, "meta": payload["meta"]}, full))
    assert all_leaks(payload, full, poll) == []
    # Least lost: the rows stay, their wave columns describe the complete pairs, labelled.
    details = rows_by_cell(payload["item_details"], "rate_exit", False)
    items = rows_by_cell(payload["items"], "rate_exit", False)
    small = [
        key
        for key, row in rows_by_cell(full["item_details"], "rate_exit", False).items()
        if key in items and 0 < row["n_t1"] - items[key]["n_pairs"] < K
    ]
    assert small
    for key in small:
        assert details[key]["population_t1"] == "pairs"
        assert details[key]["n_t1"] == items[key]["n_pairs"]
        assert items[key]["population_t1"] == "pairs" and items[key]["pct_dk_t1"] == 0
