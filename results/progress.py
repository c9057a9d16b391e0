"""Progress of recompute jobs, kept in the Django cache so the web process and the worker share
it (Redis when REDIS_URL is set; the in-process LocMem cache in the embedded eager default).

Progress is advisory: a cache that is down never fails a recompute, it only leaves the job's
last known state in place (the snapshot itself lives in PostgreSQL).
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
