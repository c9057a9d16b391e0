"""A real Celery worker on the machine's Redis, reading the PostgreSQL test database."""

import subprocess

import pytest
from celery.result import AsyncResult
from django.db import transaction

from deliberate.celery import ping

pytestmark = pytest.mark.services


def test_task_enqueued_on_commit_is_run_by_a_real_worker(
    celery_worker_process: subprocess.Popen,
) -> None:
    sent: list[AsyncResult] = []
    with transaction.atomic():
        transaction.on_commit(lambda: sent.append(ping.delay()), robust=True)
        assert sent == [], "nothing may be enqueued before the commit"
    assert len(sent) == 1
    assert sent[0].get(timeout=20) == "pong"
