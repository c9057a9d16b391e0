"""Import jobs: API uploads over the inline limit, stored under MEDIA_ROOT/imports/ (a path the
site does not serve) and imported by a Celery task through the same ``import_responses`` as
uploads imported in the request, with progress, the summary or the row errors at the end, and the
file deleted either way."""

import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import IO, Any

from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.db import connection, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from results.access import may_import
from results.exports.imports import MAX_UPLOAD_BYTES, ImportFailed, import_responses
from results.models import ImportJob
from surveys.models import Poll

logger = logging.getLogger(__name__)

# First key of the two-int advisory lock that keeps a redelivered task off a running import.
IMPORT_LOCK_NAMESPACE = 4_400_102
PROGRESS_TTL_SECONDS = 24 * 3600
FINISHED = (ImportJob.State.DONE, ImportJob.State.FAILED)


def inline_limit() -> int:
    """API uploads up to this size are imported in the request, larger ones by an import job."""
    return getattr(settings, "IMPORT_INLINE_MAX_BYTES", MAX_UPLOAD_BYTES)


def too_large(size: int) -> str:
    return (
        f"the upload has {size:,} bytes; API uploads are limited to "
        f"{settings.IMPORT_MAX_BYTES:,} bytes (files over {inline_limit():,} bytes are imported "
        "in the background). Import larger files with manage.py importresponses."
    )


def _stored_name(*, replace: bool, dry_run: bool) -> str:
    # The options travel with the stored file's name (the job has no fields of its own for
    # them): ``<random>.replace.dry-run.csv``; see ``options_of``.
    flags = [flag for flag, on in (("replace", replace), ("dry-run", dry_run)) if on]
    return ".".join([uuid.uuid4().hex, *flags, "csv"])


def options_of(job: ImportJob) -> dict[str, bool]:
    """The import options the job was started with (read from its stored file's name)."""
    parts = set(job.upload.name.rsplit("/", 1)[-1].split(".")[1:-1]) if job.upload else set()
    return {"replace": "replace" in parts, "dry_run": "dry-run" in parts}


@transaction.atomic
def start_import_job(
    *,
    poll: Poll,
    user: Any,
    upload: File,
    enqueue: Callable[[int], object],
    replace: bool = False,
    dry_run: bool = False,
) -> ImportJob:
    """Store the upload under MEDIA_ROOT/imports/ (not served) and queue its import on commit:
    ``enqueue(job_id)`` sends the task (the caller passes it, so this module never imports the
    tasks that import it)."""
    job = ImportJob(poll=poll, user=user, size=upload.size, message="queued")
    job.upload.save(_stored_name(replace=replace, dry_run=dry_run), upload, save=False)
    try:
        job.save()
    except BaseException:
        job.upload.delete(save=False)
        raise
    # A rollback after this point (the caller's transaction) must not leave the file behind.
    transaction.on_commit(lambda: _enqueue(enqueue, job.pk), robust=True)
    return job


def _enqueue(enqueue: Callable[[int], object], job_id: int) -> None:
    try:
        enqueue(job_id)
    except OperationalError:
        _finish_unexpectedly(job_id, "failed: the job queue is unreachable; upload again later")
        raise


def _report(job_id: int, fraction: float, message: str) -> None:
    # Live progress goes to the cache: the job's row is written inside the import's transaction,
    # where nobody else could see it before the end.
    try:
        cache.set(
            f"results:import:{job_id}",
            {"progress": round(min(fraction, 1.0), 3), "message": message[:200]},
            PROGRESS_TTL_SECONDS,
        )
    except Exception:  # a cache outage must never fail the import itself
        logger.warning("could not record the progress of import job %s", job_id, exc_info=True)


def show_live_progress(job: ImportJob) -> ImportJob:
    """The job with the progress its worker last reported, while it runs (not saved)."""
    if job.state == ImportJob.State.RUNNING:
        try:
            live = cache.get(f"results:import:{job.pk}")
        except Exception:
            live = None
        if live:
            job.progress, job.message = live["progress"], live["message"]
    return job


