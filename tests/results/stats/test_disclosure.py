"""results.stats.disclosure: the complementary suppression rule on plain margins (no Django:
``pytest tests/results/stats/test_disclosure.py -p no:django``)."""

import itertools

import numpy as np
import pytest

from results.stats.disclosure import Margin, derivable, suppress

K = 5


def breakdown(**sizes: int) -> tuple[dict, list[Margin]]:
    """One margin: "all" = the given answers."""
    counts = {key: (n,) for key, n in sizes.items()}
    counts["all"] = (sum(sizes.values()),)
    return counts, [Margin("all", tuple(sizes))]


def test_a_lone_small_answer_takes_the_only_other_answer_with_it():
    counts, margins = breakdown(a=11, b=1)
    assert suppress(counts, margins, k=K) == {"a", "b"}


@pytest.mark.parametrize("small", [1, 2, 4])
def test_with_three_answers_the_next_smallest_is_withheld_and_the_largest_shown(small):
    counts, margins = breakdown(a=11, b=small, c=9)
    assert suppress(counts, margins, k=K) == {"b", "c"}


def test_two_small_answers_that_together_stay_small_take_a_third():
    counts, margins = breakdown(a=11, b=1, c=2, d=30)
    # b + c = 3 people: "all" minus a and d would describe them, so a (next smallest) goes too.
    assert suppress(counts, margins, k=K) == {"a", "b", "c"}


def test_two_small_answers_that_together_reach_k_are_enough():
    counts, margins = breakdown(a=11, b=2, c=3)
    assert suppress(counts, margins, k=K) == {"b", "c"}


def test_no_small_cell_withholds_nothing_and_empty_cells_never_count():
    counts, margins = breakdown(a=11, b=5, c=0)
    assert suppress(counts, margins, k=K) == set()
    counts, margins = breakdown(a=11, b=1, c=0)
    assert suppress(counts, margins, k=K) == {"a", "b"}


def test_a_small_hidden_cell_is_protected_like_a_withheld_one():
    counts, margins = breakdown(a=10, b=12, missing=1)
    withheld = suppress(counts, margins, k=K, hidden={"missing"})
    assert withheld == {"a", "missing"}  # "all" minus b is a + missing: 11 people


def test_a_hidden_cell_of_k_or_more_may_be_derived_and_protects_a_small_one():
    counts, margins = breakdown(a=10, b=12, missing=6)
    assert suppress(counts, margins, k=K, hidden={"missing"}) == {"missing"}
    counts, margins = breakdown(a=10, b=1, missing=6)
    assert suppress(counts, margins, k=K, hidden={"missing"}) == {"b", "missing"}


def test_a_withheld_total_alone_in_its_margin_takes_a_part_with_it():
    counts, margins = breakdown(a=11, b=9)
    assert suppress(counts, margins, k=K, forced={"all"}) == {"all", "b"}  # the smaller


def test_any_small_count_of_a_vector_withholds_the_cell():
    counts = {"a": (11, 11), "b": (9, 2), "all": (20, 13)}  # b: 9 people, 2 with a weight
    assert suppress(counts, [Margin("all", ("a", "b"))], k=K) == {"a", "b"}


def table(cells: np.ndarray) -> tuple[dict, list[Margin]]:
    """Arms x answers with margins: rows sum to row totals, columns to column totals."""
    rows, cols = cells.shape
    counts = {(r, c): (int(cells[r, c]),) for r in range(rows) for c in range(cols)}
    for r in range(rows):
        counts[(r, "all")] = (int(cells[r].sum()),)
    for c in range(cols):
        counts[("all", c)] = (int(cells[:, c].sum()),)
    counts[("all", "all")] = (int(cells.sum()),)
    margins = [Margin((r, "all"), tuple((r, c) for c in range(cols))) for r in range(rows)]
    margins += [Margin(("all", c), tuple((r, c) for r in range(rows))) for c in range(cols)]
    margins.append(Margin(("all", "all"), tuple(("all", c) for c in range(cols))))
    margins.append(Margin(("all", "all"), tuple((r, "all") for r in range(rows))))
    return counts, margins


