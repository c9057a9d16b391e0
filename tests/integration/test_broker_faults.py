"""The worker and the reconciler under broker faults, with real processes: a private
redis-server killed under a running recompute, a worker run as the README runs it (prefork
pool), beat's reconciler, and the PostgreSQL test database.
"""

import re
import time

import pytest
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from deliberate.celery import app
from results.compute.progress import job_status
from results.models import ResultSnapshot
from results.simulate import add_simulated_participants
from results.tasks import request_recompute
from surveys.models import Poll
from tests.conftest import reset_celery_pools
from tests.factories import make_poll
from tests.integration.processes import (
    PRODUCTION_FLAGS,
    RECONCILE_SECONDS,
    RECOVERY_TIMEOUT,
    PrivateRedis,
    Processes,
    offline_payload,
    other_connection,
    payload_differences,
    wait_until,
)
from tests.results.test_staleness import leave_mid_t1
from tests.surveys.test_journey import start, walk

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def kill_and_restart_empty(redis: PrivateRedis, worker_log: callable) -> None:
    """``kill -9`` of the Redis server; once the worker has noticed, a new one on the same port,
    empty, as after losing its data."""
    assert redis.process is not None
    redis.process.kill()
    redis.process.wait(10)
    wait_until(
        lambda: "Connection to broker lost" in worker_log(), 30, "the worker to notice Redis died"
    )
    redis.start()
    reset_celery_pools(app)  # this process's own connections died with the old server


def answers_ping(name: str) -> bool:
    try:
        replies = app.control.ping(timeout=1)
    except (OSError, RedisConnectionError):  # a pooled connection to the killed server
        reset_celery_pools(app)
        return False
    return any(key.startswith(f"{name}@") for reply in replies for key in reply)


def test_a_worker_survives_redis_dying_under_a_running_recompute_and_results_catch_up(
    processes: Processes, populated_poll: Poll
) -> None:
    poll_id = populated_poll.pk
    (worker,) = processes.workers("survivor", flags=PRODUCTION_FLAGS)
    with other_connection() as blocker:
        # Hold the recompute in its read of the answers, so it is running when Redis dies.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE surveys_answer IN ACCESS EXCLUSIVE MODE")
        job = request_recompute(poll_id)
        wait_until(lambda: job_status(job)["state"] == "running", 60, "the recompute to start")
        kill_and_restart_empty(processes.redis, lambda: processes.log("survivor"))
        blocker.execute("COMMIT")
    wait_until(
        lambda: re.search(
            r"Task results\.tasks\.recompute\[.*\] succeeded", processes.log("survivor")
        ),
        RECOVERY_TIMEOUT,
        "the recompute that was running to finish",
    )
    # The worker used to log "Unrecoverable error: AttributeError(... 'hostname')" as the
    # connection broke, stop answering pings, and exit once the running task ended.
    wait_until(lambda: answers_ping("survivor"), RECOVERY_TIMEOUT, "the same worker to answer")
    time.sleep(2 * RECONCILE_SECONDS)
    assert worker.poll() is None, processes.log("survivor")
    assert "Unrecoverable error" not in processes.log("survivor")

    # Completions while the queue was empty: only beat's reconciler can bring results up.
    add_simulated_participants(poll=populated_poll, n=20, seed=12, group_size=15)
    processes.beat()
    latest = wait_until(
        lambda: (s := ResultSnapshot.objects.latest_for(poll_id)) and s.n_participants == 220 and s,
        RECOVERY_TIMEOUT,
        "the reconciler to bring the results up to date",
    )
    assert worker.poll() is None
    assert not payload_differences(latest.payload, offline_payload(poll_id))


def test_a_participant_who_leaves_mid_t1_causes_no_recompute_in_ten_reconciler_runs(
    processes: Processes,
) -> None:
    poll = make_poll(design={"control_share": 0.5, "group_size": 4})
    processes.workers("worker")
    for _ in range(2):
        client = Client()
        walk(client, poll, start(client, poll))
    wait_until(
        lambda: (s := ResultSnapshot.objects.latest_for(poll)) and s.n_participants == 2,
        RECOVERY_TIMEOUT,
        "the completions' recompute",
    )
    snapshots = ResultSnapshot.objects.filter(poll=poll).count()
    leave_mid_t1(poll)

    def received(task: str) -> int:
        return len(
            re.findall(rf"Task results\.tasks\.{task}\[.*\] received", processes.log("worker"))
        )

    recomputes = received("recompute")
    processes.beat()
    wait_until(lambda: received("reconcile") >= 10, RECOVERY_TIMEOUT, "ten reconciler runs")
    time.sleep(1)  # a recompute sent by the tenth run would be received by now
    assert received("recompute") == recomputes, processes.log("worker")
    assert ResultSnapshot.objects.filter(poll=poll).count() == snapshots
