"""The cells results are broken down into: arm x (whole sample, small group, breakdown answer).

A cell is a boolean mask over the analysed participants. Which cells are shown is decided by
``Layout`` with results.stats.disclosure: cells smaller than the poll's minimum subgroup size
and the cells withheld with them (so no subtraction of published rows recovers a small one)
are never computed into the payload; only their names are listed in ``meta.suppressed`` so a
reader knows why a row is absent. The rule is documented in results.exports.codebook.DISCLOSURE.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from results.compute.loading import PollData
from results.stats import disclosure
from surveys.definition.spec import QuestionSpec
from surveys.models import Question

ARMS = (("all", None), ("treatment", 1), ("control", 2))
# Above this many small groups (very large online polls) per-group item rows would dwarf the
# rest of the payload; the small-group summary measures still cover every group.
MAX_GROUP_ROWS = 200


@dataclass(frozen=True)
class Cell:
    arm: str
    subgroup: str
    subgroup_value: str
    mask: np.ndarray

    @property
    def size(self) -> int:
        return int(self.mask.sum())

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.arm, self.subgroup, self.subgroup_value)

    def label(self) -> dict[str, str]:
        return {"arm": self.arm, "subgroup": self.subgroup, "subgroup_value": self.subgroup_value}


def arm_mask(data: PollData, code: int | None) -> np.ndarray:
    return np.ones(data.n, dtype=bool) if code is None else data.arm == code


def breakdown_questions(data: PollData) -> list[QuestionSpec]:
    """Single-choice questions marked as breakdowns, and number questions with bins."""
    return [
        q
        for q in data.questions
        if (q.breakdown and q.kind == Question.Kind.SINGLE)
        or (q.bins and q.kind == Question.Kind.NUMBER)
    ]


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def bin_labels(bins: tuple[float, ...]) -> list[str]:
    """The ranges of a number question's bins (lower bounds), as the tables name them.

    [18, 30, 45, 65] -> "<18", "18-29", "30-44", "45-64", "65+": a range holds its lower
    bound and everything below the next bound (so 29.5 is in "18-29"); values under the first
    bound form the first range. Non-integer bounds read "1.5-<2.5".
    """
    labels = [f"<{_bound(bins[0])}"]
    for low, high in pairwise(bins):
        whole = float(low).is_integer() and float(high).is_integer()
        upper = _bound(high - 1) if whole else f"<{_bound(high)}"
        labels.append(f"{_bound(low)}-{upper}")
    labels.append(f"{_bound(bins[-1])}+")
    return labels


def breakdown_values(question: QuestionSpec) -> list[str]:
    """The subgroup values of a breakdown question, in order: choice keys, or bin ranges."""
    if question.kind == Question.Kind.NUMBER:
        return bin_labels(question.bins)
    return question.choice_keys()


def breakdown_codes(data: PollData, question: QuestionSpec) -> np.ndarray:
    """A participant's 1-based code into ``breakdown_values`` (the answer at T1, else T2), NaN
    if none: the choice code, or the number's range."""
    index = data.index(question.key)
    t1, t2 = data.values[index, 0], data.values[index, 1]
    answer = np.where(np.isnan(t1), t2, t1)
    if question.kind != Question.Kind.NUMBER:
        return answer
    ranges = np.searchsorted(np.asarray(question.bins, dtype=np.float64), answer, side="right")
    return np.where(np.isnan(answer), np.nan, ranges + 1.0)


def subgroup_masks(data: PollData) -> Iterator[tuple[str, str, np.ndarray]]:
    """(subgroup, value, mask) for every value of every breakdown question, in order."""
    for question in breakdown_questions(data):
        codes = breakdown_codes(data, question)
        for code, value in enumerate(breakdown_values(question), 1):
            yield question.key, value, codes == code


def present_arms(data: PollData) -> list[tuple[str, int | None]]:
    """'all' always; treatment and control only where the poll has such participants."""
    return [(name, code) for name, code in ARMS if code is None or (data.arm == code).any()]


def cells(data: PollData, *, include_groups: bool = True) -> Iterator[Cell]:
    """Every cell in a stable order: per arm the whole sample, then breakdown answers, then
    small groups (within treatment and control only: group numbers restart in each arm)."""
    subgroups = list(subgroup_masks(data))
    for name, code in present_arms(data):
        in_arm = arm_mask(data, code)
        yield Cell(name, "", "", in_arm)
        for subgroup, value, mask in subgroups:
            yield Cell(name, subgroup, value, in_arm & mask)
        if include_groups and code is not None:
            groups = np.unique(data.group[in_arm & (data.group >= 0)])
            if groups.size <= MAX_GROUP_ROWS:
                for group in groups:
                    yield Cell(name, "group", str(int(group)), in_arm & (data.group == group))


