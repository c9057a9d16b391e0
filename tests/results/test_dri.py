"""The Deliberative Reason Index computed by a real recompute, checked against arithmetic
written out here (Spearman correlations of hand-ranked answers, then the paper's formula), on a
group of three (with a tie) and a group of four (with a constant rater at each wave)."""

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from scipy import stats as sps

from results.admin.dri import dri_view
from results.compute.recompute import recompute_poll
from surveys.models import Answer, Participant, Poll
from tests.factories import consideration, make_poll, small_definition, texts
from tests.surveys.admin_fixtures import client_for, staff

STATEMENTS = ("c_nuclear", "c_reward", "c_leak", "c_cost")
OPTIONS = ("exit", "aid", "escalate")
LAMBDA = math.sqrt(2) / 2
# participant: (group, considerations T1, ranking T1, considerations T2, ranking T2); a ranking
# lists the ranks of exit, aid and escalate (1 = best).
PEOPLE: dict[str, tuple[int, list[int], list[int], list[int], list[int]]] = {
    "A": (1, [1, 2, 3, 4], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3]),
    "B": (1, [2, 2, 3, 5], [1, 3, 2], [1, 2, 3, 4], [1, 2, 3]),  # a tie at T1
    "C": (1, [4, 3, 2, 1], [3, 2, 1], [4, 3, 2, 1], [3, 2, 1]),
    "D": (2, [1, 1, 1, 1], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3]),  # constant at T1
    "E": (2, [1, 2, 3, 4], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3]),
    "F": (2, [1, 3, 2, 4], [2, 1, 3], [1, 3, 2, 4], [2, 1, 3]),
    "G": (2, [4, 3, 2, 1], [3, 2, 1], [2, 2, 2, 2], [3, 2, 1]),  # constant at T2
}


def dri_of(gaps: list[float]) -> float:
    """The paper's formula from the pairs' |r_C - r_P|."""
    mean_d = sum(g / math.sqrt(2) for g in gaps) / len(gaps)
    return (LAMBDA - 2 * mean_d) / LAMBDA


# Hand-worked correlations. Group 1 at T1: ranks of B's considerations are 1.5 1.5 3 4, so
# r_C(A, B) = 4.5 / sqrt(5 * 4.5) = 3 / sqrt(10), r_C(A, C) = -1, r_C(B, C) = -3 / sqrt(10);
# rankings of three: rho = 1 - sum d^2 / 4, so r_P(A, B) = 0.5, r_P(A, C) = -1, r_P(B, C) = -0.5.
G = 3 / math.sqrt(10) - 0.5  # |r_C - r_P| of AB and of BC; AC lies on the line
GROUP1_T1 = dri_of([G, 0.0, G])
INDIVIDUAL1_T1 = {"A": dri_of([G, 0.0]), "B": dri_of([G, G]), "C": dri_of([0.0, G])}
# Group 2 at T1: D is constant (pairs DE, DF, DG left out). r_C(E, F) = 1 - 6 * 2 / 60 = 0.8,
# r_P(E, F) = 0.5; r_C(E, G) = r_P(E, G) = -1; r_C(F, G) = 1 - 6 * 18 / 60 = -0.8,
# r_P(F, G) = -0.5.
GROUP2_T1 = dri_of([0.3, 0.0, 0.3])
INDIVIDUAL2_T1 = {"E": dri_of([0.3, 0.0]), "F": dri_of([0.3, 0.3]), "G": dri_of([0.0, 0.3])}
# At T2 group 1 agrees entirely (every pair on the line); in group 2 G is constant and D, E, F
# repeat E, E, F of T1: gaps DE 0, DF 0.3, EF 0.3.
GROUP1_T2 = 1.0
INDIVIDUAL1_T2 = {"A": 1.0, "B": 1.0, "C": 1.0}
GROUP2_T2 = dri_of([0.0, 0.3, 0.3])
INDIVIDUAL2_T2 = {"D": dri_of([0.0, 0.3]), "E": dri_of([0.0, 0.3]), "F": dri_of([0.3, 0.3])}


