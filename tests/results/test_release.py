"""The release rule: readers of aggregates only get a new snapshot only when it differs from the
previous release by at least k participants, so two fetches never tell one participant's
answers (the reviewer's snapshot-differencing attack, performed here through the API)."""

import itertools
import secrets
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from results.compute import recompute as compute
from results.compute.recompute import recompute_poll, release_decision
from results.models import ResultSnapshot, Webhook, WebhookDelivery
from surveys.definition.files import save_poll, validate
from surveys.models import Answer, Participant, Poll
from tests.results.api_fixtures import bearer, fill_poll, research_definition

pytestmark = pytest.mark.django_db

K = 4


@pytest.fixture
def live_poll(db: None) -> Poll:
    """42 participants, 36 completed; six (every seventh) still to complete, one at a time."""
    data = validate(research_definition("release-poll"), "<test>")
    poll, _ = save_poll(data=data, source="<test>")
    Poll.objects.filter(pk=poll.pk).update(min_subgroup_size=K)
    poll.refresh_from_db()
    fill_poll(poll, participants=42)
    Webhook.objects.create(poll=poll, url="https://hooks.example.test/in", secret="ab" * 32)
    return poll


@pytest.fixture
def aggregates(live_poll: Poll, make_researcher: Any) -> APIClient:
    _, secret = make_researcher("aggregates-only", polls=(live_poll,), level="aggregates")
    return bearer(secret)


@pytest.fixture
def microdata(live_poll: Poll, make_researcher: Any) -> APIClient:
    _, secret = make_researcher("microdata", polls=(live_poll,), level="microdata")
    return bearer(secret)


def complete_next(poll: Poll, count: int = 1) -> None:
    """The next ``count`` participants submit their last page."""
    waiting = Participant.objects.filter(poll=poll, completed_at__isnull=True).order_by("id")
    ids = list(waiting.values_list("id", flat=True)[:count])
    assert len(ids) == count
    Participant.objects.filter(id__in=ids).update(completed_at=timezone.now())


def fetch(client: APIClient, poll: Poll) -> tuple[dict[str, Any], dict[tuple, dict[str, Any]]]:
    """What the reviewer's script fetched: the results summary and the items table by cell."""
    top = client.get(reverse("api:poll-results", kwargs={"slug": poll.slug}))
    assert top.status_code == 200, top.content
    items = client.get(reverse("api:results-items", kwargs={"slug": poll.slug}))
    assert items.status_code == 200, items.content
    rows = items.json()["rows"]
    cells = {
        (r["arm"], r["item"], r["subgroup"], r["subgroup_value"], r["weighted"]): r for r in rows
    }
    return top.json(), cells


def one_person_cells(before: dict[tuple, dict], after: dict[tuple, dict]) -> list[tuple]:
    """The reviewer's differencing: cells whose pair count moved by exactly one person."""
    return [
        key
        for key, row in after.items()
        if key in before
        and row["n_pairs"] is not None
        and before[key]["n_pairs"] is not None
        and row["n_pairs"] - before[key]["n_pairs"] == 1
    ]


def announced(poll: Poll) -> list[int]:
    deliveries = WebhookDelivery.objects.filter(webhook__poll=poll, event="snapshot.ready")
    return sorted(d.payload["data"]["snapshot_id"] for d in deliveries)


def test_snapshot_differencing_through_the_api_tells_nobody(live_poll, aggregates, microdata):
    first = recompute_poll(live_poll.pk)
    assert first.released_at is not None and first.n_participants == 36
    top_before, cells_before = fetch(aggregates, live_poll)
    assert top_before["id"] == first.pk

    # The attack: one participant completes, the results are recomputed, fetch again.
    complete_next(live_poll)
    latest = recompute_poll(live_poll.pk)
    assert latest.pk != first.pk and latest.n_participants == 37 and latest.released_at is None
    top_after, cells_after = fetch(aggregates, live_poll)
    assert top_after["id"] == first.pk and top_after["n_participants"] == 36
    assert cells_after == cells_before and one_person_cells(cells_before, cells_after) == []
    # ... whereas the latest snapshot (which served everyone before) gives the person away.
    _, latest_cells = fetch(microdata, live_poll)
    assert one_person_cells(cells_before, latest_cells)

    # k - 2 more completions: still fewer than k participants since the release.
    for _ in range(K - 2):
        complete_next(live_poll)
        recompute_poll(live_poll.pk)
        assert fetch(aggregates, live_poll)[0]["id"] == first.pk
    complete_next(live_poll)
    released = recompute_poll(live_poll.pk)
    assert released.released_at is not None and released.n_participants == 36 + K
    top_new, _ = fetch(aggregates, live_poll)
    assert top_new["id"] == released.pk and top_new["n_participants"] == 36 + K

    steps = list(
        ResultSnapshot.objects.filter(poll=live_poll, released_at__isnull=False)
        .order_by("computed_at", "id")
        .values_list("n_participants", flat=True)
    )
    assert steps == [36, 36 + K]
    assert all(b - a >= K for a, b in itertools.pairwise(steps))