def group_rows_omitted(data: PollData) -> bool:
    return any(
        np.unique(data.group[(data.arm == code) & (data.group >= 0)]).size > MAX_GROUP_ROWS
        for code in (1, 2)
    )


# -- disclosure control ----------------------------------------------------------------------
# Cells that are never published but take part in the sums: a reader who subtracts published
# rows from a published total gets them, so the suppression rule must protect them too.
UNASSIGNED = "unassigned"  # completed participants in neither arm (part of "all")
NO_ANSWER = "(no answer)"  # arm members without an answer to the breakdown question
NO_GROUP = "(no group)"  # arm members outside every small group
ARM_INDEX = ((UNASSIGNED, 0), ("treatment", 1), ("control", 2))
CellKey = tuple[str, str, str]


@dataclass(frozen=True)
class Dimension:
    """One way of splitting arms into cells: a breakdown question or one arm's small groups."""

    subgroup: str
    values: tuple[str, ...]
    codes: np.ndarray  # per participant: 0 (no answer / no group) or 1..len(values)
    arm: str | None = None  # small groups: the one arm they belong to; None: every arm

    def keys(self, arm: str) -> list[CellKey]:
        other = NO_GROUP if self.arm else NO_ANSWER
        return [(arm, self.subgroup, value) for value in (*self.values, other)]