def considerations_poll() -> Poll:
    definition = small_definition(slug="dri-hand")
    definition["design"]["min_subgroup_size"] = 1
    scale = {"min": 1, "max": 5, "min_label": texts("Disagree"), "max_label": texts("Agree")}
    definition["questions"] += [consideration(key, scale) for key in STATEMENTS]
    return make_poll(**definition)


def add_person(poll: Poll, group: int, waves: list[tuple[list[int], list[int]]]) -> None:
    now = timezone.now()
    person = Participant.objects.create(
        poll=poll,
        arm="treatment",
        group=group,
        consented_at=now - timedelta(hours=1),
        completed_at=now,
    )
    questions = {q.key: q for q in poll.questions.all()}
    answers = []
    for wave, (ratings, ranks) in enumerate(waves, 1):
        for key, value in zip(STATEMENTS, ratings, strict=True):
            answers.append(
                Answer(
                    poll=poll,
                    participant=person,
                    question=questions[key],
                    wave=wave,
                    value=value,
                    number=value,
                )
            )
        order = [option for _, option in sorted(zip(ranks, OPTIONS, strict=True))]
        answers.append(
            Answer(
                poll=poll, participant=person, question=questions["rank"], wave=wave, value=order
            )
        )
    Answer.objects.bulk_create(answers)


@pytest.fixture(scope="module")
def payload(django_db_setup: None, django_db_blocker: Any) -> Any:
    # One poll for the module, rolled back at its end (answers protect a poll from deletion).
    with django_db_blocker.unblock(), transaction.atomic():
        poll = considerations_poll()
        for group, c1, p1, c2, p2 in PEOPLE.values():
            add_person(poll, group, [(c1, p1), (c2, p2)])
        payload = recompute_poll(poll.pk).payload
        payload["poll_id"] = poll.pk  # for the page's test
        yield payload
        transaction.set_rollback(True)


def row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


@pytest.mark.django_db
def test_group_of_three_with_a_tie_by_hand(payload):
    t1 = row(payload["dri"], arm="treatment", group=1, wave=1)
    t2 = row(payload["dri"], arm="treatment", group=1, wave=2)
    assert (t1["n"], t1["pairs"], t1["pairs_left_out"]) == (3, 3, 0)
    assert t1["dri"] == pytest.approx(GROUP1_T1, abs=1e-12)
    assert math.isclose(GROUP1_T1, 5 / 3 - 4 / math.sqrt(10), abs_tol=1e-15)
    assert t2["dri"] == pytest.approx(GROUP1_T2, abs=1e-12)


@pytest.mark.django_db
def test_group_of_four_leaves_out_the_pairs_of_a_constant_rater(payload):
    t1 = row(payload["dri"], arm="treatment", group=2, wave=1)
    t2 = row(payload["dri"], arm="treatment", group=2, wave=2)
    assert (t1["n"], t1["pairs"], t1["pairs_left_out"]) == (4, 3, 3)
    assert t1["dri"] == pytest.approx(GROUP2_T1, abs=1e-12)
    assert math.isclose(GROUP2_T1, 0.6, abs_tol=1e-15)
    assert (t2["pairs"], t2["pairs_left_out"]) == (3, 3)
    assert t2["dri"] == pytest.approx(GROUP2_T2, abs=1e-12)


def scipy_dri(people: list[str], wave: int) -> tuple[float, int, int]:
    """The arm's DRI over every pair, with scipy's spearmanr, pair by pair."""
    gaps, left = [], 0
    for a in range(len(people)):
        for b in range(a + 1, len(people)):
            x, y = PEOPLE[people[a]], PEOPLE[people[b]]
            c = (x[1], y[1]) if wave == 1 else (x[3], y[3])
            p = (x[2], y[2]) if wave == 1 else (x[4], y[4])
            if len(set(c[0])) == 1 or len(set(c[1])) == 1:
                left += 1
                continue
            r_c = sps.spearmanr(*c).statistic
            r_p = sps.spearmanr(*p).statistic
            gaps.append(abs(r_c - r_p))
    return dri_of(gaps), len(gaps), left


