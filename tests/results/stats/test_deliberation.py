"""The measures of deliberation against values worked out by hand and a direct Gini formula."""

import itertools

import numpy as np
import pytest

from results.stats import deliberation as d


def gini_by_pairs(x: list[float]) -> float:
    """The textbook definition: mean absolute difference over all ordered pairs / (2 mean)."""
    n = len(x)
    total = sum(abs(a - b) for a, b in itertools.product(x, x))
    return total / (2 * n * n * (sum(x) / n))


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([5, 5, 5, 5], 0.0),  # everyone equal
        ([0, 0, 0, 12], 0.75),  # one of four wrote everything: (m - 1) / m
        ([1, 2, 3, 4], 0.25),  # sum |xi - xj| over ordered pairs = 20; 20 / (2 * 16 * 2.5)
        # |10-0| + |10-30| + |0-30| = 60, twice over ordered pairs = 120; 120 / (2 * 9 * 40/3).
        ([10, 0, 30], 0.5),
    ],
)
def test_gini_matches_known_values_and_the_pairwise_definition(words, expected):
    assert d.gini(words) == pytest.approx(expected, abs=1e-12)
    assert d.gini(words) == pytest.approx(gini_by_pairs(words), abs=1e-12)


def test_gini_matches_the_pairwise_definition_on_random_data():
    rng = np.random.default_rng(7)
    for _ in range(50):
        x = rng.integers(0, 200, size=rng.integers(2, 15)).astype(float)
        if x.sum() == 0:
            continue
        assert d.gini(x) == pytest.approx(gini_by_pairs(list(x)), abs=1e-12)


@pytest.mark.parametrize("words", [[], [0, 0, 0], [1, -1], [1, float("nan")]])
def test_gini_is_undefined_without_words_or_with_bad_amounts(words):
    assert np.isnan(d.gini(words))


def test_word_count_counts_words_in_both_languages():
    assert d.word_count("Tax cuts, now!") == 3
    assert d.word_count("Податки треба знизити, бо бізнес") == 5  # noqa: RUF001
    assert d.word_count("   ") == 0


def test_reason_stance_follows_the_briefing_arguments():
    arguments_for = d.argument_words("- Cheaper energy bills for families\n- Fewer blackouts")
    arguments_against = d.argument_words("* Reactors produce dangerous waste for centuries")
    assert len(arguments_for) == 2 and len(arguments_against) == 1
    # Shares "cheaper", "energy", "bills" with the first argument for: a reason for.
    assert (
        d.reason_stance("Energy would be cheaper, bills too", arguments_for, arguments_against) == 1
    )
    # "dangerous", "waste" with the argument against.
    assert d.reason_stance("The waste is dangerous", arguments_for, arguments_against) == -1
    # One shared word is not enough; a tie is no stance.
    assert d.reason_stance("I like energy", arguments_for, arguments_against) == 0
    tie = "dangerous waste but cheaper bills"
    assert d.reason_stance(tie, arguments_for, arguments_against) == 0
    assert d.reason_stance("", arguments_for, arguments_against) == 0


def test_side_is_relative_to_the_midpoint():
    assert d.side(2, scale_min=0, scale_max=10) == -1
    assert d.side(5, scale_min=0, scale_max=10) == 0
    assert d.side(7, scale_min=0, scale_max=10) == 1
    assert d.side(float("nan"), scale_min=0, scale_max=10) == 0
    assert d.side(3, scale_min=1, scale_max=4) == 1  # midpoint 2.5


def test_a_hand_computed_room_of_four():
    # Members A0 (oppose), B1 (support), C2 (support), D3 (no side). Messages:
    #   m1 A: 10 words, reason for own side (-1)            no reply
    #   m2 B: 4 words, replies to A (support -> oppose: cross-cutting), reason for other (-1)
    #   m3 C: 6 words, replies to B (support -> support: sided, not cross-cutting)
    #   m4 A: 2 words, replies to D (D has no side: a reply, not sided)
    #   m5 B: 8 words, reason for own side (+1)
    # D says nothing.
    t = d.Transcript.of(
        author=[0, 1, 2, 0, 1],
        words=[10, 4, 6, 2, 8],
        reply=[False, True, True, True, False],
        author_side=[-1, 1, 1, -1, 1],
        target_side=[0, -1, 1, 0, 0],
        stance=[-1, -1, 0, 0, 1],
    )
    counts = t.member_counts(4)
    assert counts.words.tolist() == [12, 12, 6, 0]
    assert counts.messages.tolist() == [2, 2, 1, 0]
    g = d.group_measures(counts)
    assert (g.n_members, g.n_speakers, g.n_messages, g.n_words) == (4, 3, 5, 30)
    assert g.share_spoke == 3 / 4
    # Gini of [12, 12, 6, 0]: sorted 0, 6, 12, 12; 2 * (1*0 + 2*6 + 3*12 + 4*12) / (4 * 30)
    # - 5/4 = 2 * 96 / 120 - 1.25 = 1.6 - 1.25 = 0.35.
    assert g.gini_words == pytest.approx(0.35)
    assert g.n_replies == 3 and g.reply_share == 3 / 5
    # Sided replies: m2 and m3; cross-cutting: m2 only.
    assert g.n_replies_sided == 2 and g.cross_cutting_share == 1 / 2
    # Own side: m1 (A oppose, stance -1) and m5 (B support, +1); other side: m2.
    assert (g.n_reasons_own, g.n_reasons_other) == (2, 1)
    # The supporters B and C: 18 of 30 words, 2 of 4 members -> 0.6 / 0.5 = 1.2.
    word_share, member_share, ratio = d.participation_ratio(counts.words, [0, 1, 1, 0])
    assert (word_share, member_share, ratio) == pytest.approx((0.6, 0.5, 1.2))
    supporters = d.group_measures(counts, np.array([False, True, True, False]))
    assert (supporters.n_members, supporters.n_words, supporters.n_reasons_other) == (2, 18, 1)


def test_an_author_outside_the_room_is_refused():
    t = d.Transcript.of(
        author=[4], words=[1], reply=[False], author_side=[0], target_side=[0], stance=[0]
    )
    with pytest.raises(ValueError, match=r"member index 0\.\.3"):
        t.member_counts(4)


def test_spread_is_the_sample_sd_over_complete_pairs():
    # Pairs: (2, 4), (8, 6), (5, 5); the fourth has no T2. T1 2, 8, 5: mean 5, squares 9+9+0,
    # variance 18/2 = 9, sd 3. T2 4, 6, 5: squares 1+1+0, variance 1, sd 1. Change -2.
    n, sd1, sd2, change = d.spread([2, 8, 5, 9], [4, 6, 5, float("nan")])
    assert (n, sd1, sd2, change) == (3, pytest.approx(3.0), pytest.approx(1.0), pytest.approx(-2))
    assert np.std([2, 8, 5], ddof=1) == pytest.approx(sd1)
    assert np.isnan(d.spread([1], [2])[1])
