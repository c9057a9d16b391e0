"""Thin Celery tasks: they take ids and call results.compute.recompute.

Triggers and coalescing:

* A completion calls ``schedule_recompute(poll_id)``; on commit ``enqueue_recompute`` sends one
  ``recompute`` task unless one is already waiting for that poll (a ``results:queued:<poll>``
  marker added atomically in the cache). The task clears the marker as it starts, *before* it
  reads the data, so a completion committed after that point enqueues a fresh task: the latest
  data is always included eventually, and a burst of completions costs one or two recomputes.
* A task that finds the poll locked by a running recompute re-marks the poll and retries a
  little later, or simply ends if another task is already waiting: never two at once, and at
  most one waiting.
* ``request_recompute`` (admin button, API) always sends its own task with a job id whose
  progress ``results.compute.progress.job_status`` reports.
* ``reconcile`` (beat) enqueues every poll whose data is newer than its latest snapshot: the
  safety net when Redis was down while participants completed, or a worker died mid-task.

Enqueueing never fails the caller: with the broker down the error is logged, the participant
still gets the finish page, and the reconciler catches up once Redis is back.
"""

import logging
import time

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction

from results.compute import progress as jobs
from surveys.models import Poll

logger = logging.getLogger(__name__)

QUEUED_TTL_SECONDS = 2 * settings.CELERY_TASK_TIME_LIMIT
BUSY_RETRY_SECONDS = 2
BUSY_MAX_RETRIES = settings.CELERY_TASK_TIME_LIMIT // BUSY_RETRY_SECONDS
# After a failed publish this process stops trying for a while, so that with Redis down each
# participant's finish page is not delayed by connection timeouts; the reconciler catches up.
BROKER_BACKOFF_SECONDS = 10.0
# A recompute queued longer ago than this while the poll is still stale is presumed lost (held
# by a killed worker until the visibility timeout); the reconciler sends another.
REQUEUE_AFTER_SECONDS = 60.0
TAKEN_OVER_MESSAGE = "done by a new recompute after the first worker stopped"
_broker_down_until = 0.0


def queued_key(poll_id: int) -> str:
    return f"results:queued:{poll_id}"


def _clear_queued(poll_id: int) -> None:
    try:
        cache.delete(queued_key(poll_id))
    except Exception:
        logger.warning("could not clear the queued marker of poll %s", poll_id, exc_info=True)


@shared_task(
    bind=True,
    name="results.tasks.recompute",
    acks_late=True,
    reject_on_worker_lost=True,
    # Nobody reads the return value (a job's outcome lives in results.compute.progress), and without
    # a stored result publishing does not touch the result backend at all.
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
)
def recompute(self, poll_id: int, job_id: str | None = None) -> int | None:  # noqa: ANN001
    """Recompute one poll; returns the snapshot id (None when another task covers it)."""
    _clear_queued(poll_id)
    if job_id and jobs.is_finished(job_id):
        # Redelivered after its worker died, and another recompute already finished the job:
        # keep its outcome, just make sure the results are current.
        job_id = None
    try:
        return _recompute(self, poll_id, job_id)
    finally:
        # Only once the job's outcome is stored, so the job is never left "running" unseen.
        if job_id:
            jobs.release_poll(poll_id, job_id)


def _recompute(task: Task, poll_id: int, job_id: str | None) -> int | None:
    tracked = [job_id] if job_id else []

    def take_over() -> None:
        for orphan in jobs.claim_poll(poll_id, job_id):
            jobs.mark_running(orphan, poll_id, 0.0, "the worker stopped; a new recompute resumed")
            tracked.append(orphan)

    def report(fraction: float, message: str) -> None:
        for job in tracked:
            jobs.mark_running(job, poll_id, fraction, message)

    # Imported here, not at the top: web processes import this module to enqueue, and the
    # numeric stack (scipy, statsmodels, scikit-learn) would add seconds to their start-up.
    from results.compute.recompute import RecomputeBusy, recompute_poll

    try:
        # Eager (embedded) mode has no queue to come back to later: wait for the lock there.
        snapshot = recompute_poll(
            poll_id, progress=report, wait=bool(task.request.is_eager), on_locked=take_over
        )
    except RecomputeBusy:
        snapshot = None
    except Poll.DoesNotExist:
        for job in tracked:
            jobs.mark_failed(job, poll_id, "The poll no longer exists.")
        return None
    except (OperationalError, InterfaceError, SoftTimeLimitExceeded) as error:
        for job in tracked:
            if job == job_id:
                jobs.mark_queued(job, poll_id, f"retrying after a transient error: {error}")
            else:  # only this task's own job travels with its retry
                jobs.mark_failed(job, poll_id, f"{type(error).__name__}: {error}")
        raise
    except Exception as error:
        for job in tracked:
            jobs.mark_failed(job, poll_id, f"{type(error).__name__}: {error}")
        raise
    if snapshot is not None:
        for job in tracked:
            message = "done" if job == job_id else TAKEN_OVER_MESSAGE
            jobs.mark_done(job, poll_id, snapshot.pk, message)
        return snapshot.pk
    # Another recompute of this poll is running and may have read the data before ours
    # arrived: make sure exactly one task follows it.
    if job_id:
        jobs.mark_queued(job_id, poll_id, "waiting for the running recompute to finish")
    elif not _mark_queued(poll_id):
        return None
    raise task.retry(countdown=BUSY_RETRY_SECONDS, max_retries=BUSY_MAX_RETRIES)