@pytest.mark.django_db
def test_whole_arm_takes_every_pair_across_groups(payload):
    for arm in ("treatment", "all"):
        for wave in (1, 2):
            got = row(payload["dri"], arm=arm, group=None, wave=wave)
            expected, pairs, left = scipy_dri(list(PEOPLE), wave)
            assert (got["n"], got["pairs"], got["pairs_left_out"]) == (7, pairs, left)
            assert got["dri"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.django_db
def test_individual_dri_and_its_paired_test_by_hand(payload):
    change = row(payload["dri_change"], arm="treatment", group=None)
    # Participants with an individual DRI at both waves (D has none at T1, G none at T2).
    t1 = {**INDIVIDUAL1_T1, **INDIVIDUAL2_T1}
    t2 = {**INDIVIDUAL1_T2, **INDIVIDUAL2_T2}
    both = [p for p in PEOPLE if p in t1 and p in t2]
    assert both == ["A", "B", "C", "E", "F"]
    diffs = [t2[p] - t1[p] for p in both]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    t = mean / (sd / math.sqrt(n))
    half = sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert change["n"] == 7 and change["n_individual"] == n and change["df"] == n - 1
    assert change["mean_individual_t1"] == pytest.approx(sum(t1[p] for p in both) / n, abs=1e-12)
    assert change["mean_individual_t2"] == pytest.approx(sum(t2[p] for p in both) / n, abs=1e-12)
    assert change["mean_diff"] == pytest.approx(mean, abs=1e-12)
    assert change["t"] == pytest.approx(t, abs=1e-12)
    assert change["p"] == pytest.approx(2 * sps.t.sf(abs(t), n - 1), abs=1e-12)
    assert change["ci_low"] == pytest.approx(mean - half, abs=1e-12)
    assert change["ci_high"] == pytest.approx(mean + half, abs=1e-12)
    assert change["test"] == "paired_t_individual_dri"
    group1 = row(payload["dri_change"], arm="treatment", group=1)
    assert group1["dri_t1"] == pytest.approx(GROUP1_T1, abs=1e-12)
    assert group1["dri_change"] == pytest.approx(GROUP1_T2 - GROUP1_T1, abs=1e-12)
    assert group1["mean_diff"] == pytest.approx(
        np.mean([1 - INDIVIDUAL1_T1[p] for p in "ABC"]), abs=1e-12
    )


@pytest.mark.django_db
def test_meta_names_both_batteries_and_the_points_stay_off_the_tables(payload):
    meta = payload["meta"]["dri"]
    assert meta["considerations"] == list(STATEMENTS)
    assert meta["preferences"] == "ranking:rank"
    points = payload["dri_points"]["treatment"]["t1"]
    # 21 pairs, of which the 6 with the constant rater D have no point.
    assert points["pairs"] == 15 and len(points["points"]) == 15
    assert [0.5, 0.5] not in points["points"]
    assert any(p == pytest.approx([round(3 / math.sqrt(10), 4), 0.5]) for p in points["points"])


@pytest.mark.django_db
def test_the_results_page_shows_dri_per_group_and_the_scatter_to_organisers(payload):
    poll = Poll.objects.get(pk=payload["poll_id"])
    client = client_for(staff("olga", polls=(poll,)))
    response = client.get(reverse("admin:surveys_poll_results", args=[poll.pk]))
    page = response.content.decode()
    assert "Deliberative reason: do reasons and preferences hang together?" in page
    dri = response.context["charts"]["dri"]
    labels = [row["label"] for row in dri["rows"]]
    assert labels == ["everyone: whole arm"]  # one arm: the view is everyone
    view = dri_view(payload, "treatment", points=True)
    labels = [row["label"] for row in view["rows"]]
    assert labels == ["treatment: whole arm", "treatment: group 1", "treatment: group 2"]
    group1 = view["rows"][1]
    assert group1["dri_t1"] == pytest.approx(GROUP1_T1, abs=1e-12)
    assert (group1["pairs_left_out_t1"], group1["pairs_left_out_t2"]) == (0, 0)
    assert [w["id"] for w in view["scatters"][0]["waves"]] == [
        "dri-treatment-t1",
        "dri-treatment-t2",
    ]
    assert 'id="chart-dri-all-t1"' in page and 'id="chart-dri"' in page
    assert "15 pairs" in page  # T1: every counted pair is drawn


def test_pair_points_stay_off_the_page_without_microdata(payload):
    view = dri_view(payload, "treatment", points=False)
    assert view["scatters"] == [] and view["points_withheld"] is True
    assert len(view["rows"]) == 3


# Without a ranking question the options' ratings give the preferences (ties averaged), and
# considerations may sit on a scale around zero.
RATED = {  # participant: (considerations -5..5 at T1 and T2, ratings of exit, aid, escalate)
    "P": ([-5, 0, 5, 2], [-5, 0, 5, 3], [8, 8, 2]),  # a tie in the ratings
    "Q": ([-4, -1, 4, 4], [-4, -1, 4, 4], [9, 5, 1]),
    "R": ([5, 2, -3, -5], [5, 2, -3, -5], [1, 5, 9]),
    "S": ([0, 1, -1, 3], [0, 1, -1, 3], [5, 5, 5]),  # rates every option alike
    "T": ([1, 1, 2, 2], [1, 2, 2, 2], [3, 6, 6]),
}


@pytest.mark.django_db
def test_without_a_ranking_the_option_ratings_are_ranked_with_ties_averaged():
    definition = small_definition(slug="dri-rated")
    definition["design"]["min_subgroup_size"] = 1
    definition["questions"] = [q for q in definition["questions"] if q["key"] != "rank"]
    scale = {"min": -5, "max": 5, "min_label": texts("Disagree"), "max_label": texts("Agree")}
    definition["questions"] += [consideration(key, scale) for key in STATEMENTS]
    poll = make_poll(**definition)
    questions = {q.key: q for q in poll.questions.all()}
    now = timezone.now()
    for c1, c2, ratings in RATED.values():
        person = Participant.objects.create(
            poll=poll, arm="treatment", group=1, consented_at=now, completed_at=now
        )
        rows = [
            Answer(
                poll=poll,
                participant=person,
                question=questions[f"rate_{o}"],
                wave=w,
                value=v,
                number=v,
            )
            for o, v in zip(OPTIONS, ratings, strict=True)
            for w in (1, 2)
        ]
        rows += [
            Answer(
                poll=poll, participant=person, question=questions[key], wave=w, value=v, number=v
            )
            for w, values in ((1, c1), (2, c2))
            for key, v in zip(STATEMENTS, values, strict=True)
        ]
        Answer.objects.bulk_create(rows)
    payload = recompute_poll(poll.pk).payload
    assert payload["meta"]["dri"]["preferences"] == "option_ratings"
    for wave in (1, 2):
        gaps, left = [], 0
        people = list(RATED.values())
        for a in range(len(people)):
            for b in range(a + 1, len(people)):
                c = (people[a][wave - 1], people[b][wave - 1])
                p = (people[a][2], people[b][2])
                if any(len(set(v)) == 1 for v in (*c, *p)):
                    left += 1
                    continue
                r_c = sps.spearmanr(*c).statistic
                r_p = sps.spearmanr(*p).statistic
                gaps.append(abs(r_c - r_p))
        got = row(payload["dri"], arm="treatment", group=1, wave=wave)
        assert (got["pairs"], got["pairs_left_out"]) == (len(gaps), left) == (6, 4)
        assert got["dri"] == pytest.approx(dri_of(gaps), abs=1e-12)
