"""Complementary (secondary) cell suppression: which cells of additive margins to withhold.

Part of :mod:`results.stats` (pure: no Django). A *cell* is any hashable key with a vector of
counts (for example complete pairs, and pairs with a positive weight); a *margin* says that a
total cell is the sum of its part cells (a breakdown's answers plus those who gave none sum to
the arm; treatment plus control plus the unassigned sum to everyone). Whatever is published
about a cell is a sum over its people, so any published total minus its published parts gives
the sum over the withheld parts. The rule, as statistical offices apply it to frequency tables:

* primary: a cell with any count in 1..k-1 is withheld; *hidden* cells (never published, such
  as participants without an answer to a breakdown question) count as withheld, and when they
  are not small they may be derived (that publishes a group of k or more, nothing more);
* complementary, for every margin until nothing changes: if a margin has withheld non-empty
  members, it has at least two of them (so no single one is the margin minus the rest), and
  when its total is published the withheld parts together hold 0 or at least k of every count
  (so their sum is not a small group either; of a part split by a ``prefer_total`` margin only
  its withheld pieces count, the others being published). Missing ones are added smallest
  first; a margin with no published part left withholds its total instead;
* audit: the linear system of all margins is solved for the withheld cells, and any cell it
  still determines exactly (possible when margins cross) gets one more complementary cell.

Cells whose counts are all zero are known to be empty: they hide nothing and are never added.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Counts = Sequence[int]


@dataclass(frozen=True)
class Margin:
    """``total`` is the sum of ``parts`` (every person of the total is in exactly one part).

    ``prefer_total``: when one more member must be withheld, the total goes first (the parts
    only when it already is). For margins whose total says less than a part: a wave's
    answerers are the complete pairs (a whole row) plus the few outside them, so withholding
    the wave's columns loses less than withholding the row.
    """

    total: Hashable
    parts: tuple[Hashable, ...]
    prefer_total: bool = False


def is_small(counts: Counts, k: int) -> bool:
    return any(0 < c < k for c in counts)


def is_empty(counts: Counts) -> bool:
    return not any(counts)


def suppress(
    counts: Mapping[Hashable, Counts],
    margins: Sequence[Margin],
    *,
    k: int,
    hidden: Collection[Hashable] = (),
    forced: Collection[Hashable] = (),
) -> frozenset[Hashable]:
    """Every cell to withhold: primary, hidden, ``forced`` and the complementary ones.

    ``counts`` must cover every cell named in ``margins``; every count vector has the same
    length. The result is deterministic (ties broken by the order of the parts).
    """
    withheld = {c for c, n in counts.items() if is_small(n, k)}
    withheld |= set(hidden) | set(forced)
    exempt = {c for c in hidden if not is_small(counts[c], k)}
    for _ in range(len(counts) + 1):
        _complete_margins(counts, margins, withheld, exempt, k)
        exposed = derivable(counts, margins, withheld) - exempt
        if not exposed or not _widen(counts, margins, withheld, exposed):
            break
    return frozenset(withheld)


def _complete_margins(
    counts: Mapping[Hashable, Counts],
    margins: Sequence[Margin],
    withheld: set[Hashable],
    exempt: set[Hashable],
    k: int,
) -> None:
    split = {m.total: m for m in margins if m.prefer_total}
    changed = True
    while changed:
        changed = False
        for margin in margins:
            while _needs_more(counts, split, margin, withheld, exempt, k):
                added = _next_cell(counts, margin, withheld)
                if added is None:
                    break
                withheld.add(added)
                changed = True


def _needs_more(
    counts: Mapping[Hashable, Counts],
    split: Mapping[Hashable, Margin],
    margin: Margin,
    withheld: set[Hashable],
    exempt: set[Hashable],
    k: int,
) -> bool:
    hidden_parts = [p for p in margin.parts if p in withheld and not is_empty(counts[p])]
    total_withheld = margin.total in withheld and not is_empty(counts[margin.total])
    unknown = len(hidden_parts) + int(total_withheld)
    if unknown == 0:
        return False
    if unknown == 1:
        # The one withheld member is the margin minus the published rest: harmless only for a
        # never-published cell of k or more.
        return not (set(hidden_parts) <= exempt and not total_withheld)
    if margin.total in withheld:
        return False  # total minus the withheld parts is the published parts: nothing new
    together = np.sum([_residual(counts, split, p, withheld) for p in hidden_parts], axis=0)
    return is_small(together, k)


def _residual(
    counts: Mapping[Hashable, Counts],
    split: Mapping[Hashable, Margin],
    cell: Hashable,
    withheld: set[Hashable],
) -> np.ndarray:
    """The people of a withheld cell that no published number covers: a ``prefer_total``
    margin splits it into parts (a wave's answerers: pairs + outsiders); its published parts
    are known, so subtracting them from a total leaves only the withheld ones."""
    margin = split.get(cell)
    if margin is None:
        return np.asarray(counts[cell])
    hidden = [p for p in margin.parts if p in withheld]
    zero = np.zeros(len(counts[cell]), dtype=np.int64)
    return np.sum([zero, *(_residual(counts, split, p, withheld) for p in hidden)], axis=0)


def _next_cell(
    counts: Mapping[Hashable, Counts], margin: Margin, withheld: set[Hashable]
) -> Hashable | None:
    total_free = margin.total not in withheld and not is_empty(counts[margin.total])
    if margin.prefer_total and total_free:
        return margin.total
    candidates = [p for p in margin.parts if p not in withheld and not is_empty(counts[p])]
    if candidates:
        # Next smallest: the least information lost, as statistical offices choose.
        return min(candidates, key=lambda p: tuple(counts[p]))
    if total_free:
        return margin.total
    return None


def derivable(
    counts: Mapping[Hashable, Counts], margins: Sequence[Margin], withheld: Collection[Hashable]
) -> set[Hashable]:
    """Withheld non-empty cells whose value follows exactly from the published cells.

    Each margin is one linear equation; the published members are known numbers. A withheld
    cell is determined when its unit vector lies in the row space of the equations restricted
    to the withheld cells, i.e. when every null-space vector is zero at it.
    """
    unknown = [c for c in counts if c in withheld and not is_empty(counts[c])]
    if not unknown:
        return set()
    column = {c: j for j, c in enumerate(unknown)}
    rows = []
    for margin in margins:
        row = np.zeros(len(unknown))
        for part in margin.parts:
            if part in column:
                row[column[part]] += 1.0
        if margin.total in column:
            row[column[margin.total]] -= 1.0
        if row.any():
            rows.append(row)
    if not rows:
        return set()
    matrix = np.array(rows)
    _, singular, vt = np.linalg.svd(matrix)
    rank = int(np.count_nonzero(singular > 1e-9 * max(singular.max(), 1.0)))
    null_space = vt[rank:]
    if null_space.shape[0] == 0:
        return set(unknown)
    free = np.abs(null_space).max(axis=0) > 1e-9
    return {c for c, j in column.items() if not free[j]}


def _widen(
    counts: Mapping[Hashable, Counts],
    margins: Sequence[Margin],
    withheld: set[Hashable],
    exposed: set[Hashable],
) -> bool:
    """One more complementary cell for each exposed cell; False when none can be added.

    First from a margin of the cell itself; when those have no published member left, from a
    margin of one of their withheld members (a hidden cell such as the outsiders of a wave is
    exposed through its neighbours: the wave of a breakdown's non-answerers is "all" minus
    the published answers).
    """
    added = False
    for cell in sorted(exposed, key=repr):
        own = [m for m in margins if cell == m.total or cell in m.parts]
        extra = next((c for m in own if (c := _next_cell(counts, m, withheld)) is not None), None)
        if extra is None:
            near = {member for m in own for member in (m.total, *m.parts) if member in withheld}
            near.discard(cell)
            second = [
                m
                for m in margins
                if m not in own and (m.total in near or any(p in near for p in m.parts))
            ]
            extra = next(
                (c for m in second if (c := _next_cell(counts, m, withheld)) is not None), None
            )
        if extra is not None:
            withheld.add(extra)
            added = True
    return added