def test_crossing_margins_are_protected_where_one_margin_at_a_time_is_not():
    # Treatment: a=1 (small), b=10; control: a=10, b=10. Withholding (T, a) and (T, b) and
    # (C, a) satisfies the treatment row and column a, but then column b has one withheld
    # cell, (T, b) = all b - (C, b), and so (T, a) follows: (C, b) must go too.
    counts, margins = table(np.array([[1, 10], [10, 10]]))
    withheld = suppress(counts, margins, k=K)
    assert {(0, 0), (0, 1), (1, 0), (1, 1)} <= withheld
    assert derivable(counts, margins, withheld) == set()


def test_derivable_finds_a_cell_fixed_by_two_margins():
    counts, margins = table(np.array([[1, 10], [10, 10]]))
    assert derivable(counts, margins, {(0, 0), (0, 1), (1, 0)}) == {(0, 0), (0, 1), (1, 0)}
    assert derivable(counts, margins, {(0, 0), (0, 1), (1, 0), (1, 1)}) == set()


def test_random_tables_leave_no_small_cell_derivable_or_alone_in_a_margin():
    rng = np.random.default_rng(7)
    for _ in range(300):
        shape = (int(rng.integers(1, 4)), int(rng.integers(2, 5)))
        cells = rng.choice([0, 1, 2, 3, 4, 6, 9, 15], size=shape)
        counts, margins = table(cells)
        withheld = suppress(counts, margins, k=K)
        small = {c for c, (n,) in counts.items() if 0 < n < K}
        assert small <= withheld
        assert derivable(counts, margins, withheld) == set(), cells
        for margin in margins:
            members = [*margin.parts, margin.total]
            unknown = [m for m in members if m in withheld and counts[m][0]]
            assert len(unknown) != 1, (cells, margin)
            if unknown and margin.total not in withheld:
                assert sum(counts[m][0] for m in unknown) >= K, (cells, margin)


def test_the_result_does_not_depend_on_the_order_of_the_margins():
    counts, margins = table(np.array([[1, 10, 3], [10, 2, 10], [6, 6, 6]]))
    results = {
        suppress(counts, list(order), k=K)
        for order in itertools.islice(itertools.permutations(margins), 30)
    }
    for withheld in results:
        assert derivable(counts, margins, withheld) == set()


def waves_and_pairs(out_a: int, out_b: int) -> tuple[dict, list[Margin], set]:
    """Two cells a, b of "all"; each wave's answerers ("w", cell) = its complete pairs
    ("p", cell) + the hidden outsiders ("o", cell)."""
    pairs = {"a": 10, "b": 12}
    outside = {"a": out_a, "b": out_b}
    counts: dict = {}
    for cell in ("a", "b"):
        counts[("p", cell)] = (pairs[cell],)
        counts[("o", cell)] = (outside[cell],)
        counts[("w", cell)] = (pairs[cell] + outside[cell],)
    for population in ("p", "o", "w"):
        counts[(population, "all")] = (counts[(population, "a")][0] + counts[(population, "b")][0],)
    margins = [Margin((pop, "all"), ((pop, "a"), (pop, "b"))) for pop in ("p", "w", "o")] + [
        Margin(("w", c), (("p", c), ("o", c)), prefer_total=True) for c in ("a", "b", "all")
    ]
    hidden = {("o", c) for c in ("a", "b", "all")}
    return counts, margins, hidden


def test_few_outside_the_pairs_withhold_the_wave_not_the_row():
    counts, margins, hidden = waves_and_pairs(out_a=2, out_b=0)
    withheld = suppress(counts, margins, k=K, hidden=hidden)
    # a's wave is withheld, its pairs (the row) stay; and "all"'s wave too: all minus a's
    # pairs minus b (whose wave is its pairs) would be a's two outsiders.
    assert ("w", "a") in withheld and ("p", "a") not in withheld
    assert ("w", "all") in withheld and ("p", "all") not in withheld
    assert not derivable(counts, margins, withheld) & {("o", "a")}


def test_outsiders_of_k_or_more_leave_every_wave_published():
    counts, margins, hidden = waves_and_pairs(out_a=K, out_b=0)
    withheld = suppress(counts, margins, k=K, hidden=hidden)
    assert not {("w", "a"), ("w", "b"), ("w", "all")} & withheld
