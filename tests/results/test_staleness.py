"""When results are stale: the snapshot's "as of" and the reconciler's test mean the same thing.

A poll is stale exactly when data that enters its results (answers and completions of
participants who completed) changed after the latest snapshot's ``data_as_of``, its number of
completed participants differs, or the analysis code changed. Participants still in progress
never make a poll stale, and a recompute that finds nothing new records that it looked.
"""

import logging
import time

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from results import tasks
from results.compute.recompute import recompute_poll, stale_poll_ids
from results.models import ResultSnapshot
from results.simulate import add_simulated_participants
from surveys.models import Answer, Participant, Poll
from tests.factories import make_poll
from tests.surveys.test_journey import T1_PAGES, post_page, start, walk

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    """Queued markers live in the cache, which outlives a test."""
    cache.clear()


@pytest.fixture
def poll() -> Poll:
    poll = make_poll(design={"control_share": 0.5, "group_size": 4})
    for _ in range(3):
        client = Client()
        walk(client, poll, start(client, poll))
    # The completions' recomputes run on commit, which a test's transaction never reaches.
    recompute_poll(poll.pk)
    return poll


def leave_mid_t1(poll: Poll) -> Participant:
    """A participant who answers the first two T1 pages and closes the browser."""
    client = Client()
    participant = start(client, poll)
    location = post_page(client, f"/p/{poll.slug}/t1/1/", T1_PAGES[0], wave=1)
    post_page(client, location, T1_PAGES[1], wave=1)
    assert Answer.objects.filter(participant=participant).exists()
    return participant


def test_a_participant_who_leaves_mid_t1_causes_no_recompute(poll: Poll) -> None:
    assert stale_poll_ids() == []
    leave_mid_t1(poll)
    for _ in range(10):  # ten reconciler intervals
        assert tasks.reconcile() == []
    assert ResultSnapshot.objects.filter(poll=poll).count() == 1


def test_after_the_first_recompute_that_follows_their_answers_no_other_runs(poll: Poll) -> None:
    ResultSnapshot.objects.filter(poll=poll).delete()
    leave_mid_t1(poll)
    assert tasks.reconcile() == [poll.pk]
    assert [tasks.reconcile() for _ in range(10)] == [[]] * 10
    assert ResultSnapshot.objects.filter(poll=poll).count() == 1


def test_a_poll_with_only_unfinished_participants_is_never_stale() -> None:
    poll = make_poll(design={"control_share": 0.5, "group_size": 4})
    leave_mid_t1(poll)
    assert stale_poll_ids() == []
    # An explicit recompute stores an empty snapshot, which is then current too.
    snapshot = recompute_poll(poll.pk)
    assert snapshot.n_participants == 0 and snapshot.data_as_of is None
    assert stale_poll_ids() == []


def test_the_snapshot_is_as_of_its_last_completion_so_no_completion_looks_newer(
    poll: Poll,
) -> None:
    # The admin's "N completions since" counts completions after data_as_of: a completion is
    # stamped a moment before its last answers are saved, and must not count as newer.
    snapshot = ResultSnapshot.objects.latest_for(poll)
    assert snapshot is not None and snapshot.n_participants == 3
    assert not poll.participants.completed().filter(completed_at__gt=snapshot.data_as_of)
    newest_answer = max(Answer.objects.filter(poll=poll).values_list("answered_at", flat=True))
    newest_completion = max(poll.participants.values_list("completed_at", flat=True))
    assert snapshot.data_as_of == max(newest_answer, newest_completion)


def test_a_recompute_that_finds_nothing_new_records_it_and_the_poll_is_current(
    poll: Poll,
) -> None:
    snapshot = ResultSnapshot.objects.latest_for(poll)
    assert snapshot is not None
    # A completed participant's answer saved again with the same value: newer data, same
    # results.
    answer = Answer.objects.filter(poll=poll, participant__completed_at__isnull=False).first()
    answer.save()
    assert answer.answered_at > snapshot.data_as_of
    assert stale_poll_ids() == [poll.pk]

    assert tasks.reconcile() == [poll.pk]

    assert ResultSnapshot.objects.filter(poll=poll).count() == 1
    confirmed = ResultSnapshot.objects.get(pk=snapshot.pk)
    assert confirmed.data_as_of == answer.answered_at
    assert confirmed.checked_at > snapshot.checked_at
    assert confirmed.payload == snapshot.payload
    assert stale_poll_ids() == []


def test_a_closed_poll_is_left_alone_while_current_and_recomputed_when_its_data_changes(
    poll: Poll,
) -> None:
    leave_mid_t1(poll)
    Poll.objects.filter(pk=poll.pk).update(status=Poll.Status.CLOSED)
    assert stale_poll_ids() == []
    add_simulated_participants(poll=poll, n=2, seed=5, group_size=4)  # e.g. an import
    assert stale_poll_ids() == [poll.pk]


def test_a_removed_participant_makes_the_poll_stale(poll: Poll) -> None:
    poll.participants.completed().first().delete()
    assert stale_poll_ids() == [poll.pk]


def test_the_reconciler_logs_and_returns_only_the_recomputes_it_sent(
    poll: Poll, caplog: pytest.LogCaptureFixture
) -> None:
    Answer.objects.filter(poll=poll).update(answered_at=timezone.now())
    # A recompute of this poll is already waiting (queued a moment ago): nothing is sent.
    cache.add(tasks.queued_key(poll.pk), time.time(), 60)
    with caplog.at_level(logging.INFO, logger="results.tasks"):
        assert tasks.reconcile() == []
    assert "enqueued" not in caplog.text
    assert f"left polls [{poll.pk}] as they were" in caplog.text
