"""Real processes for fault tests: a private redis-server, Celery worker and beat subprocesses,
and helpers that watch the PostgreSQL test database. Every process started here is stopped by
the fixtures in conftest.py; nothing touches the machine's shared Redis or PostgreSQL settings.
"""

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from results.compute.loading import load_poll_data
from results.compute.recompute import LOCK_NAMESPACE, build_payload
from tests.conftest import ROOT, WORKER_FLAGS, require_service, reset_celery_pools, worker_env

# Generous but bounded: two cores shared with other test runs; a cold worker imports Django,
# Celery, numpy and scipy.
START_TIMEOUT = 180
RECOVERY_TIMEOUT = 120
RECONCILE_SECONDS = 2
# No persistence: a restarted server comes back empty, as after losing its data.
REDIS_FLAGS = ("--save", "", "--appendonly", "no", "--daemonize", "no", "--dir")
# Workers start fast (tests/conftest.py's WORKER_FLAGS). Tests of the broker connection itself
# run the worker as the README does (PRODUCTION_FLAGS).
# `celery -A deliberate worker` as the README runs it on these two cores: the prefork pool with
# two children, so while one runs a task the main process waits for more in a Redis BRPOP (the
# state in which a broken connection used to kill the worker, see deliberate/broker.py).
PRODUCTION_FLAGS = ("--loglevel=INFO", "--concurrency=2")


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

    def workers(self, *names: str, flags: tuple[str, ...] = WORKER_FLAGS) -> list[subprocess.Popen]:
        """Start workers side by side and wait until every one answers a ping."""
        from deliberate.celery import app

        started = [self._spawn(name, ["worker", *flags, "-n", f"{name}@%h"]) for name in names]

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


def offline_payload(poll_id: int) -> dict:
    """The payload computed here, in the test process, as stored (through JSON)."""
    with transaction.atomic():
        return json.loads(json.dumps(build_payload(load_poll_data(poll_id))))


def payload_differences(stored: dict, expected: dict, limit: int = 5) -> list[str]:
    """Where two payloads differ, as a few short lines: a bare ``==`` on payloads of megabytes
    makes pytest's difflib explanation run for many minutes when they differ."""
    differences = []
    for key in sorted(set(stored) | set(expected)):
        left, right = stored.get(key), expected.get(key)
        if left == right:
            continue
        if isinstance(left, list) and isinstance(right, list):
            rows = [i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b]
            where = f"rows {len(left)} vs {len(right)}, first differing row {rows[:1]}"
            if rows:
                where += f": {str(left[rows[0]])[:300]} != {str(right[rows[0]])[:300]}"
            differences.append(f"{key}: {where}")
        else:
            differences.append(f"{key}: {str(left)[:300]} != {str(right)[:300]}")
        if len(differences) == limit:
            break
    return differences


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
