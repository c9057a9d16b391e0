"""Thin Celery tasks: they take ids and call results.compute."""

from celery import shared_task
from django.db import transaction


@shared_task(name="results.tasks.recompute")
def recompute(poll_id: int) -> None:
    from results.compute import recompute_poll

    recompute_poll(poll_id)


def schedule_recompute(poll_id: int) -> None:
    """Ask for a recompute of the poll once the current transaction commits.

    Robust: if the broker is unreachable the error is logged and swallowed, so a participant's
    submission still succeeds; the beat reconciler picks the poll up later.
    """
    # A lambda, not functools.partial: Django 5.2's robust on_commit needs a __qualname__.
    transaction.on_commit(lambda: recompute.delay(poll_id), robust=True)
