"""The numeric part of a recompute: PollData in, the snapshot payload (plain JSON) out.

No database access here: ``build_payload`` is a pure function of the loaded arrays, so the same
data always gives the same payload, and the benchmark can time it alone. Every table is a list
of flat rows (JSON scalars only, NaN written as null) with exactly the columns ``results.tables``
lists for it.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from itertools import combinations
from typing import Any

import numpy as np

from results import stats, tables
from results.compute.breakdowns import (
    Cell,
    CellKey,
    Layout,
    arm_mask,
    breakdown_questions,
    breakdown_values,
    cells,
    subgroup_masks,
)
from results.compute.loading import PollData, json_row
from surveys.definition.spec import QuestionSpec
from surveys.models import Question

Row = dict[str, Any]


def rating_items(data: PollData) -> list[tuple[int, QuestionSpec]]:
    """Paired rating questions: the rows of the items table."""
    return [
        (i, q)
        for i, q in enumerate(data.questions)
        if q.kind == Question.Kind.RATING and q.paired and q.scale_min is not None
    ]


def on_scale(values: np.ndarray, question: QuestionSpec) -> np.ndarray:
    """Answers off the item's integer scale (left from an edited definition) become missing."""
    low, high = question.scale_min, question.scale_max
    valid = (values >= low) & (values <= high) & (np.floor(values) == values)
    return np.where(valid, values, np.nan)


def item_family(question: QuestionSpec) -> str:
    """The multiple-comparison family of a paired rating item: its own, else the option
    ratings' or the other items' (see results.tables.ITEMS)."""
    if question.family:
        return question.family
    return tables.OPTIONS_FAMILY if question.option else tables.OTHER_FAMILY


# The wave columns of an items row that describe the wave's population (not the pairs).
WAVE_FIELDS = (
    "n",
    *(f"pct_{name}" for name in ("oppose", "neutral", "support", "dk", "refused", "skipped")),
    *(f"pct_{name}_valid" for name in ("oppose", "neutral", "support")),
    "distribution",
    "distribution_valid",
)
NOT_ASKED = stats.MISSING_CODES["not_asked"]


def weight_options(data: PollData) -> list[bool]:
    return [False, True] if data.has_weights else [False]


@dataclass(frozen=True)
class Withheld:
    """What complementary suppression withholds for one item (or knowledge measure).

    ``pairs``: cells without a row (the complete pairs give means, variances, tests...).
    ``waves[w - 1]``: cells whose wave-w answerer columns (n, shares, distribution) are empty:
    everyone who answered at that wave is a population of its own, with its own margins (a
    category with no complete pair can still have answerers at T1).

    The wave answerers minus the complete pairs (those who said don't know or skipped at the
    other wave) are a hidden cell of their own: a wave statistic and the same statistic over
    the pairs of the same cell, in any two tables, differ by exactly them. When 1..k-1 of
    them, the wave's columns are withheld (with complements across cells); the pairs' row
    stays. See Layout.paired_withheld and the codebook.
    """

    pairs: frozenset[CellKey]
    waves: tuple[frozenset[CellKey], frozenset[CellKey]]

    def over_pairs(self, key: CellKey) -> tuple[bool, bool]:
        """Per wave: True when the cell's wave columns are computed over its complete pairs."""
        return (key in self.waves[0], key in self.waves[1])

    @staticmethod
    def labels(over_pairs: tuple[bool, bool]) -> Row:
        return {
            f"population_t{wave}": tables.PAIRS if pairs else tables.ANSWERED
            for wave, pairs in enumerate(over_pairs, 1)
        }


