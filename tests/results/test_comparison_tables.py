"""The did and gaps tables of a recompute against scipy, computed from the stored answers.

The expected numbers come straight from the answer rows (pandas + scipy), not from the loader or
results.stats, so a mistake in either shows up here.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from results import tables
from results.compute.recompute import recompute_poll
from surveys.models import Answer, Participant, Poll

pytestmark = pytest.mark.django_db


def wide_ratings(poll: Poll) -> tuple[pd.DataFrame, pd.Series]:
    """Participant x (item, wave) substantive numbers, and each participant's arm."""
    answers = pd.DataFrame.from_records(
        Answer.objects.filter(poll=poll, participant__completed_at__isnull=False).values(
            "participant_id", "question__key", "wave", "number", "missing"
        )
    )
    answers = answers[(answers["missing"] == "") & answers["number"].notna()]
    wide = answers.pivot_table(
        index="participant_id", columns=["question__key", "wave"], values="number", aggfunc="first"
    )
    arms = pd.Series(dict(Participant.objects.filter(poll=poll).values_list("id", "arm")))
    return wide, arms.reindex(wide.index)


def change_scores(wide: pd.DataFrame, item: str, mask: pd.Series) -> pd.DataFrame:
    pairs = wide.loc[mask, [(item, 1), (item, 2)]].dropna()
    pairs.columns = ["t1", "t2"]
    return pairs.assign(d=pairs["t2"] - pairs["t1"])


def assert_welch(row: dict, a: pd.DataFrame, b: pd.DataFrame) -> None:
    result = sps.ttest_ind(a["d"], b["d"], equal_var=False)
    interval = result.confidence_interval(0.95)
    for column, expected in (
        ("t_welch", result.statistic),
        ("df_welch", result.df),
        ("p_welch", result.pvalue),
        ("ci_low", interval.low),
        ("ci_high", interval.high),
    ):
        assert math.isclose(row[column], float(expected), rel_tol=1e-9), column
    assert row["test"] == tables.WELCH_TEST


def test_gaps_and_did_rows_equal_scipy_on_the_stored_answers(seed_poll_with_participants):
    poll = seed_poll_with_participants
    payload = recompute_poll(poll.pk).payload
    wide, arm = wide_ratings(poll)
    leaning = wide[("leaning", 1)]
    labels = set(poll.questions.values_list("key", flat=True))
    # The stored answers say which number each choice was stored as.
    codes = dict(
        Answer.objects.filter(poll=poll, question__key="leaning").values_list("value", "number")
    )

    gaps = [row for row in payload["gaps"] if row["subgroup"] == "leaning"]
    assert gaps
    for row in gaps[:6]:
        assert list(row) == list(tables.GAPS) and row["arm"] == "treatment"
        treated = arm == "treatment"
        a = change_scores(wide, row["item"], treated & (leaning == codes[row["value_a"]]))
        b = change_scores(wide, row["item"], treated & (leaning == codes[row["value_b"]]))
        assert (row["n_a"], row["n_b"]) == (len(a), len(b))
        expected = {
            "mean_t1_a": a["t1"].mean(),
            "mean_t2_a": a["t2"].mean(),
            "mean_t1_b": b["t1"].mean(),
            "mean_t2_b": b["t2"].mean(),
            "gap_t1": a["t1"].mean() - b["t1"].mean(),
            "gap_t2": a["t2"].mean() - b["t2"].mean(),
            "diff_change": a["d"].mean() - b["d"].mean(),
        }
        for column, value in expected.items():
            assert math.isclose(row[column], float(value), rel_tol=1e-9, abs_tol=1e-12), column
        assert math.isclose(
            row["gap_change"], abs(expected["gap_t2"]) - abs(expected["gap_t1"]), abs_tol=1e-12
        )
        assert_welch(row, a, b)

    did = [row for row in payload["did"] if row["subgroup"] == "" and row["item"] in labels]
    assert did
    for row in did:
        assert list(row) == list(tables.DID)
        t = change_scores(wide, row["item"], arm == "treatment")
        c = change_scores(wide, row["item"], arm == "control")
        assert (row["n_treatment"], row["n_control"]) == (len(t), len(c))
        assert np.allclose(
            [row["mean_t1_treatment"], row["mean_t2_treatment"], row["change_treatment"]],
            [t["t1"].mean(), t["t2"].mean(), t["d"].mean()],
            rtol=1e-9,
        )
        assert np.allclose(
            [row["mean_t1_control"], row["mean_t2_control"], row["did"]],
            [c["t1"].mean(), c["t2"].mean(), t["d"].mean() - c["d"].mean()],
            rtol=1e-9,
        )
        assert_welch(row, t, c)
