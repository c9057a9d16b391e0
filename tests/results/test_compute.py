"""results.compute.recompute on the seed poll with simulated participants: tables, breakdowns,
suppression, weights, reproducibility, and the two bulk loaders agreeing."""

import json
import math

import numpy as np
import pytest
from django.db import transaction

from results import tables
from results.compute.loading import (
    PollData,
    copy_numeric_answers,
    iterate_numeric_answers,
    load_poll_data,
)
from results.compute.recompute import build_payload, recompute_poll
from results.models import ResultSnapshot
from results.simulate import add_simulated_participants
from surveys.definition.spec import QuestionSpec
from surveys.models import Answer, Participant, Poll
from tests.results.conftest import load_seed_poll

pytestmark = pytest.mark.django_db


@pytest.fixture
def seed_results(seed_poll: Poll) -> tuple[Poll, dict]:
    add_simulated_participants(poll=seed_poll, n=300, seed=7, group_size=15)
    return seed_poll, recompute_poll(seed_poll.pk).payload


def test_items_table_has_exactly_the_contract_columns_and_every_cell_filled(seed_results):
    _, payload = seed_results
    whole = [row for row in payload["items"] if row["subgroup"] == ""]
    assert {row["arm"] for row in whole} == {"all", "treatment", "control"}
    for row in payload["items"]:
        assert list(row) == list(tables.ITEMS)
    for row in whole:
        missing = [column for column, value in row.items() if value is None]
        assert missing == [], (row["item"], row["arm"], missing)


def test_items_rows_are_plausible_for_a_researcher(seed_results):
    poll, payload = seed_results
    assert {row["item"] for row in payload["items"]} == {
        q.key for q in poll.questions.filter(kind="rating", waves="both")
    }
    for row in payload["items"]:
        assert row["n_pairs"] >= poll.min_subgroup_size
        for wave in ("t1", "t2"):
            shares = [row[f"pct_{c}_{wave}"] for c in ("oppose", "neutral", "support", "dk")]
            assert math.isclose(sum(shares), 100, abs_tol=1e-6)
            assert 0 <= row[f"mean_{wave}"] <= 10
            assert -1 <= row[f"agreement_{wave}"] <= 1
            assert 0 <= row[f"consensus_{wave}"] <= 1
        assert math.isclose(row["mean_diff"], row["mean_t2"] - row["mean_t1"], abs_tol=1e-9)
        if row["p_t"] is not None:
            assert row["ci_low"] <= row["mean_diff"] <= row["ci_high"]
            assert row["p_t"] <= row["p_bh"] * (1 + 1e-9) <= row["p_holm"] * (1 + 2e-9) <= 1 + 2e-9


def test_did_table_compares_treatment_with_control_for_every_item_and_knowledge(seed_results):
    _, payload = seed_results
    did = {row["item"]: row for row in payload["did"] if row["subgroup"] == ""}
    assert set(did) == {*payload["meta"]["items"], "_knowledge_index"}
    # The simulation makes deliberators learn: knowledge rises more in the treatment arm.
    assert did["_knowledge_index"]["did"] > 0
    for row in payload["did"]:
        assert list(row) == list(tables.DID)


def test_breakdowns_cover_arms_small_groups_and_every_breakdown_question(seed_results):
    _, payload = seed_results
    subgroups = {(row["arm"], row["subgroup"]) for row in payload["items"]}
    for question in ("leaning", "region", "age"):
        assert ("all", question) in subgroups
        assert ("treatment", question) in subgroups
    assert ("treatment", "group") in subgroups
    assert ("all", "group") not in subgroups  # group numbers restart in each arm
    gaps = payload["gaps"]
    assert {row["subgroup"] for row in gaps} <= {"leaning", "region", "age"}
    assert gaps and all(list(row) == list(tables.GAPS) for row in gaps)


