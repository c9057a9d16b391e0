"""Reliability of recomputes with real processes: a private redis-server, real Celery worker and
beat subprocesses, and the PostgreSQL test database. Nothing here touches the machine's shared
Redis or PostgreSQL server settings; every process started here is stopped here.

Faults are injected the way they happen in production: ``kill -9`` of a worker, a Redis server
that stops, two workers that pick up recomputes of one poll at once. Recovery goes through the
production path: the beat process runs the reconciler, nothing is sent by hand.
"""

import os
import re
import signal
import threading
import time

import pytest
from django.test import Client

from results.compute.progress import JobStatus, job_status
from results.compute.recompute import recompute_poll
from results.models import ResultSnapshot
from results.simulate import add_simulated_participants
from results.tasks import request_recompute
from surveys.models import Poll
from tests.factories import make_poll
from tests.integration.processes import (
    RECONCILE_SECONDS,
    RECOVERY_TIMEOUT,
    START_TIMEOUT,
    PrivateRedis,
    Processes,
    lock_holders,
    offline_payload,
    other_connection,
    payload_differences,
    recomputed_lines,
    wait_until,
)
from tests.results.conftest import FAST_MIN_SUBGROUP_SIZE
from tests.surveys.test_journey import T2_PAGES, answer_wave, post_page, start, through_to_t2

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_two_recomputes_triggered_at_the_same_instant_run_one_at_a_time(
    processes: Processes, populated_poll: Poll
) -> None:
    processes.workers("first", "second")
    poll_id = populated_poll.pk
    with other_connection() as blocker, other_connection() as check:
        # Hold the answers table: whichever recompute gets the poll's lock first is held inside
        # it, so the other one certainly arrives while it runs.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE surveys_answer IN ACCESS EXCLUSIVE MODE")
        barrier = threading.Barrier(2)
        jobs: list[str] = []

        def trigger() -> None:
            barrier.wait()
            jobs.append(request_recompute(poll_id))

        triggers = [threading.Thread(target=trigger) for _ in range(2)]
        for thread in triggers:
            thread.start()
        for thread in triggers:
            thread.join(30)
        assert len(jobs) == 2

        def one_running_one_waiting() -> list[JobStatus] | None:
            statuses = sorted((job_status(job) for job in jobs), key=lambda s: s["state"])
            states = [s["state"] for s in statuses]
            waiting = "waiting for the running recompute" in statuses[0]["message"]
            return statuses if states == ["queued", "running"] and waiting else None

        wait_until(one_running_one_waiting, RECOVERY_TIMEOUT, "one job running, one waiting")
        assert lock_holders(check, poll_id) == 1
        time.sleep(3)  # the waiting job retries every 2 s: it must keep waiting
        assert lock_holders(check, poll_id) == 1
        assert sorted(job_status(job)["state"] for job in jobs) == ["queued", "running"]
        blocker.execute("ROLLBACK")

    wait_until(
        lambda: all(job_status(job)["state"] in ("done", "failed") for job in jobs),
        RECOVERY_TIMEOUT,
        "both jobs to finish",
    )
    statuses = [job_status(job) for job in jobs]
    assert [s["state"] for s in statuses] == ["done", "done"], statuses
    # The second found the data unchanged once it had the lock and reused the first snapshot.
    snapshot = ResultSnapshot.objects.get(poll_id=poll_id)
    assert statuses[0]["snapshot_id"] == statuses[1]["snapshot_id"] == snapshot.pk
    computed = recomputed_lines(processes.log("first") + processes.log("second"))
    assert len(computed) == 1, computed
    assert snapshot.n_participants == 200
    assert not payload_differences(snapshot.payload, offline_payload(poll_id))


