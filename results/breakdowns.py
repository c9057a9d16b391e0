"""The cells results are broken down into: arm x (whole sample, small group, breakdown answer).

A cell is a boolean mask over the analysed participants. Cells smaller than the poll's minimum
subgroup size are suppressed: their figures are never computed into the payload, only their
names are listed in ``meta.suppressed`` so a reader knows why a row is absent.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from results.loading import PollData, QuestionInfo
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

    def label(self) -> dict[str, str]:
        return {"arm": self.arm, "subgroup": self.subgroup, "subgroup_value": self.subgroup_value}


def arm_mask(data: PollData, code: int | None) -> np.ndarray:
    return np.ones(data.n, dtype=bool) if code is None else data.arm == code


def breakdown_questions(data: PollData) -> list[QuestionInfo]:
    return [q for q in data.questions if q.breakdown and q.kind == Question.Kind.SINGLE]


def breakdown_codes(data: PollData, question: QuestionInfo) -> np.ndarray:
    """A participant's 1-based choice code on a breakdown question (T1, else T2), NaN if none."""
    index = data.index(question.key)
    t1, t2 = data.values[index, 0], data.values[index, 1]
    return np.where(np.isnan(t1), t2, t1)


def subgroup_masks(data: PollData) -> Iterator[tuple[str, str, np.ndarray]]:
    """(subgroup, value, mask) for every answer of every breakdown question, in choice order."""
    for question in breakdown_questions(data):
        codes = breakdown_codes(data, question)
        for code, key in enumerate(question.choices, 1):
            yield question.key, key, codes == code


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
