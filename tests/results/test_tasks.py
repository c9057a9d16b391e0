"""Triggers of recomputes: coalescing, the advisory lock, job progress and the reconciler."""

import time

import psycopg
import pytest
import redis
from django.core.cache import cache
from django.db import connection, transaction

from results import tasks
from results.compute import progress as jobs
from results.compute.progress import UnknownJob, job_status
from results.compute.recompute import LOCK_NAMESPACE, RecomputeBusy, recompute_poll, stale_poll_ids
from results.models import ResultSnapshot
from results.simulate import add_simulated_participants
from surveys.models import Answer


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    """Job states and queued markers live in the cache, which outlives a test."""
    cache.clear()


@pytest.fixture
def small_seed(seed_poll):
    add_simulated_participants(poll=seed_poll, n=30, seed=1, group_size=15)
    return seed_poll


@pytest.mark.django_db
def test_request_recompute_reports_a_finished_job_with_its_snapshot(small_seed):
    job_id = tasks.request_recompute(small_seed.pk)  # eager in the embedded default
    status = job_status(job_id)
    assert status["state"] == "done"
    assert status["progress"] == 1.0
    assert status["snapshot_id"] == ResultSnapshot.objects.get(poll=small_seed).pk
    assert status["error"] is None


@pytest.mark.django_db
def test_unknown_jobs_are_reported_as_not_found():
    with pytest.raises(UnknownJob):
        job_status("no-such-job")


@pytest.mark.django_db
def test_a_job_for_a_deleted_poll_fails_with_a_clear_error(small_seed):
    poll_id = small_seed.pk
    Answer.objects.filter(poll_id=poll_id).delete()
    small_seed.delete()
    status = job_status(tasks.request_recompute(poll_id))
    assert status["state"] == "failed"
    assert "no longer exists" in status["error"]


@pytest.mark.django_db
def test_completion_enqueues_only_on_commit(small_seed, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        tasks.schedule_recompute(small_seed.pk)
        assert not ResultSnapshot.objects.exists()
    assert len(callbacks) == 1
    assert ResultSnapshot.objects.filter(poll=small_seed).count() == 1


@pytest.mark.services
@pytest.mark.django_db
def test_many_completions_of_one_poll_queue_a_single_recompute(small_seed, celery_on_redis):
    from deliberate.celery import app

    app.amqp._producer_pool = None  # celery_on_redis keeps a producer pool made before it
    queue = redis.Redis.from_url(celery_on_redis)
    sent = [tasks.enqueue_recompute(small_seed.pk) for _ in range(25)]
    assert sent.count(True) == 1
    assert queue.llen("celery") == 1
    tasks.enqueue_recompute(small_seed.pk + 1)  # another poll has its own marker
    assert queue.llen("celery") == 2


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_recompute_does_not_start_while_another_holds_the_polls_lock(small_seed):
    s = connection.settings_dict
    dsn = f"host={s['HOST']} port={s['PORT']} user={s['USER']} dbname={s['NAME']}"
    with psycopg.connect(dsn) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, small_seed.pk))
        with pytest.raises(RecomputeBusy):
            recompute_poll(small_seed.pk, wait=False)
        other.execute("ROLLBACK")
    assert recompute_poll(small_seed.pk, wait=False).n_participants == 30


@pytest.mark.django_db
def test_reconciler_finds_polls_whose_answers_are_newer_than_their_snapshot(small_seed):
    assert stale_poll_ids() == [small_seed.pk]
    recompute_poll(small_seed.pk)
    assert stale_poll_ids() == []
    add_simulated_participants(poll=small_seed, n=5, seed=2, group_size=15)
    assert stale_poll_ids() == [small_seed.pk]
    assert tasks.reconcile() == [small_seed.pk]  # eager: recomputed on the spot
    assert stale_poll_ids() == []


@pytest.mark.django_db
def test_reconciler_catches_a_completion_committed_with_an_older_answer_time(small_seed):
    recompute_poll(small_seed.pk)
    snapshot = ResultSnapshot.objects.get(poll=small_seed)
    # A completion whose transaction started before the snapshot's newest answer.
    add_simulated_participants(poll=small_seed, n=1, seed=3, group_size=15)
    Answer.objects.filter(poll=small_seed).update(answered_at=snapshot.data_as_of)
    assert stale_poll_ids() == [small_seed.pk]