def test_microdata_researchers_read_the_latest_snapshot(live_poll, microdata):
    recompute_poll(live_poll.pk)
    complete_next(live_poll)
    latest = recompute_poll(live_poll.pk)
    assert latest.released_at is None
    top, _ = fetch(microdata, live_poll)
    assert top["id"] == latest.pk and top["n_participants"] == 37


def test_webhooks_hear_only_of_released_snapshots(live_poll):
    first = recompute_poll(live_poll.pk)
    for _ in range(K - 1):
        complete_next(live_poll)
        recompute_poll(live_poll.pk)
    assert announced(live_poll) == [first.pk]
    complete_next(live_poll)
    released = recompute_poll(live_poll.pk)
    assert announced(live_poll) == [first.pk, released.pk]
    delivery = WebhookDelivery.objects.get(payload__data__snapshot_id=released.pk)
    assert delivery.payload["data"]["n_participants"] == 36 + K


def test_one_changed_participant_is_held_back_though_n_is_unchanged(live_poll, aggregates):
    """An import --replace changes a completed participant's answers, n stays the same."""
    first = recompute_poll(live_poll.pk)
    person = Participant.objects.filter(poll=live_poll, completed_at__isnull=False).first()
    answer = Answer.objects.filter(participant=person, number__isnull=False).first()
    Answer.objects.filter(pk=answer.pk).update(number=answer.number + 1, value=answer.number + 1)
    changed = recompute_poll(live_poll.pk)
    assert changed.pk != first.pk and changed.n_participants == first.n_participants
    assert changed.released_at is None
    assert fetch(aggregates, live_poll)[0]["id"] == first.pk


def test_a_withdrawal_counts_towards_the_step(live_poll, aggregates):
    """One participant removed: held back; with k - 1 completions the step covers k people."""
    first = recompute_poll(live_poll.pk)
    Participant.objects.filter(poll=live_poll, completed_at__isnull=False).first().delete()
    assert recompute_poll(live_poll.pk).released_at is None
    complete_next(live_poll, K - 2)
    assert recompute_poll(live_poll.pk).released_at is None
    assert fetch(aggregates, live_poll)[0]["id"] == first.pk
    complete_next(live_poll)
    released = recompute_poll(live_poll.pk)
    assert released.released_at is not None and released.n_participants == 36 - 1 + K - 1
    assert fetch(aggregates, live_poll)[0]["id"] == released.pk


def test_a_first_snapshot_under_k_is_not_released(live_poll, aggregates, microdata):
    """Below k, cells are suppressed but the counts (n, per arm) are not: it stays held back."""
    Poll.objects.filter(pk=live_poll.pk).update(min_subgroup_size=40)
    snapshot = recompute_poll(live_poll.pk)
    assert snapshot.released_at is None and snapshot.n_participants == 36
    assert WebhookDelivery.objects.count() == 0
    results = reverse("api:poll-results", kwargs={"slug": live_poll.slug})
    response = aggregates.get(results)
    assert response.status_code == 404 and "40 participants" in response.json()["detail"]
    assert microdata.get(results).json()["id"] == snapshot.pk
    complete_next(live_poll, 4)
    assert recompute_poll(live_poll.pk).released_at is not None
    assert aggregates.get(results).json()["n_participants"] == 40


def test_the_released_snapshot_survives_pruning(live_poll, aggregates, monkeypatch):
    monkeypatch.setattr(compute, "KEEP_SNAPSHOTS", 2)
    first = recompute_poll(live_poll.pk)
    for _ in range(K - 1):
        complete_next(live_poll)
        recompute_poll(live_poll.pk)
    assert ResultSnapshot.objects.filter(pk=first.pk).exists()
    assert fetch(aggregates, live_poll)[0]["id"] == first.pk


def test_snapshots_from_before_the_rule_release_by_count(live_poll):
    """A migrated snapshot has no record of who it included: only a count step of k releases."""
    legacy = ResultSnapshot.objects.create(
        poll=live_poll,
        n_participants=30,
        fingerprint="f" * 64,
        code_version="old",
        payload={},
        released_at=timezone.now(),
    )
    assert legacy.contributions is None
    others = {str(i): secrets.token_hex(8) for i in range(30 + K - 1)}
    assert not release_decision(others, n=30 + K - 1, released=legacy, k=K)
    assert release_decision({**others, "x": "y"}, n=30 + K, released=legacy, k=K)