def _about(number: float) -> int:
    digits = len(str(int(number)))
    return int(round(number, -max(0, digits - 2)))


def _progress_of(job: ImportJob, handle: IO[bytes]) -> Callable[[int], None]:
    def progress(rows: int) -> None:
        # The position in the file (a little ahead: the text reader buffers) gives the share done.
        done = min(handle.tell() / job.size, 1.0) if job.size else 1.0
        estimate = f" of about {_about(rows / done):,}" if done else ""
        _report(job.pk, 0.99 * done, f"row {rows:,}{estimate}")

    return progress


def _discard_upload(job_id: int) -> None:
    job = ImportJob.objects.get(pk=job_id)
    if job.upload:
        job.upload.delete(save=False)
        ImportJob.objects.filter(pk=job_id).update(upload="")


def _finish_unexpectedly(job_id: int, message: str) -> None:
    ImportJob.objects.exclude(state__in=FINISHED).filter(pk=job_id).update(
        state=ImportJob.State.FAILED, message=message[:200], finished_at=timezone.now()
    )
    _discard_upload(job_id)


def _claim(job_id: int) -> bool:
    """Hold the job's lock for the current transaction; False if another worker holds it."""
    if connection.vendor != "postgresql":
        return True  # SQLite (the embedded default) runs tasks eagerly, one at a time
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [IMPORT_LOCK_NAMESPACE, job_id])
        return bool(cursor.fetchone()[0])


def run_import_job(*, job_id: int, recompute: Callable[[int], object]) -> ImportJob:
    """Import the job's file with ``import_responses``, record the outcome, delete the file.

    Safe to run again (the task is acks_late): the import and the outcome commit together, so a
    killed worker leaves the job unfinished and its file in place for the redelivered task; a
    finished job is left alone; and a task redelivered while the first still runs (a long import
    outlasts the broker's visibility timeout) finds the job's lock taken and stops.
    """
    job = ImportJob.objects.select_related("poll", "user").get(pk=job_id)
    if job.state in FINISHED:
        _discard_upload(job_id)
        return job
    ImportJob.objects.exclude(state__in=FINISHED).filter(pk=job_id).update(
        state=ImportJob.State.RUNNING
    )
    try:
        with transaction.atomic():
            if not _claim(job_id):
                return job
            job = ImportJob.objects.select_related("poll", "user").get(pk=job_id)
            if job.state in FINISHED:
                return job
            _report(job_id, 0.0, "starting")  # only the worker holding the lock reports
            outcome: dict[str, Any] = {"progress": 1.0}
            if not may_import(job.user, job.poll):
                message = "failed: the grant no longer allows imports; nothing was imported"
                outcome.update(state=ImportJob.State.FAILED, message=message)
            elif not job.upload or not job.upload.storage.exists(job.upload.name):
                message = "failed: the uploaded file is gone; nothing was imported"
                outcome.update(state=ImportJob.State.FAILED, message=message)
            else:
                try:
                    with job.upload.open("rb") as handle:
                        result = import_responses(
                            poll=job.poll,
                            stream=handle,
                            recompute=recompute,
                            max_bytes=None,
                            progress=_progress_of(job, handle),
                            **options_of(job),
                        )
                except ImportFailed as failure:
                    outcome.update(
                        state=ImportJob.State.FAILED,
                        message=f"failed: {failure.summary()}",
                        errors=[asdict(e) for e in failure.errors],
                        errors_not_listed=failure.more,
                    )
                else:
                    outcome.update(
                        state=ImportJob.State.DONE,
                        message=result.summary().splitlines()[0][:200],
                        result=asdict(result),
                    )
            ImportJob.objects.filter(pk=job_id).update(**outcome, finished_at=timezone.now())
    except Exception:
        # The researcher is told that it failed, not the internals of why (the worker logs it).
        _finish_unexpectedly(job_id, "failed: an unexpected error; nothing was imported")
        raise
    _discard_upload(job_id)
    return ImportJob.objects.get(pk=job_id)
