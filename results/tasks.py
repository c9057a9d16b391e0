"""Celery tasks: thin adapters that take ids and call the function that does the work.

Recompute (``results.compute.recompute.recompute_poll``):

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

The research API's background work (exports, imports, webhook deliveries) has its tasks here too.
Their registered names keep the ``results.jobs.`` prefix of the module they used to live in:
messages already queued and the beat entries of a running deployment name them so, and a
renamed task would be an unknown task to the worker after a deploy.

The worker imports this module through ``CELERY_IMPORTS`` in the settings. Modules below it
(``results.webhooks``, the export and import jobs) never import it back: they enqueue by task
name or leave the enqueueing to their caller.
"""

import logging
import time

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import InterfaceError, OperationalError, connection, transaction

from results import webhooks
from results.compute import progress
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


class TrackedJobs:
    """The recompute jobs one task reports to: its own (if any) and those it takes over from a
    worker that died. Every outcome is written to each of them."""

    def __init__(self, poll_id: int, job_id: str | None) -> None:
        self.poll_id = poll_id
        self.own = job_id
        self.jobs = [job_id] if job_id else []

    def take_over(self) -> None:
        """Adopt the poll's jobs left running by a dead worker (called under the poll's lock)."""
        for orphan in progress.claim_poll(self.poll_id, self.own):
            progress.mark_running(
                orphan, self.poll_id, 0.0, "the worker stopped; a new recompute resumed"
            )
            self.jobs.append(orphan)

    def report(self, fraction: float, message: str) -> None:
        for job in self.jobs:
            progress.mark_running(job, self.poll_id, fraction, message)

    def failed(self, message: str) -> None:
        for job in self.jobs:
            progress.mark_failed(job, self.poll_id, message)

    def retrying(self, error: Exception) -> None:
        """A transient error: only this task's own job travels with its retry."""
        for job in self.jobs:
            if job == self.own:
                progress.mark_queued(
                    job, self.poll_id, f"retrying after a transient error: {error}"
                )
            else:
                progress.mark_failed(job, self.poll_id, f"{type(error).__name__}: {error}")

    def done(self, snapshot_id: int) -> None:
        for job in self.jobs:
            message = "done" if job == self.own else TAKEN_OVER_MESSAGE
            progress.mark_done(job, self.poll_id, snapshot_id, message)


@shared_task(
    bind=True,
    name="results.tasks.recompute",
    acks_late=True,
    reject_on_worker_lost=True,
    # Nobody reads the return value (a job's outcome lives in results.compute.progress), and
    # without a stored result publishing does not touch the result backend at all.
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
)
def recompute(self: Task, poll_id: int, job_id: str | None = None) -> int | None:
    """Recompute one poll; returns the snapshot id (None when another task covers it)."""
    _clear_queued(poll_id)
    if job_id and progress.is_finished(job_id):
        # Redelivered after its worker died, and another recompute already finished the job:
        # keep its outcome, just make sure the results are current.
        job_id = None
    try:
        return _recompute(self, poll_id, TrackedJobs(poll_id, job_id))
    finally:
        # Only once the job's outcome is stored, so the job is never left "running" unseen.
        if job_id:
            progress.release_poll(poll_id, job_id)


def _recompute(task: Task, poll_id: int, jobs: TrackedJobs) -> int | None:
    # Imported here, not at the top: web processes import this module to enqueue, and the
    # numeric stack (scipy, statsmodels, scikit-learn) would add seconds to their start-up.
    from results.compute.recompute import RecomputeBusy, recompute_poll

    try:
        # Eager (embedded) mode has no queue to come back to later: wait for the lock there.
        snapshot = recompute_poll(
            poll_id,
            progress=jobs.report,
            wait=bool(task.request.is_eager),
            on_locked=jobs.take_over,
        )
    except RecomputeBusy:
        return _follow_running_recompute(task, jobs)
    except Poll.DoesNotExist:
        jobs.failed("The poll no longer exists.")
        return None
    except (OperationalError, InterfaceError, SoftTimeLimitExceeded) as error:
        jobs.retrying(error)
        raise
    except Exception as error:
        jobs.failed(f"{type(error).__name__}: {error}")
        raise
    jobs.done(snapshot.pk)
    return snapshot.pk


def _follow_running_recompute(task: Task, jobs: TrackedJobs) -> None:
    """Another recompute of this poll is running and may have read the data before ours
    arrived: make sure exactly one task follows it."""
    if jobs.own:
        progress.mark_queued(jobs.own, jobs.poll_id, "waiting for the running recompute to finish")
    elif not _mark_queued(jobs.poll_id):
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
    job_id = progress.create_job(poll_id)
    try:
        recompute.apply_async((poll_id, job_id))
    except Exception as error:
        logger.warning("could not enqueue the recompute job %s", job_id, exc_info=True)
        progress.mark_failed(
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
    # Imported here for the start-up cost of the numeric stack (see _recompute).
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
    active = progress.active_jobs(list(Poll.objects.order_by("pk").values_list("pk", flat=True)))
    if not active:
        return []
    # Imported here for the start-up cost of the numeric stack (see _recompute).
    from results.compute.recompute import locked_poll_ids

    # Read after the active jobs: a recompute that starts in between holds its lock already.
    locked = locked_poll_ids()
    return [poll_id for poll_id in active if poll_id not in locked]


# The research API's background work. Names stay "results.jobs.*" (see the module docstring).


@shared_task(name="results.jobs.deliver_webhook")
def deliver_webhook(delivery_id: int) -> str:
    """One attempt, if the delivery is due. A failure sets the next due time (a growing delay)
    in the row, and ``send_due_webhooks`` sends it then: a lost message or a restarted worker
    neither resets the backoff nor exceeds the attempt limit, and an eager run never retries
    in a loop."""
    return webhooks.attempt_delivery(delivery_id=delivery_id).state


@shared_task(name="results.jobs.send_due_webhooks")
def send_due_webhooks() -> int:
    """Beat: queue every pending delivery that is due (retries, and any whose message was lost)."""
    due = webhooks.due_deliveries()
    for delivery_id in due:
        webhooks.dispatch(delivery_id)
    return len(due)


@shared_task(name="results.jobs.build_export", time_limit=3600, soft_time_limit=3500)
def build_export(job_id: int) -> str:
    # Imported here: the file writers load pandas, pyarrow and pyreadstat (about 0.4 s), which
    # every process importing this module would pay: each management command and beat (through
    # the admin's autodiscovery). Web processes load them anyway with the API's views.
    from results.exports.package import run_export_job

    return run_export_job(job_id=job_id).state


@shared_task(
    name="results.jobs.run_import",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=3 * 3600,
    soft_time_limit=3 * 3600 - 60,
)
def run_import(job_id: int) -> str:
    """Import a stored upload. acks_late: a worker killed mid-import leaves nothing stored (one
    transaction) and the message is delivered again; see ``run_import_job``."""
    # Imported here for the start-up cost of the export and import stack (see build_export).
    from results.exports.import_jobs import run_import_job

    return run_import_job(job_id=job_id, recompute=schedule_recompute).state


@shared_task(name="results.jobs.purge_expired_exports")
def purge_expired_exports() -> int:
    # Imported here for the start-up cost of the export stack (see build_export).
    from results.exports.package import purge_expired_exports as purge

    return purge()