def _mark_queued(poll_id: int) -> bool:
    try:
        return bool(cache.add(queued_key(poll_id), time.time(), QUEUED_TTL_SECONDS))
    except Exception:
        logger.warning("could not mark poll %s as queued", poll_id, exc_info=True)
        return True  # no cache: better a redundant recompute than a lost one


def _claim_queued(poll_id: int, requeue_after: float | None) -> bool:
    """Set the poll's queued marker; False when a task is already waiting. With
    ``requeue_after``, a marker older than that many seconds counts as lost and is replaced."""
    key = queued_key(poll_id)
    if cache.add(key, time.time(), QUEUED_TTL_SECONDS):
        return True
    if requeue_after is None:
        return False
    marked = cache.get(key)
    if isinstance(marked, float) and time.time() - marked < requeue_after:
        return False
    logger.warning("the queued recompute of poll %s looks lost; sending another", poll_id)
    cache.set(key, time.time(), QUEUED_TTL_SECONDS)
    return True


def enqueue_recompute(poll_id: int, *, requeue_after: float | None = None) -> bool:
    """Send a coalesced recompute of the poll; False when one is already waiting or the
    broker is unreachable (logged; the reconciler covers it). Never raises.

    ``requeue_after`` (the reconciler's) sends anyway when the waiting task was queued that
    many seconds ago: its message may sit with a killed worker until Redis's visibility
    timeout redelivers it, and a redundant recompute costs little (lock and fingerprint)."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.info("broker recently unreachable; poll %s left to the reconciler", poll_id)
        return False
    try:
        if not _claim_queued(poll_id, requeue_after):
            return False
        try:
            recompute.apply_async((poll_id,))
        except Exception:
            _clear_queued(poll_id)
            raise
    except Exception:
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning("could not enqueue a recompute of poll %s", poll_id, exc_info=True)
        return False
    return True


def schedule_recompute(poll_id: int) -> None:
    """Ask for a recompute of the poll once the current transaction commits.

    Robust: if the broker is unreachable the error is logged and swallowed, so a participant's
    submission still succeeds; the beat reconciler picks the poll up later.
    """
    # A lambda, not functools.partial: Django 5.2's robust on_commit needs a __qualname__.
    transaction.on_commit(lambda: enqueue_recompute(poll_id), robust=True)


def request_recompute(poll_id: int) -> str:
    """Start a recompute for the admin or the API and return its job id (see job_status).

    If the broker is unreachable the job is reported failed with the reason.
    """
    job_id = jobs.create_job(poll_id)
    try:
        recompute.apply_async((poll_id, job_id))
    except Exception as error:
        logger.warning("could not enqueue the recompute job %s", job_id, exc_info=True)
        jobs.mark_failed(
            job_id,
            poll_id,
            f"The task queue is unreachable ({type(error).__name__}); the results will be "
            "brought up to date automatically once it is back.",
        )
    return job_id


@shared_task(
    name="results.tasks.reconcile",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
    time_limit=120,
    soft_time_limit=100,
)
def reconcile() -> list[int]:
    """Enqueue a recompute of every poll whose results are stale or whose job lost its
    worker; returns the ids of the polls a recompute was actually sent for."""
    global _broker_down_until
    # The beat's own delivery proves the broker is back: publish again at once.
    _broker_down_until = 0.0
    from results.compute.recompute import stale_poll_ids

    polls = sorted(set(stale_poll_ids()) | set(orphaned_poll_ids()))
    sent = [
        poll_id
        for poll_id in polls
        if enqueue_recompute(poll_id, requeue_after=REQUEUE_AFTER_SECONDS)
    ]
    if sent:
        logger.info("reconciler enqueued recomputes of polls %s", sent)
    if len(sent) < len(polls):
        # Already queued (coalesced) or the broker is unreachable: not sent, so not claimed.
        logger.info(
            "reconciler left polls %s as they were (a recompute is already waiting, or the "
            "broker is unreachable)",
            [poll_id for poll_id in polls if poll_id not in sent],
        )
    return sent


def orphaned_poll_ids() -> list[int]:
    """Polls with an active job but no recompute holding their lock: the job's worker died
    (PostgreSQL only: elsewhere recomputes run in-process and die with their job)."""
    if connection.vendor != "postgresql":
        return []
    active = jobs.active_jobs(list(Poll.objects.order_by("pk").values_list("pk", flat=True)))
    if not active:
        return []
    from results.compute.recompute import locked_poll_ids

    # Read after the active jobs: a recompute that starts in between holds its lock already.
    locked = locked_poll_ids()
    return [poll_id for poll_id in active if poll_id not in locked]
