"""Reliability of recomputes with real processes: a private redis-server, real Celery worker and
beat subprocesses, and the PostgreSQL test database. Nothing here touches the machine's shared
Redis or PostgreSQL server settings; every process started here is stopped here.

Faults are injected the way they happen in production: ``kill -9`` of a worker, a Redis server
that stops, two workers that pick up recomputes of one poll at once. Recovery goes through the
production path: the beat process runs the reconciler, nothing is sent by hand.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.test import Client

from results import tasks
from results.compute import LOCK_NAMESPACE, build_payload, recompute_poll
from results.loading import load_poll_data
from results.models import ResultSnapshot
from results.progress import JobStatus, job_status
from results.simulate import add_simulated_participants
from results.tasks import request_recompute
from surveys.models import Participant, Poll
from tests.conftest import ROOT, require_service, reset_celery_pools, worker_env
from tests.factories import make_poll
from tests.results.conftest import FAST_MIN_SUBGROUP_SIZE, load_seed_poll
from tests.surveys.test_journey import T1_PAGES, T2_PAGES, answer_wave, post_page, start

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Generous but bounded: two cores shared with other test runs; a cold worker imports Django,
# Celery, numpy and scipy.
START_TIMEOUT = 180
RECOVERY_TIMEOUT = 120
RECONCILE_SECONDS = 2
# No persistence: a restarted server comes back empty, as after losing its data.
REDIS_FLAGS = ("--save", "", "--appendonly", "no", "--daemonize", "no", "--dir")
# A fast start (as tests/conftest.py's celery_worker_process): no pool, no cluster chatter.
WORKER_FLAGS = (
    "--pool=solo",
    "--loglevel=INFO",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def point_celery_at(url: str | None, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """Point this process's Celery app at ``url`` (or back at ``saved``); returns the old
    configuration. The app's cached pools and result backend are dropped, as they would keep
    talking to the previous server."""
    from deliberate.celery import app

    keys = ("broker_url", "result_backend", "task_always_eager")
    old = {key: app.conf[key] for key in keys}
    if saved is not None:
        app.conf.update(saved)
    else:
        app.conf.update(broker_url=url, result_backend=url, task_always_eager=False)
    reset_celery_pools(app)
    return old


class PrivateRedis:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.dir = tmp
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            require_service("redis-server binary", "redis://127.0.0.1:1")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", *REDIS_FLAGS, str(self.dir)],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self.answers, 10, "redis-server to start")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def private_redis(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PrivateRedis]:
    """A redis-server of our own; this process's Celery app and cache point at it."""
    server = PrivateRedis(tmp_path)
    server.start()
    saved = point_celery_at(server.url)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url,
        }
    }
    monkeypatch.setattr(tasks, "_broker_down_until", 0.0)
    try:
        yield server
    finally:
        point_celery_at(None, saved)
        server.stop()


class Processes:
    """Worker and beat subprocesses of one test, stopped at its end."""

    def __init__(self, redis: PrivateRedis, tmp: Path) -> None:
        self.redis = redis
        self.tmp = tmp
        self.started: list[subprocess.Popen] = []
        self.logs: list[Any] = []

    def _spawn(self, name: str, arguments: list[str], **env: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115
        self.logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "deliberate", *arguments],
            cwd=ROOT,
            env={**worker_env(self.redis.url), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(process)
        return process

    def workers(self, *names: str) -> list[subprocess.Popen]:
        """Start workers side by side and wait until every one answers a ping."""
        from deliberate.celery import app

        started = [
            self._spawn(
                name,
                ["worker", *WORKER_FLAGS, "-n", f"{name}@%h"],
            )
            for name in names
        ]

        def all_answer() -> bool:
            for process, name in zip(started, names, strict=True):
                if process.poll() is not None:
                    pytest.fail(f"worker {name} exited early; see {self.log(name)}")
            replies = {
                key.split("@")[0] for reply in app.control.ping(timeout=0.5) for key in reply
            }
            return set(names) <= replies

        wait_until(all_answer, START_TIMEOUT, f"workers {names} to answer a ping")
        return started

    def beat(self) -> subprocess.Popen:
        return self._spawn(
            "beat",
            ["beat", "--loglevel=INFO", "-s", str(self.tmp / "beat-schedule")],
            RECONCILE_SECONDS=str(RECONCILE_SECONDS),
        )

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for log in self.logs:
            log.close()


@pytest.fixture
def processes(private_redis: PrivateRedis, tmp_path: Path) -> Iterator[Processes]:
    group = Processes(private_redis, tmp_path)
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
def populated_poll(transactional_db: None) -> Poll:
    poll = load_seed_poll()
    add_simulated_participants(poll=poll, n=200, seed=11, group_size=15)
    return poll


def offline_payload(poll_id: int) -> dict:
    """The payload computed here, in the test process, as stored (through JSON)."""
    with transaction.atomic():
        return json.loads(json.dumps(build_payload(load_poll_data(poll_id))))


def other_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        f"host={s['HOST']} port={s['PORT']} user={s['USER']} dbname={s['NAME']}", autocommit=True
    )


def lock_holders(check: psycopg.Connection, poll_id: int) -> int:
    """Sessions holding the poll's recompute lock in the test database."""
    return check.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid = %s AND objid = %s AND objsubid = 2 "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (LOCK_NAMESPACE, poll_id),
    ).fetchone()[0]


def recomputed_lines(log: str) -> list[str]:
    return re.findall(r"results of poll \d+ recomputed: .*", log)


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
    assert snapshot.payload == offline_payload(poll_id)


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
    assert snapshot.payload == offline_payload(poll_id)


def walk_to_the_last_page(client: Client, poll: Poll) -> None:
    """Consent, T1, briefing and reasons (treatment), and T2 up to its last page."""
    participant = start(client, poll)
    location = answer_wave(client, poll.slug, "t1", T1_PAGES)
    participant.refresh_from_db()
    if participant.arm == Participant.Arm.TREATMENT:
        while "/briefing/" in location:
            location = post_page(client, location, {})
        location = post_page(
            client, location, {"r-exit.stance": "for", "r-exit.text": "Fewer deaths."}
        )
    assert location == f"/p/{poll.slug}/t2/1/"
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
    assert latest.payload == offline_payload(poll.pk)
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