def test_cells_under_the_minimum_size_are_suppressed_never_shown(seed_results):
    poll, payload = seed_results
    k = poll.min_subgroup_size
    for table in ("items", "knowledge"):
        for row in payload[table]:
            assert row["n_pairs"] >= k
    for row in payload["did"]:
        assert row["n_treatment"] >= k and row["n_control"] >= k
    shown = {(r["arm"], r["subgroup"], r["subgroup_value"]) for r in payload["items"]}
    for cell in payload["meta"]["suppressed"]:
        assert (cell["arm"], cell["subgroup"], cell["subgroup_value"]) not in shown


def test_suppression_follows_the_polls_minimum_subgroup_size(seed_poll):
    add_simulated_participants(poll=seed_poll, n=60, seed=3, group_size=15)
    Poll.objects.filter(pk=seed_poll.pk).update(min_subgroup_size=50)
    payload = recompute_poll(seed_poll.pk).payload
    assert {(r["arm"], r["subgroup"]) for r in payload["items"]} == {("all", "")}
    assert payload["did"] == []  # neither arm reaches 50
    assert any(c["arm"] == "control" for c in payload["meta"]["suppressed"])


def test_option_set_and_small_group_tables_are_filled(seed_results):
    _, payload = seed_results
    options = payload["options"]
    assert len([r for r in options["rankings"] if r["arm"] == "all"]) == 7
    assert {r["wave"] for r in options["condorcet"]} == {1, 2}
    peaked = [r for r in options["single_peakedness"] if r["arm"] == "all"]
    assert all(0.5 < r["share_axis"] <= r["share_best"] <= 1 for r in peaked)
    assert options["opinion_groups"] and options["migration"]
    assert payload["small_groups"]["summary"]
    assert all(r["arm"] in ("treatment", "control") for r in payload["small_groups"]["summary"])
    knowledge = [r for r in payload["knowledge"] if r["arm"] == "all" and r["subgroup"] == ""]
    assert {r["item"] for r in knowledge} >= {"_knowledge_index", "k_icc"}


def test_payload_is_strict_json_without_nan(seed_results):
    _, payload = seed_results
    # allow_nan=False raises on any NaN or infinity left in the payload.
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload


def test_the_same_data_gives_the_same_snapshot_and_stores_nothing_new(seed_poll):
    add_simulated_participants(poll=seed_poll, n=80, seed=5, group_size=15)
    first = recompute_poll(seed_poll.pk)
    second = recompute_poll(seed_poll.pk)
    assert second.pk == first.pk
    assert ResultSnapshot.objects.filter(poll=seed_poll).count() == 1
    with transaction.atomic():
        offline = build_payload(load_poll_data(seed_poll.pk))
    assert json.loads(json.dumps(offline)) == first.payload


def test_new_data_gives_a_new_snapshot_with_a_new_fingerprint(seed_poll):
    add_simulated_participants(poll=seed_poll, n=80, seed=5, group_size=15)
    first = recompute_poll(seed_poll.pk)
    Answer.objects.filter(poll=seed_poll, wave=2, number=3.0).update(number=4.0)
    second = recompute_poll(seed_poll.pk)
    assert second.pk != first.pk
    assert second.fingerprint != first.fingerprint
    assert second.n_participants == first.n_participants == 80
    assert second.n_treatment + second.n_control == 80


def test_snapshot_records_counts_settings_and_code_version(seed_poll):
    add_simulated_participants(poll=seed_poll, n=40, seed=2, group_size=15)
    snapshot = recompute_poll(seed_poll.pk)
    assert snapshot.n_participants == 40
    assert (
        snapshot.data_as_of
        == Answer.objects.filter(poll=seed_poll).latest("answered_at").answered_at
    )
    assert snapshot.settings["min_subgroup_size"] == seed_poll.min_subgroup_size
    assert snapshot.code_version and len(snapshot.fingerprint) == 64


def test_participants_who_have_not_completed_are_left_out(seed_poll):
    add_simulated_participants(poll=seed_poll, n=40, seed=2, group_size=15)
    dropout = Participant.objects.filter(poll=seed_poll).first()
    Participant.objects.filter(pk=dropout.pk).update(completed_at=None)
    assert recompute_poll(seed_poll.pk).n_participants == 39