def test_a_worker_killed_during_a_recompute_leaves_no_trace_and_beat_recovers_results_and_job(
    processes: Processes, populated_poll: Poll
) -> None:
    poll_id = populated_poll.pk
    (doomed,) = processes.workers("doomed")
    with other_connection() as blocker, other_connection() as check:
        # Hold the answers table so the recompute is caught mid-read, deterministically.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE surveys_answer IN ACCESS EXCLUSIVE MODE")
        job = request_recompute(poll_id)
        wait_until(lambda: job_status(job)["state"] == "running", 60, "the recompute to start")
        assert lock_holders(check, poll_id) == 1
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
        blocker.execute("ROLLBACK")
        # PostgreSQL ends the dead worker's session, and with it the poll's lock.
        wait_until(lambda: lock_holders(check, poll_id) == 0, 60, "the dead worker's lock")
    assert not ResultSnapshot.objects.filter(poll_id=poll_id).exists()
    # The gap: the task's message waits for Redis's visibility timeout (twice the task time
    # limit) before it is delivered again, and until then the job still says "running".
    assert job_status(job)["state"] == "running"

    processes.workers("rescuer")
    processes.beat()
    snapshot = wait_until(
        lambda: ResultSnapshot.objects.filter(poll_id=poll_id).first(),
        RECOVERY_TIMEOUT,
        "the reconciler to recompute the poll",
    )
    status = wait_until(
        lambda: (s := job_status(job))["state"] in ("done", "failed") and s,
        RECOVERY_TIMEOUT,
        "the dead worker's job to be taken over",
    )
    assert status["state"] == "done", status
    assert status["snapshot_id"] == snapshot.pk
    # A few more reconciler rounds: the poll is up to date, nothing is computed again.
    time.sleep(3 * RECONCILE_SECONDS)
    assert list(ResultSnapshot.objects.filter(poll_id=poll_id).values_list("pk", flat=True)) == [
        snapshot.pk
    ]
    rescuer = processes.log("rescuer")
    assert len(recomputed_lines(rescuer)) == 1, rescuer
    assert f"job {job} of poll {poll_id} lost its worker" in rescuer
    assert "reconciler enqueued recomputes" in rescuer
    assert snapshot.n_participants == 200
    assert not payload_differences(snapshot.payload, offline_payload(poll_id))


def walk_to_the_last_page(client: Client, poll: Poll) -> None:
    """Consent, T1, briefing and reasons (treatment), and T2 up to its last page."""
    through_to_t2(client, poll, start(client, poll))
    location = answer_wave(client, poll.slug, "t2", T2_PAGES[:-1])
    assert location == f"/p/{poll.slug}/t2/{len(T2_PAGES)}/"


def test_completions_while_redis_is_down_are_saved_and_beat_brings_results_up_to_date(
    processes: Processes,
) -> None:
    poll = make_poll(design={"control_share": 0.5, "group_size": 4})
    Poll.objects.filter(pk=poll.pk).update(min_subgroup_size=FAST_MIN_SUBGROUP_SIZE)
    add_simulated_participants(poll=poll, n=60, seed=5, group_size=4)
    processes.workers("steady")
    beat = processes.beat()
    assert recompute_poll(poll.pk).n_participants == 60
    # Beat and worker both up before the outage: they must live through it, not start after.
    wait_until(
        lambda: re.search(
            r"Task results\.tasks\.reconcile\[\S+\] succeeded", processes.log("steady")
        ),
        START_TIMEOUT,
        "a first reconciler run from beat",
    )
    clients = [Client() for _ in range(4)]
    for client in clients:
        walk_to_the_last_page(client, poll)

    processes.redis.stop()
    timings = []
    last_page = f"/p/{poll.slug}/t2/{len(T2_PAGES)}/"
    for client in clients:
        began = time.monotonic()
        assert post_page(client, last_page, T2_PAGES[-1], wave=2) == f"/p/{poll.slug}/done/"
        timings.append(time.monotonic() - began)
    # Every completion was committed; none waited long on the unreachable Redis.
    assert poll.participants.completed().count() == 64
    assert max(timings) < 10, timings
    assert ResultSnapshot.objects.get(poll=poll).n_participants == 60

    processes.redis.start()  # empty: whatever Redis held before is gone
    latest = wait_until(
        lambda: ResultSnapshot.objects.filter(poll=poll, n_participants=64).first(),
        RECOVERY_TIMEOUT,
        "the reconciler to bring the snapshot up to date",
    )
    assert "reconciler enqueued recomputes" in processes.log("steady")
    assert beat.poll() is None  # beat lived through the outage
    assert not payload_differences(latest.payload, offline_payload(poll.pk))
    for client in clients:
        assert "from 3 to 7" in client.get(f"/p/{poll.slug}/done/").content.decode()


def test_the_finish_page_is_shown_while_redis_is_down(private_redis: PrivateRedis) -> None:
    poll = make_poll(design={"control_share": 0.5, "group_size": 4})
    client = Client()
    walk_to_the_last_page(client, poll)
    private_redis.stop()
    last_page = f"/p/{poll.slug}/t2/{len(T2_PAGES)}/"
    assert post_page(client, last_page, T2_PAGES[-1], wave=2) == f"/p/{poll.slug}/done/"
    assert poll.participants.completed().count() == 1
    finish = client.get(f"/p/{poll.slug}/done/")
    assert finish.status_code == 200
    assert "from 3 to 7" in finish.content.decode()
