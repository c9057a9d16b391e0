"""Shared fixtures: real services (PostgreSQL, Redis, a Celery worker) and small polls."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.utils import translation

if TYPE_CHECKING:
    from surveys.models import Poll

ROOT = Path(__file__).resolve().parent.parent
# A fast start for the workers tests run: no pool, no cluster chatter (the fault tests in
# tests/integration start theirs with the same flags).
WORKER_FLAGS = (
    "--pool=solo",
    "--loglevel=INFO",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
)


def require_service(name: str, url: str) -> None:
    """Fail in CI, skip elsewhere, when a service the test needs is not listening."""
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=2):
            return
    except OSError as error:
        message = f"{name} is not reachable at {parsed.hostname}:{parsed.port} ({error})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run this test.")
        pytest.skip(message)


@pytest.fixture(autouse=True)
def language_of_each_test_is_its_own() -> Iterator[None]:
    """Each test starts in the default language. A request through the test client runs
    LocaleMiddleware in the test's thread, and the language it activates (Ukrainian, say) would
    otherwise stay active for every later test in that thread."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ["TEST_REDIS_URL"]
    require_service("Redis", url)
    return url


def reset_celery_pools(app: Any) -> None:
    """Forget the app's cached broker pools and result backend (per process and per thread)."""
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def celery_on_redis(redis_url: str) -> Iterator[str]:
    """Point this process's Celery app at Redis (no eager mode) for the length of a test."""
    import redis

    from deliberate.celery import app

    redis.Redis.from_url(redis_url).flushdb()
    saved = {key: app.conf[key] for key in ("broker_url", "result_backend", "task_always_eager")}
    app.conf.update(broker_url=redis_url, result_backend=redis_url, task_always_eager=False)
    # The app caches its connection and producer pools and its backend; drop them so the new
    # URLs take effect.
    reset_celery_pools(app)
    try:
        yield redis_url
    finally:
        app.conf.update(saved)
        reset_celery_pools(app)


def worker_env(redis_url: str) -> dict[str, str]:
    database = settings.DATABASES["default"]
    db_url = (
        f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    )
    return {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": db_url, "CONN_MAX_AGE": "0"}


@pytest.fixture
def celery_worker_process(
    celery_on_redis: str, transactional_db: None, tmp_path: Path
) -> Iterator[subprocess.Popen]:
    """A real Celery worker process on Redis, reading the test database."""
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "deliberate", "worker", *WORKER_FLAGS],
        cwd=ROOT,
        env=worker_env(celery_on_redis),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    from deliberate.celery import app

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the Celery worker exited early; see {log.name}")
        if app.control.ping(timeout=0.5):
            break
    else:
        process.kill()
        pytest.fail("the Celery worker did not answer a ping within 30 s")
    yield process
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def computed() -> "Poll":
    """A small poll with 40 simulated participants and its results computed once.

    Django is imported inside, as in ``tests/results/conftest.py``, so that the pure statistics
    tests still collect without it.
    """
    from results.compute.recompute import recompute_poll
    from results.simulate import add_simulated_participants
    from tests.factories import make_poll

    poll = make_poll(slug="computed")
    add_simulated_participants(poll=poll, n=40, seed=3)
    recompute_poll(poll.pk)
    return poll