def test_weighted_rows_come_in_addition_to_unweighted_ones(seed_poll):
    add_simulated_participants(poll=seed_poll, n=120, seed=4, weights=True, group_size=15)
    payload = recompute_poll(seed_poll.pk).payload
    weighted = [r for r in payload["items"] if r["weighted"]]
    unweighted = [r for r in payload["items"] if not r["weighted"]]
    assert weighted and len(weighted) == len(unweighted)
    pairs = {(r["item"], r["arm"], r["subgroup"], r["subgroup_value"]): r for r in unweighted}
    differs = [
        r
        for r in weighted
        if r["mean_t1"]
        != pairs[(r["item"], r["arm"], r["subgroup"], r["subgroup_value"])]["mean_t1"]
    ]
    assert differs, "weights must change the means"
    assert payload["meta"]["weighted"] is True


def test_off_scale_answers_are_counted_and_left_out(seed_poll):
    add_simulated_participants(poll=seed_poll, n=30, seed=2, group_size=15)
    answer = (
        Answer.objects.filter(poll=seed_poll, question__key="rate_amnesty", wave=1)
        .exclude(number=None)
        .first()
    )
    Answer.objects.filter(pk=answer.pk).update(number=42.0)
    payload = recompute_poll(seed_poll.pk).payload
    assert payload["meta"]["n_invalid_answers"] == 1


def test_copy_and_values_list_loaders_read_the_same_answers(seed_poll):
    add_simulated_participants(poll=seed_poll, n=25, seed=9)
    by_copy = copy_numeric_answers(seed_poll.pk)
    by_orm = iterate_numeric_answers(seed_poll.pk)

    def key(rows: np.ndarray) -> list:
        return sorted(
            (
                int(r["participant"]),
                int(r["question"]),
                int(r["wave"]),
                repr(float(r["number"])),
                int(r["missing"]),
            )
            for r in rows
        )

    assert len(by_copy) == len(by_orm) == Answer.objects.filter(poll=seed_poll).count()
    assert key(by_copy) == key(by_orm)


def test_recompute_of_an_unknown_poll_raises_and_stores_nothing(db):
    with pytest.raises(Poll.DoesNotExist):
        recompute_poll(999_999)
    assert not ResultSnapshot.objects.exists()


def test_a_poll_without_answers_gets_an_empty_but_valid_snapshot(db):
    poll = load_seed_poll()
    snapshot = recompute_poll(poll.pk)
    assert snapshot.n_participants == 0
    assert snapshot.payload["items"] == []
    json.dumps(snapshot.payload, allow_nan=False)


def spec_question(**fields: object) -> QuestionSpec:
    """A question in the shape the results read, with empty texts."""
    defaults: dict[str, object] = {
        "section": "s",
        "waves": "both",
        "required": True,
        "dont_know": True,
        "text": {},
        "help": {},
        "option": None,
        "scale_min": None,
        "scale_max": None,
        "min_label": {},
        "max_label": {},
        "choices": (),
        "number_min": None,
        "number_max": None,
    }
    return QuestionSpec(**{**defaults, **fields})  # type: ignore[arg-type]


