"""The numeric part of a recompute: PollData in, the snapshot payload (plain JSON) out.

No database access here: ``build_payload`` is a pure function of the loaded arrays, so the same
data always gives the same payload, and the benchmark can time it alone. Every table is a list
of flat rows (JSON scalars only, NaN written as null); the items, did and gaps tables have
exactly the columns of ``results.tables``; the other tables are documented in ``TABLE_COLUMNS``.
"""

from collections.abc import Callable, Iterable
from dataclasses import asdict
from itertools import combinations
from typing import Any

import numpy as np

from results import stats, tables
from results.breakdowns import (
    Cell,
    arm_mask,
    breakdown_questions,
    cells,
    subgroup_masks,
)
from results.loading import PollData, QuestionInfo, as_json_number
from surveys.models import Question

Row = dict[str, Any]
KNOWLEDGE_INDEX = "_knowledge_index"  # question keys start with a letter, so never collide
COLLAPSED = ("oppose", "neutral", "support")

# Columns of the tables this module adds beside results.tables (for the codebook).
TABLE_COLUMNS: dict[str, dict[str, str]] = {
    "item_details": {
        "item": "Question key.",
        "arm": "all, treatment or control.",
        "subgroup": "As in items.",
        "subgroup_value": "As in items.",
        "weighted": "As in items.",
        "n_t1": "Participants who answered at T1 (DK included).",
        "n_t2": "Participants who answered at T2 (DK included).",
        "df": "Degrees of freedom of the paired t-test.",
        "rank_biserial": "Matched-pairs rank-biserial correlation (W+ - W-)/(W+ + W-).",
        "gross_change": "Mean absolute change over complete pairs.",
        "share_changed": "Share (0..1) of complete pairs whose answer changed.",
        "share_crossed": "Share (0..1) moving between oppose and support.",
        "sd_t1": "Standard deviation at T1 (complete pairs).",
        "sd_t2": "Standard deviation at T2.",
        "polarization_t1": "(1 - agreement_t1) / 2.",
        "polarization_t2": "(1 - agreement_t2) / 2.",
        "bimodality_t1": "Bimodality coefficient at T1 (> 5/9 suggests bimodality).",
        "bimodality_t2": "Bimodality coefficient at T2.",
        "p_mcnemar": "Exact McNemar test of support vs not support, T1 vs T2.",
        "p_stuart_maxwell": "Stuart-Maxwell test of marginal homogeneity of the 3x3 table.",
        **{
            f"transition_{a}_{b}": f"Complete pairs at {a} at T1 and {b} at T2 (count)."
            for a in COLLAPSED
            for b in COLLAPSED
        },
    },
    "distributions": {
        "item": "Question key.",
        "arm": "all, treatment or control.",
        "subgroup": "As in items.",
        "subgroup_value": "As in items.",
        "weighted": "As in items.",
        "wave": "1 (T1) or 2 (T2).",
        "value": "Scale point.",
        "pct": "Percent of those who answered at that wave (DK included) giving this value.",
    },
    "knowledge": {
        "item": f"Knowledge question key, or {KNOWLEDGE_INDEX} for the number correct.",
        "arm": "all, treatment or control.",
        "subgroup": "As in items.",
        "subgroup_value": "As in items.",
        "weighted": "As in items.",
        "n_items": "Knowledge questions counted (1 for an item row).",
        "n_t1": "Participants asked at T1.",
        "n_t2": "Participants asked at T2.",
        "n_pairs": "Participants asked at both waves.",
        "mean_t1": "Mean number correct at T1 over pairs (item rows: share correct, 0..1).",
        "mean_t2": "Mean number correct at T2 over pairs.",
        "mean_diff": "mean_t2 - mean_t1.",
        "ci_low": "Lower bound of the 95% t confidence interval of mean_diff.",
        "ci_high": "Upper bound of the 95% t confidence interval of mean_diff.",
        "t": "Paired t statistic.",
        "p_t": "Two-sided p-value of the paired t-test.",
        "d_z": "Hedges-corrected standardised mean difference of paired data.",
        "pct_correct_t1": "Percent correct at T1 among those asked (index: mean over items).",
        "pct_correct_t2": "Percent correct at T2 among those asked.",
    },
}


def json_row(values: dict[str, Any], columns: Iterable[str]) -> Row:
    return {column: as_json_number(values.get(column)) for column in columns}


def rating_items(data: PollData) -> list[tuple[int, QuestionInfo]]:
    """Paired rating questions: the rows of the items table."""
    return [
        (i, q)
        for i, q in enumerate(data.questions)
        if q.kind == Question.Kind.RATING and q.paired and q.scale_min is not None
    ]


def on_scale(values: np.ndarray, question: QuestionInfo) -> np.ndarray:
    """Answers off the item's integer scale (left from an edited definition) become missing."""
    low, high = question.scale_min, question.scale_max
    valid = (values >= low) & (values <= high) & (np.floor(values) == values)
    return np.where(valid, values, np.nan)