class PayloadBuilder:
    """Builds every table for one PollData; one instance per recompute."""

    def __init__(
        self, data: PollData, progress: Callable[[float, str], None] | None = None
    ) -> None:
        self.data = data
        self.k = data.min_subgroup_size
        self.progress = progress
        self.items = rating_items(data)
        self.suppressed: list[Row] = []
        self.suppressed_rows = 0
        # Off-scale answers are dropped once, up front, for every rating item.
        self.ratings = {
            i: (on_scale(data.values[i, 0], q), on_scale(data.values[i, 1], q))
            for i, q in self.items
        }
        self.invalid = sum(
            int(np.count_nonzero(~np.isnan(data.values[i, w]) & np.isnan(self.ratings[i][w])))
            for i, _ in self.items
            for w in (0, 1)
        )
        # Complementary suppression (results.stats.disclosure): one rule, decided per population
        # over the cells of these layouts, and every table below publishes only what it allows.
        self.layout = Layout(data)
        self.cell_withheld = self.layout.withheld(self.population(np.ones(data.n, bool)), k=self.k)
        self._withheld: dict[Any, Withheld] = {}

    # -- disclosure control -------------------------------------------------------------------

    def population(self, members: np.ndarray) -> np.ndarray:
        """Counts to protect: the members and, for weighted rows, those with a weight."""
        if not self.data.has_weights:
            return members[None, :]
        return np.stack([members, members & (self.data.weight > 0)])

    def paired_withheld(
        self,
        layout: Layout,
        answered: tuple[np.ndarray, np.ndarray],
        pairs: np.ndarray,
        rated: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Withheld:
        """``answered[w]``: counted at wave w (DK included); ``rated[w]``: a substantive answer
        at wave w (the options rankings' population; default ``answered``); ``pairs``: complete
        pairs. Both wave populations are protected, with their outsiders (see Withheld)."""
        rated = rated or answered
        both = np.concatenate([self.population(pairs)] * 2)
        waves = tuple(
            np.concatenate([self.population(a), self.population(r)])
            for a, r in zip(answered, rated, strict=True)
        )
        held, waves_held = layout.paired_withheld(
            both, (waves[0], waves[1]), k=self.k, forced=self.cell_withheld
        )
        return Withheld(held, waves_held)

    def item_withheld(self, i: int) -> Withheld:
        if i not in self._withheld:
            x1, x2 = self.ratings[i]
            kinds = self.data.missing[i]
            sub1 = ~np.isnan(x1) & (kinds[0] == 0)
            sub2 = ~np.isnan(x2) & (kinds[1] == 0)
            # Don't know, refused and skipped count among those who answered; not asked doesn't.
            asked1 = sub1 | ((kinds[0] > 0) & (kinds[0] < NOT_ASKED))
            asked2 = sub2 | ((kinds[1] > 0) & (kinds[1] < NOT_ASKED))
            answered = (asked1, asked2)
            self._withheld[i] = self.paired_withheld(
                self.layout, answered, sub1 & sub2, rated=(sub1, sub2)
            )
        return self._withheld[i]

    def knowledge_withheld(self, j: int | None) -> Withheld:
        """Knowledge item j (column of the matrices), or the index for None."""
        key = ("knowledge", j)
        if key not in self._withheld:
            matrices = self.knowledge_matrices()
            assert matrices is not None
            if j is None:
                asked = tuple(~np.isnan(m).all(axis=1) for m in matrices)
            else:
                asked = tuple(~np.isnan(m[:, j]) for m in matrices)
            layout = Layout(self.data, include_groups=False)
            self._withheld[key] = self.paired_withheld(layout, asked, asked[0] & asked[1])
        return self._withheld[key]

    def report(self, fraction: float, message: str) -> None:
        if self.progress:
            self.progress(fraction, message)

    def visible(self, cell: Cell) -> bool:
        if cell.key not in self.cell_withheld:
            return cell.size > 0  # an empty cell has nothing to show
        if cell.size:
            self.suppressed.append(cell.label())
        return False

    def weights(self, mask: np.ndarray, weighted: bool) -> np.ndarray | None:
        return self.data.weight[mask] if weighted else None

    # -- items, item_details, distributions -----------------------------------------------

    def item_tables(self) -> tuple[list[Row], list[Row], list[Row]]:
        items: list[Row] = []
        details: list[Row] = []
        distributions: list[Row] = []
        all_cells = [cell for cell in cells(self.data) if self.visible(cell)]
        for position, cell in enumerate(all_cells):
            if position % 10 == 0:
                self.report(0.5 + 0.3 * position / max(len(all_cells), 1), "items by subgroup")
            for weighted in weight_options(self.data):
                shown: list[tuple[Row, Row, stats.ItemChange, Withheld]] = []
                w = self.weights(cell.mask, weighted)
                for i, question in self.items:
                    withheld = self.item_withheld(i)
                    if cell.key in withheld.pairs:
                        self.suppressed_rows += 1
                        continue
                    x1, x2 = self.ratings[i]
                    change = stats.item_change(
                        x1[cell.mask],
                        x2[cell.mask],
                        missing1=self.data.missing[i, 0, cell.mask],
                        missing2=self.data.missing[i, 1, cell.mask],
                        scale_min=question.scale_min,
                        scale_max=question.scale_max,
                        weights=w,
                    )
                    if change.n_pairs == 0:
                        continue  # nobody to describe (an all-zero weight, say)
                    over_pairs = withheld.over_pairs(cell.key)
                    if any(over_pairs):
                        change = self.waves_over_pairs(i, cell, w, change, over_pairs)
                    ident = {"item": question.key, **cell.label(), "weighted": weighted}
                    values = {**ident, **asdict(change), **withheld.labels(over_pairs)}
                    values["family"] = item_family(question)
                    shown.append((values, ident, change, withheld))
                holm, bh = stats.adjust_within_families(
                    [change.p_t for _, _, change, _ in shown], [v["family"] for v, *_ in shown]
                )
                for (values, ident, change, withheld), p_holm, p_bh in zip(
                    shown, holm, bh, strict=True
                ):
                    items.append(json_row({**values, "p_holm": p_holm, "p_bh": p_bh}, tables.ITEMS))
                    details.append(self.detail_row(values, change))
                    over_pairs = withheld.over_pairs(cell.key)
                    distributions.extend(self.distribution_rows(ident, change, over_pairs))
        return items, details, distributions

    def waves_over_pairs(
        self,
        i: int,
        cell: Cell,
        weights: np.ndarray | None,
        change: stats.ItemChange,
        over_pairs: tuple[bool, bool],
    ) -> stats.ItemChange:
        """``change`` with the wave columns of the ``over_pairs`` waves computed over the
        cell's complete pairs (its row's population) instead of the wave's answerers."""
        x1, x2 = self.ratings[i]
        kinds = self.data.missing[i]
        pairs = (~np.isnan(x1) & ~np.isnan(x2) & (kinds[0] == 0) & (kinds[1] == 0))[cell.mask]
        nobody = np.full(int(cell.size), np.nan)
        fields: dict[str, Any] = {}
        for wave, x in ((1, x1), (2, x2)):
            if not over_pairs[wave - 1]:
                continue
            # The pairs' answers at this wave as a T1 with no T2: only its wave columns are
            # needed, and without pairs the paired tests are skipped.
            one = stats.item_change(
                np.where(pairs, x[cell.mask], np.nan),
                nobody,
                scale_min=change.scale_min,
                scale_max=change.scale_max,
                weights=weights,
            )
            # pct_dk, pct_refused and pct_skipped are 0 here: a complete pair has no missing.
            for name in WAVE_FIELDS:
                fields[f"{name}_t{wave}"] = getattr(one, f"{name}_t1")
        return replace(change, **fields)

    @staticmethod
    def detail_row(values: Row, change: stats.ItemChange) -> Row:
        flat = dict(values)
        for a, row in zip(tables.COLLAPSED, change.transition, strict=True):
            for b, count in zip(tables.COLLAPSED, row, strict=True):
                flat[f"transition_{a}_{b}"] = count
        return json_row(flat, tables.ITEM_DETAILS)

    @staticmethod
    def distribution_rows(
        ident: Row, change: stats.ItemChange, over_pairs: tuple[bool, bool]
    ) -> list[Row]:
        """Rows of both waves, each over the population the row's wave columns describe."""
        rows = []
        for wave, distribution, valid in (
            (1, change.distribution_t1, change.distribution_valid_t1),
            (2, change.distribution_t2, change.distribution_valid_t2),
        ):
            for value, pct, pct_valid in zip(
                range(change.scale_min, change.scale_max + 1), distribution, valid, strict=True
            ):
                row = {
                    **ident,
                    "wave": wave,
                    "value": value,
                    "pct": pct,
                    "pct_valid": pct_valid,
                    "population": tables.PAIRS if over_pairs[wave - 1] else tables.ANSWERED,
                }
                rows.append(json_row(row, tables.DISTRIBUTIONS))
        return rows

    # -- difference in differences and gaps -------------------------------------------------

    def did_rows(self) -> list[Row]:
        treat, ctrl = arm_mask(self.data, 1), arm_mask(self.data, 2)
        if not treat.any() or not ctrl.any():
            return []
        scopes = [("", "", np.ones(self.data.n, dtype=bool)), *subgroup_masks(self.data)]
        knowledge = self.knowledge_matrices()
        rows: list[Row] = []
        for subgroup, value, mask in scopes:
            t, c = treat & mask, ctrl & mask
            if t.sum() < self.k or c.sum() < self.k:
                continue
            # A row repeats the change of the treatment and the control cell: shown only when the
            # items (knowledge) table shows both, so it never reveals a withheld one.
            arms = [("treatment", subgroup, value), ("control", subgroup, value)]
            results: list[tuple[str, stats.DiffInDiff]] = []
            for i, question in self.items:
                if any(key in self.item_withheld(i).pairs for key in arms):
                    self.suppressed_rows += 1
                    continue
                x1, x2 = self.ratings[i]
                results.append((question.key, stats.diff_in_diff(x1[t], x2[t], x1[c], x2[c])))
            if knowledge is not None:
                k1, k2 = knowledge
                if any(key in self.knowledge_withheld(None).pairs for key in arms):
                    self.suppressed_rows += 1
                else:
                    did = stats.knowledge_did(k1[t], k2[t], k1[c], k2[c])
                    results.append((tables.KNOWLEDGE_INDEX, did))
            for key, did in results:
                if did.n_treatment < self.k or did.n_control < self.k:
                    self.suppressed_rows += 1
                    continue
                row = {"item": key, "subgroup": subgroup, "subgroup_value": value, **asdict(did)}
                rows.append(json_row({**row, "test": tables.WELCH_TEST}, tables.DID))
        return rows

    def gap_population(self) -> tuple[str, np.ndarray]:
        """Gaps are about deliberation: the treatment arm when there is one, else everyone."""
        treat = arm_mask(self.data, 1)
        if treat.any():
            return "treatment", treat
        return "all", np.ones(self.data.n, dtype=bool)

    def gap_rows(self) -> list[Row]:
        arm, population = self.gap_population()
        rows: list[Row] = []
        for question in breakdown_questions(self.data):
            masks = {
                value: population & mask
                for subgroup, value, mask in subgroup_masks(self.data)
                if subgroup == question.key
            }
            for a, b in combinations(breakdown_values(question), 2):
                in_a, in_b = masks[a], masks[b]
                if in_a.sum() < self.k or in_b.sum() < self.k:
                    continue
                for i, item in self.items:
                    # A gap is mean A - mean B: shown only with both cells' rows (the items table).
                    held = self.item_withheld(i).pairs
                    if (arm, question.key, a) in held or (arm, question.key, b) in held:
                        self.suppressed_rows += 1
                        continue
                    x1, x2 = self.ratings[i]
                    gap = stats.gap_change(x1, x2, in_a, in_b)
                    if gap.n_a < self.k or gap.n_b < self.k:
                        self.suppressed_rows += 1
                        continue
                    row = {
                        "item": item.key,
                        "arm": arm,
                        "subgroup": question.key,
                        "value_a": a,
                        "value_b": b,
                        **asdict(gap),
                        "test": tables.WELCH_TEST,
                    }
                    rows.append(json_row(row, tables.GAPS))
        return rows

    # -- knowledge ----------------------------------------------------------------------------

    def knowledge_items(self) -> list[tuple[int, QuestionSpec]]:
        return [
            (i, q) for i, q in enumerate(self.data.questions) if q.kind == Question.Kind.KNOWLEDGE
        ]

    def knowledge_matrices(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Participant x item: 1 correct, 0 wrong or don't know, NaN not answered."""
        items = self.knowledge_items()
        if not items:
            return None
        out = []
        for wave in (0, 1):
            columns = []
            for i, question in items:
                answered = self.data.answered[i, wave]
                correct = (self.data.values[i, wave] == question.correct_code()).astype(float)
                columns.append(np.where(answered, correct, np.nan))
            out.append(np.column_stack(columns))
        return out[0], out[1]

    def knowledge_rows(self) -> list[Row]:
        matrices = self.knowledge_matrices()
        if matrices is None:
            return []
        k1, k2 = matrices
        items = self.knowledge_items()
        rows: list[Row] = []
        columns = tables.KNOWLEDGE
        for cell in cells(self.data, include_groups=False):
            if cell.key in self.cell_withheld or not cell.size:
                continue
            for weighted in weight_options(self.data):
                w = self.weights(cell.mask, weighted)
                ident = {**cell.label(), "weighted": weighted}
                withheld = self.knowledge_withheld(None)
                index = None
                if cell.key not in withheld.pairs:
                    index = stats.knowledge(k1[cell.mask], k2[cell.mask], weights=w)
                if index is not None and index.n_pairs:
                    values = {
                        **asdict(index),
                        **ident,
                        "item": tables.KNOWLEDGE_INDEX,
                        "pct_correct_t1": float(np.nanmean(index.pct_correct_t1)),
                        "pct_correct_t2": float(np.nanmean(index.pct_correct_t2)),
                    }
                    # Its pct_correct is the mean of the items' pct_correct over those asked:
                    # empty unless every item and the index describe those asked at the wave.
                    over_pairs = withheld.over_pairs(cell.key)
                    for wave in (1, 2):
                        if over_pairs[wave - 1]:
                            values[f"n_t{wave}"] = index.n_pairs
                        if over_pairs[wave - 1] or any(
                            cell.key in self.knowledge_withheld(j).waves[wave - 1]
                            for j in range(len(items))
                        ):
                            values[f"pct_correct_t{wave}"] = None
                    values.update(withheld.labels(over_pairs))
                    rows.append(json_row(values, columns))
                for j, (_, question) in enumerate(items):
                    withheld = self.knowledge_withheld(j)
                    if cell.key in withheld.pairs:
                        continue
                    one = stats.knowledge(k1[cell.mask][:, [j]], k2[cell.mask][:, [j]], weights=w)
                    if not one.n_pairs:
                        continue
                    values = {
                        **asdict(one),
                        **ident,
                        "item": question.key,
                        "pct_correct_t1": one.pct_correct_t1[0],
                        "pct_correct_t2": one.pct_correct_t2[0],
                    }
                    over_pairs = withheld.over_pairs(cell.key)
                    if any(over_pairs):
                        # Those asked at both waves: the row's own population.
                        both = ~np.isnan(k1[:, j]) & ~np.isnan(k2[:, j])
                        paired = stats.knowledge(
                            np.where(both, k1[:, j], np.nan)[cell.mask][:, None],
                            np.where(both, k2[:, j], np.nan)[cell.mask][:, None],
                            weights=w,
                        )
                        for wave in (1, 2):
                            if over_pairs[wave - 1]:
                                values[f"n_t{wave}"] = getattr(paired, f"n_t{wave}")
                                share = getattr(paired, f"pct_correct_t{wave}")[0]
                                values[f"pct_correct_t{wave}"] = share
                    values.update(withheld.labels(over_pairs))
                    rows.append(json_row(values, columns))
        return rows