def test_build_payload_from_hand_made_arrays_gives_the_changes_and_hides_a_lone_dk():
    """The payload builder alone, on arrays written by hand: 20 treated participants all move
    one point, 20 controls stay; one control says don't know at T2, so T2 of the control arm
    (and of everyone) describes the complete pairs rather than show that one person's answer."""
    n, k = 40, 5
    rating = spec_question(id=1, key="r1", kind="rating", scale_min=0, scale_max=10)
    region = spec_question(
        id=2, key="region", kind="single", waves="t1", breakdown=True,
        choices=(("north", {}), ("south", {})),
    )  # fmt: skip
    arm = np.array([1] * 20 + [2] * 20, dtype=np.int8)
    t1 = np.array([2.0, 3.0, 4.0, 5.0, 6.0] * 8)
    t2 = np.where(arm == 1, t1 + 1, t1)
    dont_know = np.zeros((2, 2, n), dtype=bool)
    dont_know[0, 1, 39] = True
    t2[39] = np.nan
    codes = np.array(([1.0] * 10 + [2.0] * 10) * 2)  # north, south in each arm
    values = np.full((2, 2, n), np.nan)
    values[0, 0], values[0, 1], values[1, 0] = t1, t2, codes
    answered = ~np.isnan(values) | dont_know
    data = PollData(
        poll_id=1,
        min_subgroup_size=k,
        questions=[rating, region],
        option_axis={},
        participant_ids=np.arange(1, n + 1, dtype=np.int64),
        arm=arm,
        group=np.full(n, -1, dtype=np.int64),
        weight=np.full(n, np.nan),
        values=values,
        dont_know=dont_know,
        answered=answered,
    )
    payload = build_payload(data)
    rows = {(r["arm"], r["subgroup"], r["subgroup_value"]): r for r in payload["items"]}
    assert rows[("treatment", "", "")]["n_pairs"] == 20
    assert rows[("treatment", "", "")]["mean_diff"] == pytest.approx(1.0)
    assert rows[("control", "", "")]["n_pairs"] == 19
    assert rows[("control", "", "")]["mean_diff"] == pytest.approx(0.0)
    assert rows[("control", "", "")]["population_t2"] == "pairs"
    assert rows[("control", "", "")]["pct_dk_t2"] == 0
    assert rows[("treatment", "", "")]["population_t2"] == "answered"
    assert {("treatment", "region", "north"), ("control", "region", "south")} <= set(rows)
    did = next(r for r in payload["did"] if r["item"] == "r1" and r["subgroup"] == "")
    assert did["did"] == pytest.approx(1.0)
    assert (did["n_treatment"], did["n_control"]) == (20, 19)
    assert payload["meta"]["n_participants"] == n
    assert payload["meta"]["breakdowns"] == ["region"]
    assert payload["meta"]["extra_columns"] == tables.EXTRA_COLUMNS
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload


def test_build_payload_counts_refused_and_skipped_among_the_answers_and_not_asked_nowhere():
    """40 participants, one rating: at T1 five each say don't know, refuse and skip, and five
    were not asked; the other 20 answer 2 (oppose) or 8 (support), half each."""
    n = 40
    rating = spec_question(id=1, key="r1", kind="rating", scale_min=0, scale_max=10)
    t1 = np.array([2.0, 8.0] * 10 + [np.nan] * 20)
    values = np.stack([t1, np.full(n, 5.0)])[None, :, :]
    missing = np.zeros((1, 2, n), dtype=np.int8)
    missing[0, 0, 20:] = np.repeat([1, 2, 3, 4], 5)  # dont_know, refused, skipped, not_asked
    data = PollData(
        poll_id=1,
        min_subgroup_size=5,
        questions=[rating],
        option_axis={},
        participant_ids=np.arange(1, n + 1, dtype=np.int64),
        arm=np.zeros(n, dtype=np.int8),
        group=np.full(n, -1, dtype=np.int64),
        weight=np.full(n, np.nan),
        values=values,
        dont_know=missing == 1,
        answered=~np.isnan(values) | ((missing > 0) & (missing < 4)),
        missing=missing,
    )
    payload = build_payload(data)
    row = next(r for r in payload["items"] if r["arm"] == "all" and r["subgroup"] == "")
    detail = next(r for r in payload["item_details"] if r["arm"] == "all" and r["subgroup"] == "")
    assert (detail["n_t1"], row["n_pairs"], row["population_t1"]) == (35, 20, "answered")
    asked = 100 / 35
    assert row["pct_oppose_t1"] == pytest.approx(10 * asked)
    for kind in ("dk", "refused", "skipped"):
        assert row[f"pct_{kind}_t1"] == pytest.approx(5 * asked)
    assert (row["pct_oppose_valid_t1"], row["pct_support_valid_t1"]) == (50.0, 50.0)
    assert row["pct_neutral_valid_t2"] == 100.0
    assert row["family"] == tables.OTHER_FAMILY
    shares = [
        r["pct_valid"] for r in payload["distributions"] if r["wave"] == 1 and r["value"] == 2
    ]
    assert shares == [50.0]
