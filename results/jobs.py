"""Celery tasks of the research API: building large exports and delivering webhooks.

The worker loads this module through ``CELERY_IMPORTS = ["results.jobs"]`` in the settings.
"""

from celery import shared_task

from results import webhooks
from results.models import WebhookDelivery


@shared_task(name="results.jobs.deliver_webhook")
def deliver_webhook(delivery_id: int) -> str:
    """One attempt; a failure schedules the next one after a growing delay.

    The attempt count lives in the delivery row, not in Celery's retry state, so a lost
    message or a restarted worker neither resets the backoff nor exceeds the attempt limit.
    """
    delivery = webhooks.attempt_delivery(delivery_id=delivery_id)
    if delivery.state == WebhookDelivery.State.PENDING:
        deliver_webhook.apply_async(
            (delivery_id,), countdown=webhooks.backoff_seconds(delivery.attempts)
        )
    return delivery.state


@shared_task(name="results.jobs.build_export", time_limit=3600, soft_time_limit=3500)
def build_export(job_id: int) -> str:
    from results.package import run_export_job

    return run_export_job(job_id=job_id).state


@shared_task(name="results.jobs.purge_expired_exports")
def purge_expired_exports() -> int:
    from results.package import purge_expired_exports as purge

    return purge()
