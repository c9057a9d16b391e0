"""Progress of recompute jobs, kept in the Django cache so the web process and the worker share
it (Redis when REDIS_URL is set; the in-process LocMem cache in the embedded eager default).

Progress is advisory: a cache that is down never fails a recompute, it only leaves the job's
last known state in place (the snapshot itself lives in PostgreSQL).

Jobs of dead workers: a recompute that holds a poll's lock records its job as the poll's
*active* job (``claim_poll``) and clears it once the job's outcome is stored
(``release_poll``). A worker killed with ``kill -9`` leaves its job "running" and the poll's
active job in place, and Redis redelivers its task only after the visibility timeout (twice the
task time limit). The next recompute of the poll, which holds the lock and so knows that nobody
else is computing, finds that job in ``claim_poll`` and takes it over: the job reports that
recompute's progress and ends with its snapshot or its error. The reconciler looks for such
polls (``active_jobs``) so that a job is taken over even when the data did not change.
"""

import logging
import uuid
from typing import Any, TypedDict

from django.core.cache import cache
from django.http import Http404

logger = logging.getLogger(__name__)

JOB_TTL_SECONDS = 24 * 3600
STATES = ("queued", "running", "done", "failed")


class JobStatus(TypedDict):
    state: str
    progress: float
    message: str
    snapshot_id: int | None
    error: str | None
    poll_id: int


class UnknownJob(Http404, LookupError):
    """No job with this id (never created, or expired after a day): a 404 in views and the API."""


def _key(job_id: str) -> str:
    return f"results:job:{job_id}"


def _active_key(poll_id: int) -> str:
    return f"results:active:{poll_id}"


def _store(job_id: str, status: dict[str, Any]) -> None:
    try:
        cache.set(_key(job_id), status, JOB_TTL_SECONDS)
    except Exception:  # a cache outage must never fail the recompute itself
        logger.warning("could not record the progress of job %s", job_id, exc_info=True)


def create_job(poll_id: int) -> str:
    job_id = uuid.uuid4().hex
    _store(job_id, _status(poll_id, "queued", 0.0, "waiting for a worker"))
    return job_id


def _status(
    poll_id: int,
    state: str,
    progress: float,
    message: str,
    snapshot_id: int | None = None,
    error: str | None = None,
) -> JobStatus:
    return {
        "state": state,
        "progress": round(min(max(progress, 0.0), 1.0), 3),
        "message": message,
        "snapshot_id": snapshot_id,
        "error": error,
        "poll_id": poll_id,
    }


def _load(job_id: str) -> JobStatus | None:
    try:
        return cache.get(_key(job_id))
    except Exception:
        logger.warning("could not read the progress of job %s", job_id, exc_info=True)
        return None


def is_finished(job_id: str) -> bool:
    """True when the job already ended, done or failed (read errors count as not finished)."""
    status = _load(job_id)
    return status is not None and status["state"] in ("done", "failed")


def claim_poll(poll_id: int, job_id: str | None) -> list[str]:
    """Record ``job_id`` as the poll's active job; call only while holding the poll's lock.

    Returns the jobs to take over: a previous active job still "running" belongs to a recompute
    that no longer holds the lock, so its worker died. Never raises.
    """
    try:
        previous = cache.get(_active_key(poll_id))
        if job_id:
            cache.set(_active_key(poll_id), job_id, JOB_TTL_SECONDS)
        elif previous is not None:
            cache.delete(_active_key(poll_id))
    except Exception:
        logger.warning("could not record the active job of poll %s", poll_id, exc_info=True)
        return []
    if not previous or previous == job_id:
        return []
    status = _load(previous)
    if status is None or status["state"] != "running":
        return []
    logger.warning(
        "job %s of poll %s lost its worker; a new recompute takes over", previous, poll_id
    )
    return [previous]


def release_poll(poll_id: int, job_id: str) -> None:
    """Forget the poll's active job once its outcome is stored, unless another job took its
    place meanwhile. Never raises."""
    try:
        if cache.get(_active_key(poll_id)) == job_id:
            cache.delete(_active_key(poll_id))
    except Exception:
        logger.warning("could not clear the active job of poll %s", poll_id, exc_info=True)


def active_jobs(poll_ids: list[int]) -> dict[int, str]:
    """{poll id: job id} of the given polls that have an active job. Never raises."""
    try:
        found = cache.get_many([_active_key(poll_id) for poll_id in poll_ids])
    except Exception:
        logger.warning("could not read the active jobs", exc_info=True)
        return {}
    return {
        poll_id: found[_active_key(poll_id)]
        for poll_id in poll_ids
        if _active_key(poll_id) in found
    }


def mark_running(job_id: str, poll_id: int, progress: float, message: str) -> None:
    _store(job_id, _status(poll_id, "running", progress, message))


def mark_queued(job_id: str, poll_id: int, message: str) -> None:
    _store(job_id, _status(poll_id, "queued", 0.0, message))


def mark_done(job_id: str, poll_id: int, snapshot_id: int, message: str = "done") -> None:
    _store(job_id, _status(poll_id, "done", 1.0, message, snapshot_id=snapshot_id))


def mark_failed(job_id: str, poll_id: int, error: str) -> None:
    _store(job_id, _status(poll_id, "failed", 0.0, "the recompute failed", error=error))


def job_status(job_id: str) -> JobStatus:
    """The job's state ('queued', 'running', 'done', 'failed'), progress 0..1, message,
    snapshot_id (when done) and error (when failed). Raises UnknownJob for an unknown id."""
    status = cache.get(_key(job_id))
    if status is None:
        raise UnknownJob(job_id)
    return status