@pytest.mark.django_db
def test_reconciler_recomputes_after_the_analysis_code_changes(small_seed):
    snapshot = recompute_poll(small_seed.pk)
    ResultSnapshot.objects.filter(pk=snapshot.pk).update(code_version="0+old")
    assert stale_poll_ids() == [small_seed.pk]


def dead_workers_job(poll_id: int) -> str:
    """A job left as a worker killed with ``kill -9`` leaves it: running, the poll's active
    job, and no database session holding the poll's lock."""
    job_id = jobs.create_job(poll_id)
    jobs.mark_running(job_id, poll_id, 0.3, "reading answers")
    assert jobs.claim_poll(poll_id, job_id) == []
    return job_id


@pytest.mark.django_db
def test_the_reconciler_recomputes_a_poll_whose_job_lost_its_worker_and_finishes_the_job(
    small_seed,
):
    job_id = dead_workers_job(small_seed.pk)
    assert tasks.orphaned_poll_ids() == [small_seed.pk]
    assert tasks.reconcile() == [small_seed.pk]  # eager: recomputed on the spot
    status = job_status(job_id)
    assert status["state"] == "done"
    assert status["snapshot_id"] == ResultSnapshot.objects.get(poll=small_seed).pk
    assert status["message"] == tasks.TAKEN_OVER_MESSAGE
    assert tasks.orphaned_poll_ids() == []


@pytest.mark.django_db(transaction=True)  # the first recompute's lock ends with its commit
def test_a_dead_workers_job_is_finished_even_when_the_results_are_already_current(small_seed):
    snapshot = recompute_poll(small_seed.pk)
    job_id = dead_workers_job(small_seed.pk)
    assert stale_poll_ids() == []
    assert tasks.reconcile() == [small_seed.pk]
    assert job_status(job_id)["snapshot_id"] == snapshot.pk
    assert ResultSnapshot.objects.filter(poll=small_seed).count() == 1


@pytest.mark.django_db
def test_a_redelivered_task_of_a_job_already_taken_over_keeps_the_jobs_outcome(small_seed):
    job_id = dead_workers_job(small_seed.pk)
    tasks.reconcile()
    finished = job_status(job_id)
    # Redis delivers the killed worker's message again once its visibility timeout expires.
    tasks.recompute.apply(args=(small_seed.pk, job_id))
    assert job_status(job_id) == finished
    assert ResultSnapshot.objects.filter(poll=small_seed).count() == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_job_whose_recompute_still_holds_the_polls_lock_is_not_taken_over(small_seed):
    job_id = dead_workers_job(small_seed.pk)
    s = connection.settings_dict
    dsn = f"host={s['HOST']} port={s['PORT']} user={s['USER']} dbname={s['NAME']}"
    with psycopg.connect(dsn) as other:
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, small_seed.pk))
        assert tasks.orphaned_poll_ids() == []
        other.execute("ROLLBACK")
    assert tasks.orphaned_poll_ids() == [small_seed.pk]
    assert job_status(job_id)["state"] == "running"


@pytest.mark.services
@pytest.mark.django_db
def test_the_reconciler_sends_again_a_recompute_queued_so_long_ago_it_looks_lost(
    small_seed, celery_on_redis
):
    from deliberate.celery import app

    app.amqp._producer_pool = None  # celery_on_redis keeps a producer pool made before it
    queue = redis.Redis.from_url(celery_on_redis)
    assert tasks.enqueue_recompute(small_seed.pk)
    assert not tasks.enqueue_recompute(small_seed.pk, requeue_after=tasks.REQUEUE_AFTER_SECONDS)
    long_ago = time.time() - tasks.REQUEUE_AFTER_SECONDS - 1
    cache.set(tasks.queued_key(small_seed.pk), long_ago, tasks.QUEUED_TTL_SECONDS)
    assert not tasks.enqueue_recompute(small_seed.pk)  # a completion still coalesces
    assert tasks.enqueue_recompute(small_seed.pk, requeue_after=tasks.REQUEUE_AFTER_SECONDS)
    assert queue.llen("celery") == 2