class Layout:
    """Every cell of the results (published or hidden) and the margins that tie them together.

    Margins: the arms sum to "all" (treatment + control + unassigned), for every column of a
    breakdown too; a breakdown's answers plus NO_ANSWER sum to their arm; an arm's small
    groups plus NO_GROUP sum to the arm. ``withheld`` applies results.stats.disclosure to the
    counts of any population (complete pairs of one item, answerers at one wave, ...), so every
    table decides what to publish by the same rule.
    """

    def __init__(
        self, data: PollData, *, include_groups: bool = True, include_breakdowns: bool = True
    ) -> None:
        self.data = data
        self.dimensions: list[Dimension] = []
        for question in breakdown_questions(data) if include_breakdowns else ():
            values = tuple(breakdown_values(question))
            codes = np.nan_to_num(breakdown_codes(data, question), nan=0).astype(np.int64)
            codes[(codes < 1) | (codes > len(values))] = 0
            self.dimensions.append(Dimension(question.key, values, codes))
        for name, code in ARM_INDEX[1:] if include_groups else ():
            in_arm = data.arm == code
            groups = np.unique(data.group[in_arm & (data.group >= 0)])
            if groups.size <= MAX_GROUP_ROWS:  # as in cells(): else no group is published
                codes = np.zeros(data.n, dtype=np.int64)
                position = np.searchsorted(groups, data.group)
                member = in_arm & (data.group >= 0)
                codes[member] = position[member] + 1
                values = tuple(str(int(g)) for g in groups)
                self.dimensions.append(Dimension("group", values, codes, arm=name))
        self.margins, self.hidden = self._margins()

    def _margins(self) -> tuple[list[disclosure.Margin], set[CellKey]]:
        Margin = disclosure.Margin
        arms = [name for name, _ in ARM_INDEX]
        margins = [Margin(whole("all"), tuple(whole(a) for a in arms))]
        hidden: set[CellKey] = {whole(UNASSIGNED)}
        for dim in self.dimensions:
            if dim.arm is not None:
                margins.append(Margin(whole(dim.arm), tuple(dim.keys(dim.arm))))
                hidden.add(dim.keys(dim.arm)[-1])
                continue
            for arm in ("all", *arms):
                margins.append(Margin(whole(arm), tuple(dim.keys(arm))))
                hidden.add(dim.keys(arm)[-1])
            hidden.update(dim.keys(UNASSIGNED))
            for column, total in enumerate(dim.keys("all")):
                parts = tuple(dim.keys(a)[column] for a in arms)
                margins.append(Margin(total, parts))
        return margins, hidden

    def counts(self, contributions: np.ndarray) -> dict[CellKey, tuple[int, ...]]:
        """Cell -> how many participants each row of ``contributions`` (0/1 per participant)
        counts in it."""
        rows = np.atleast_2d(np.asarray(contributions, dtype=np.int64))
        arm = self.data.arm.astype(np.int64)
        out: dict[CellKey, list[np.ndarray]] = {}

        def put(keys: list[CellKey], values: np.ndarray) -> None:
            for key, value in zip(keys, values, strict=True):
                out.setdefault(key, []).append(value)

        for row in rows:
            by_arm = np.bincount(arm, weights=row, minlength=3)[:3]
            put([whole(name) for name, _ in ARM_INDEX], by_arm)
            put([whole("all")], np.array([by_arm.sum()]))
            for dim in self.dimensions:
                width = len(dim.values) + 1
                if dim.arm is not None:
                    code = dict(ARM_INDEX)[dim.arm]
                    inside = arm == code
                    tally = np.bincount(dim.codes[inside], weights=row[inside], minlength=width)
                    put(dim.keys(dim.arm), np.roll(tally, -1))
                    continue
                table = np.bincount(
                    arm * width + dim.codes, weights=row, minlength=3 * width
                ).reshape(3, width)
                table = np.roll(table, -1, axis=1)  # code 0 (no answer) goes last, as in keys()
                for name, index in ARM_INDEX:
                    put(dim.keys(name), table[index])
                put(dim.keys("all"), table.sum(axis=0))
        return {key: tuple(int(v) for v in values) for key, values in out.items()}

    def withheld(
        self, contributions: np.ndarray, *, k: int, forced: Iterable[CellKey] = ()
    ) -> frozenset[CellKey]:
        """The cells to withhold for a population (rows of 0/1 per participant)."""
        return self.decide(self.counts(contributions), k=k, forced=forced)

    def decide(
        self,
        counts: dict[CellKey, tuple[int, ...]],
        *,
        k: int,
        forced: Iterable[CellKey] = (),
    ) -> frozenset[CellKey]:
        forced_here = [key for key in forced if key in counts]
        return disclosure.suppress(
            counts, self.margins, k=k, hidden=self.hidden, forced=forced_here
        )

    def paired_withheld(
        self,
        pairs: np.ndarray,
        waves: tuple[np.ndarray, np.ndarray],
        *,
        k: int,
        forced: Iterable[CellKey] = (),
    ) -> tuple[frozenset[CellKey], tuple[frozenset[CellKey], frozenset[CellKey]]]:
        """Cells without a row (the complete pairs) and, per wave, cells whose wave columns
        are withheld; ``pairs`` and ``waves[w]`` are rows of 0/1 per participant of the same
        shape, each wave row including its pairs row (complete pairs answered at both waves).

        One system for the three populations: per cell, a wave's answerers are its pairs plus
        the hidden outsiders (don't know or no answer at the other wave). Published side by
        side, wave minus pairs is the outsiders, so 1..k-1 of them withhold that wave's
        columns (the total of that margin, see ``prefer_total``), then complements follow
        across cells as for any withheld cell, and the audit covers every combination.
        """
        pairs = np.atleast_2d(np.asarray(pairs, dtype=np.int64))
        held = set(self.withheld(pairs, k=k, forced=forced))
        pair_counts = self.counts(pairs)
        counts: dict[tuple[str, CellKey], tuple[int, ...]] = {
            ("pairs", key): value for key, value in pair_counts.items()
        }
        margins: list[disclosure.Margin] = []
        hidden: set[tuple[str, CellKey]] = set()
        for wave, rows in enumerate(waves, 1):
            rows = np.atleast_2d(np.asarray(rows, dtype=np.int64))
            answered, outside = f"wave{wave}", f"outside{wave}"
            counts.update(((answered, key), v) for key, v in self.counts(rows).items())
            counts.update(((outside, key), v) for key, v in self.counts(rows - pairs).items())
            hidden.update((outside, key) for key in pair_counts)
            margins += [
                disclosure.Margin((answered, key), (("pairs", key), (outside, key)), True)
                for key in pair_counts
            ]
        populations = [name for name in dict.fromkeys(p for p, _ in counts)]
        for name in populations:
            hidden.update((name, key) for key in self.hidden)
            margins += [
                disclosure.Margin((name, m.total), tuple((name, p) for p in m.parts))
                for m in self.margins
            ]
        waves_held: list[set[CellKey]] = [set(), set()]
        for _ in range(len(pair_counts) + 1):
            # A cell without a row shows no wave either; a pairs cell the joint audit adds
            # (rare: an outsider group only its row can hide) is a row less, so decide again.
            fixed = {(name, key) for key in held for name in populations if name[0] != "o"}
            out = disclosure.suppress(counts, margins, k=k, hidden=hidden, forced=fixed)
            more = {key for name, key in out if name == "pairs"} - held
            waves_held = [{key for name, key in out if name == f"wave{w}"} for w in (1, 2)]
            if not more:
                break
            held |= more
        return frozenset(held), (frozenset(waves_held[0]), frozenset(waves_held[1]))


def whole(arm: str) -> CellKey:
    return (arm, "", "")
