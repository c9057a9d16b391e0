"""Rules of the DRI a reviewer asked for: the small-cell rule counts the participants who enter
the pairs (not constant raters), statements on different scales are compared on their own
scales, and a battery the index cannot use says why on the results page."""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone
from scipy import stats as sps

from results.admin.dri import dri_view
from results.compute.recompute import recompute_poll
from surveys.models import Answer, Participant, Poll
from tests.factories import consideration, make_poll, small_definition

pytestmark = pytest.mark.django_db
OPTIONS = ("exit", "aid", "escalate")


def poll_with(scales: list[tuple[int, int]], *, k: int = 1, waves: str = "both") -> Poll:
    definition = small_definition(slug="dri-rules")
    definition["design"]["min_subgroup_size"] = k
    definition["questions"] += [
        consideration(f"c{i}", {"min": low, "max": high}, waves)
        for i, (low, high) in enumerate(scales)
    ]
    return make_poll(**definition)


def add(poll: Poll, group: int, ratings: list[int], ranks: list[int]) -> None:
    """One treatment participant with the same answers at T1 and T2."""
    now = timezone.now()
    person = Participant.objects.create(
        poll=poll,
        arm="treatment",
        group=group,
        consented_at=now - timedelta(hours=1),
        completed_at=now,
    )
    questions = {q.key: q for q in poll.questions.all()}
    order = [option for _, option in sorted(zip(ranks, OPTIONS, strict=True))]
    for wave in (1, 2):
        Answer.objects.bulk_create(
            [
                Answer(
                    poll=poll,
                    participant=person,
                    question=questions[f"c{i}"],
                    wave=wave,
                    value=v,
                    number=v,
                )
                for i, v in enumerate(ratings)
            ]
            + [
                Answer(
                    poll=poll,
                    participant=person,
                    question=questions["rank"],
                    wave=wave,
                    value=order,
                )
            ]
        )


def test_a_group_is_withheld_when_fewer_than_k_enter_its_pairs() -> None:
    poll = poll_with([(1, 5)] * 4, k=3)
    add(poll, 1, [1, 2, 3, 4], [1, 2, 3])
    add(poll, 1, [2, 1, 4, 3], [2, 1, 3])
    add(poll, 1, [3, 3, 3, 3], [1, 2, 3])  # constant: enters no pair
    add(poll, 1, [4, 4, 4, 4], [3, 2, 1])  # constant
    for _ in range(4):
        add(poll, 2, [1, 2, 3, 4], [1, 2, 3])
    payload = recompute_poll(poll.pk).payload
    groups = {row["group"] for row in payload["dri"]}
    # Group 1 answered with four people but its DRI would come from one pair of two.
    assert 1 not in groups
    assert {row["group"] for row in payload["dri_change"]} == groups


def test_statements_on_different_scales_are_ranked_on_their_own_scales() -> None:
    scales = [(1, 7), (0, 10), (0, 10), (1, 7)]
    poll = poll_with(scales)
    people = [([5, 6, 2, 7], [1, 2, 3]), ([2, 9, 3, 3], [2, 1, 3]), ([7, 1, 8, 4], [3, 2, 1])]
    for ratings, ranks in people:
        add(poll, 1, ratings, ranks)
    row = next(r for r in recompute_poll(poll.pk).payload["dri"] if r["group"] == 1)
    low, high = np.array(scales, float).T
    rescaled = [(np.array(r, float) - low) / (high - low) for r, _ in people]
    # 5 of 1..7 (0.667) ranks above 6 of 0..10 (0.6): raw values would rank them the other way.
    gaps = [
        abs(
            sps.spearmanr(rescaled[a], rescaled[b]).statistic
            - sps.spearmanr(people[a][1], people[b][1]).statistic
        )
        for a, b in ((0, 1), (0, 2), (1, 2))
    ]
    assert row["dri"] == pytest.approx(1 - 2 * np.mean(gaps), abs=1e-12)
    raw = [
        abs(
            sps.spearmanr(people[a][0], people[b][0]).statistic
            - sps.spearmanr(people[a][1], people[b][1]).statistic
        )
        for a, b in ((0, 1), (0, 2), (1, 2))
    ]
    assert row["dri"] != pytest.approx(1 - 2 * np.mean(raw), abs=1e-6)


def test_a_battery_asked_at_t1_only_says_why_there_is_no_dri() -> None:
    poll = poll_with([(1, 5)] * 3, waves="t1")
    add_t1_only = Participant.objects.create(
        poll=poll,
        arm="treatment",
        group=1,
        consented_at=timezone.now(),
        completed_at=timezone.now(),
    )
    assert add_t1_only.pk
    payload = recompute_poll(poll.pk).payload
    meta = payload["meta"]["dri"]
    assert meta["computed"] is False and meta["missing"] == "considerations"
    assert "this poll has 3 such questions, 0 of them at both waves" in meta["reason"]
    view = dri_view(payload, "compare", points=True)
    assert view is not None and "Family field" in view["reason"]
