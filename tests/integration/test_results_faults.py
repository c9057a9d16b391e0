"""Reliability of recomputes with real processes: a private redis-server, real Celery worker and
beat subprocesses, and the PostgreSQL test database. Nothing here touches the machine's shared
Redis; every process started here is stopped here."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection, transaction

from results.compute import build_payload, recompute_poll
from results.loading import load_poll_data
from results.models import ResultSnapshot
from results.progress import job_status
from results.simulate import add_simulated_participants
from results.tasks import request_recompute, schedule_recompute
from tests.conftest import ROOT, require_service, worker_env
from tests.results.conftest import load_seed_poll

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


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
            [
                binary,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.dir),
            ],
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
def private_redis(tmp_path: Path, settings) -> Iterator[PrivateRedis]:
    """A redis-server of our own; this process's Celery app and cache point at it."""
    from deliberate.celery import app

    server = PrivateRedis(tmp_path)
    server.start()
    saved = {key: app.conf[key] for key in ("broker_url", "result_backend", "task_always_eager")}
    app.conf.update(broker_url=server.url, result_backend=server.url, task_always_eager=False)
    app.__dict__.pop("backend", None)
    app._pool = None
    app.amqp._producer_pool = None
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": server.url,
        }
    }
    try:
        yield server
    finally:
        app.conf.update(saved)
        app.__dict__.pop("backend", None)
        app._pool = None
        app.amqp._producer_pool = None
        server.stop()


class Processes:
    """Worker and beat subprocesses of one test, stopped at its end."""

    def __init__(self, redis: PrivateRedis, tmp: Path) -> None:
        self.redis = redis
        self.tmp = tmp
        self.started: list[subprocess.Popen] = []

    def env(self, **extra: str) -> dict[str, str]:
        return {**worker_env(self.redis.url), **extra}

    def worker(self, name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "deliberate",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}@%h",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(process)
        from deliberate.celery import app

        wait_until(
            lambda: any(name in key for reply in app.control.ping(timeout=0.5) for key in reply),
            180,  # a cold start imports Django, Celery and scipy: slow on a busy machine
            f"worker {name} to answer a ping",
        )
        return process

    def beat(self) -> subprocess.Popen:
        log = open(self.tmp / "beat.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "deliberate",
                "beat",
                "--loglevel=INFO",
                "-s",
                str(self.tmp / "beat-schedule"),
            ],
            cwd=ROOT,
            env=self.env(RECONCILE_SECONDS="2"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.fixture
def processes(private_redis: PrivateRedis, tmp_path: Path) -> Iterator[Processes]:
    group = Processes(private_redis, tmp_path)
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
def populated_poll(transactional_db):
    poll = load_seed_poll()
    add_simulated_participants(poll=poll, n=200, seed=11, group_size=15)
    return poll


def offline_payload(poll_id: int) -> dict:
    with transaction.atomic():
        return json.loads(json.dumps(build_payload(load_poll_data(poll_id))))


def other_connection() -> psycopg.Connection:
    s = connection.settings_dict
    return psycopg.connect(
        f"host={s['HOST']} port={s['PORT']} user={s['USER']} dbname={s['NAME']}", autocommit=True
    )


def test_two_recomputes_at_the_same_instant_run_one_at_a_time(processes, populated_poll):
    processes.worker("first")
    processes.worker("second")
    jobs = [request_recompute(populated_poll.pk), request_recompute(populated_poll.pk)]
    wait_until(
        lambda: all(job_status(job)["state"] in ("done", "failed") for job in jobs),
        120,
        "both jobs to finish",
    )
    statuses = [job_status(job) for job in jobs]
    assert [s["state"] for s in statuses] == ["done", "done"], statuses
    # The second waited for the lock, found the data unchanged and reused the first snapshot.
    assert statuses[0]["snapshot_id"] == statuses[1]["snapshot_id"]
    snapshot = ResultSnapshot.objects.get(poll=populated_poll)
    assert snapshot.payload == offline_payload(populated_poll.pk)


def test_a_worker_killed_during_a_recompute_leaves_no_trace_and_the_reconciler_recovers(
    processes, populated_poll
):
    from deliberate.celery import app

    worker = processes.worker("doomed")
    with other_connection() as blocker:
        # Hold the answers table so the recompute is caught mid-read, deterministically.
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE surveys_answer IN ACCESS EXCLUSIVE MODE")
        job = request_recompute(populated_poll.pk)
        wait_until(lambda: job_status(job)["state"] == "running", 60, "the recompute to start")
        time.sleep(0.5)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        blocker.execute("ROLLBACK")
    assert not ResultSnapshot.objects.filter(poll=populated_poll).exists()
    with other_connection() as check:
        wait_until(
            lambda: (
                check.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                ).fetchone()[0]
                == 0
            ),
            30,
            "PostgreSQL to release the dead worker's advisory lock",
        )
    processes.worker("rescuer")
    app.send_task("results.tasks.reconcile")
    wait_until(
        lambda: ResultSnapshot.objects.filter(poll=populated_poll).exists(), 120, "a snapshot"
    )
    snapshot = ResultSnapshot.objects.get(poll=populated_poll)
    assert snapshot.n_participants == 200
    assert snapshot.payload == offline_payload(populated_poll.pk)


def test_completions_while_redis_is_down_are_saved_and_the_reconciler_catches_up(
    processes, populated_poll
):
    processes.worker("steady")
    processes.beat()
    recompute_poll(populated_poll.pk)
    processes.redis.stop()
    timings = []
    for seed in range(5):
        start = time.monotonic()
        with transaction.atomic():
            add_simulated_participants(poll=populated_poll, n=1, seed=100 + seed, group_size=15)
            schedule_recompute(populated_poll.pk)
        timings.append(time.monotonic() - start)
    # Every completion was committed, none waited long on the unreachable broker.
    assert populated_poll.participants.completed().count() == 205
    assert max(timings) < 10, timings
    assert ResultSnapshot.objects.get(poll=populated_poll).n_participants == 200
    processes.redis.start()
    wait_until(
        lambda: ResultSnapshot.objects.filter(poll=populated_poll, n_participants=205).exists(),
        120,
        "the reconciler to bring the snapshot up to date",
    )
    latest = ResultSnapshot.objects.filter(poll=populated_poll).order_by("-computed_at").first()
    assert latest.payload == offline_payload(populated_poll.pk)