def weight_options(data: PollData) -> list[bool]:
    return [False, True] if data.has_weights else [False]


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

    def report(self, fraction: float, message: str) -> None:
        if self.progress:
            self.progress(fraction, message)

    def visible(self, cell: Cell) -> bool:
        if cell.size >= self.k:
            return True
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
                family: list[tuple[Row, Row, stats.ItemChange]] = []
                w = self.weights(cell.mask, weighted)
                for i, question in self.items:
                    x1, x2 = self.ratings[i]
                    change = stats.item_change(
                        x1[cell.mask],
                        x2[cell.mask],
                        dk1=self.data.dont_know[i, 0, cell.mask],
                        dk2=self.data.dont_know[i, 1, cell.mask],
                        scale_min=question.scale_min,
                        scale_max=question.scale_max,
                        weights=w,
                    )
                    if change.n_pairs < self.k:
                        self.suppressed_rows += 1
                        continue
                    ident = {"item": question.key, **cell.label(), "weighted": weighted}
                    family.append(({**ident, **asdict(change)}, ident, change))
                holm, bh = stats.adjust_pvalues([change.p_t for *_, change in family])
                for (values, ident, change), p_holm, p_bh in zip(family, holm, bh, strict=True):
                    items.append(json_row({**values, "p_holm": p_holm, "p_bh": p_bh}, tables.ITEMS))
                    details.append(self.detail_row(values, change))
                    distributions.extend(self.distribution_rows(ident, change))
        return items, details, distributions

    @staticmethod
    def detail_row(values: Row, change: stats.ItemChange) -> Row:
        flat = dict(values)
        for a, row in zip(COLLAPSED, change.transition, strict=True):
            for b, count in zip(COLLAPSED, row, strict=True):
                flat[f"transition_{a}_{b}"] = count
        return json_row(flat, TABLE_COLUMNS["item_details"])

    @staticmethod
    def distribution_rows(ident: Row, change: stats.ItemChange) -> list[Row]:
        rows = []
        for wave, distribution in ((1, change.distribution_t1), (2, change.distribution_t2)):
            for value, pct in zip(
                range(change.scale_min, change.scale_max + 1), distribution, strict=True
            ):
                row = {**ident, "wave": wave, "value": value, "pct": pct}
                rows.append(json_row(row, TABLE_COLUMNS["distributions"]))
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
            results: list[tuple[str, stats.DiffInDiff]] = []
            for i, question in self.items:
                x1, x2 = self.ratings[i]
                results.append((question.key, stats.diff_in_diff(x1[t], x2[t], x1[c], x2[c])))
            if knowledge is not None:
                k1, k2 = knowledge
                results.append((KNOWLEDGE_INDEX, stats.knowledge_did(k1[t], k2[t], k1[c], k2[c])))
            for key, did in results:
                if did.n_treatment < self.k or did.n_control < self.k:
                    self.suppressed_rows += 1
                    continue
                row = {"item": key, "subgroup": subgroup, "subgroup_value": value, **asdict(did)}
                rows.append(json_row(row, tables.DID))
        return rows

    def gap_population(self) -> tuple[str, np.ndarray]:
        """Gaps are about deliberation: the treatment arm when there is one, else everyone."""
        treat = arm_mask(self.data, 1)
        if treat.any():
            return "treatment", treat
        return "all", np.ones(self.data.n, dtype=bool)

    def gap_rows(self) -> list[Row]:
        _, population = self.gap_population()
        rows: list[Row] = []
        for question in breakdown_questions(self.data):
            masks = {
                value: population & mask
                for subgroup, value, mask in subgroup_masks(self.data)
                if subgroup == question.key
            }
            for a, b in combinations(question.choices, 2):
                in_a, in_b = masks[a], masks[b]
                if in_a.sum() < self.k or in_b.sum() < self.k:
                    continue
                for i, item in self.items:
                    x1, x2 = self.ratings[i]
                    gap = stats.gap_change(x1, x2, in_a, in_b)
                    if gap.n_a < self.k or gap.n_b < self.k:
                        self.suppressed_rows += 1
                        continue
                    row = {"item": item.key, "subgroup": question.key, "value_a": a, "value_b": b}
                    rows.append(json_row({**row, **asdict(gap)}, tables.GAPS))
        return rows

    # -- knowledge ----------------------------------------------------------------------------

    def knowledge_items(self) -> list[tuple[int, QuestionInfo]]:
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
        columns = TABLE_COLUMNS["knowledge"]
        for cell in cells(self.data, include_groups=False):
            if cell.size < self.k:
                continue
            for weighted in weight_options(self.data):
                w = self.weights(cell.mask, weighted)
                ident = {**cell.label(), "weighted": weighted}
                index = stats.knowledge(k1[cell.mask], k2[cell.mask], weights=w)
                if index.n_pairs >= self.k:
                    rows.append(
                        json_row(
                            {
                                **asdict(index),
                                **ident,
                                "item": KNOWLEDGE_INDEX,
                                "pct_correct_t1": float(np.nanmean(index.pct_correct_t1)),
                                "pct_correct_t2": float(np.nanmean(index.pct_correct_t2)),
                            },
                            columns,
                        )
                    )
                for j, (_, question) in enumerate(items):
                    one = stats.knowledge(k1[cell.mask][:, [j]], k2[cell.mask][:, [j]], weights=w)
                    if one.n_pairs < self.k:
                        continue
                    values = {
                        **asdict(one),
                        **ident,
                        "item": question.key,
                        "pct_correct_t1": one.pct_correct_t1[0],
                        "pct_correct_t2": one.pct_correct_t2[0],
                    }
                    rows.append(json_row(values, columns))
        return rows
