"""Celery tasks of the research API: building large exports, importing large uploads and
delivering webhooks.

The worker loads this module through ``CELERY_IMPORTS = ["results.jobs"]`` in the settings.
"""

from celery import shared_task

from results import webhooks


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
    from results.exports.import_jobs import run_import_job

    return run_import_job(job_id=job_id).state


@shared_task(name="results.jobs.purge_expired_exports")
def purge_expired_exports() -> int:
    from results.exports.package import purge_expired_exports as purge

    return purge()
