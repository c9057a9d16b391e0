"""Loaded by pytest before Django (``-p tests.environment`` in pyproject.toml).

Tests run against the machine's PostgreSQL unless DATABASE_URL says otherwise: the embedded
SQLite default has its own tests, which start it in a subprocess. Redis is not configured for the
test process itself, so tasks run eagerly there; the worker tests point Celery at Redis.
"""

import os
from urllib.parse import urlparse

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/deliberate")
os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def redis_url_of_this_worker(url: str, worker: str) -> str:
    """The Redis database of one pytest-xdist worker (gw0, gw1, ...): the next ones after the
    configured database, so the workers' Celery queues, caches and channel layers never meet
    (pytest-django gives each worker its own test database the same way)."""
    parsed = urlparse(url)
    database = int(parsed.path.strip("/") or 0) + 1 + int(worker.removeprefix("gw"))
    return parsed._replace(path=f"/{database % 16}").geturl()


if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["TEST_REDIS_URL"] = redis_url_of_this_worker(os.environ["TEST_REDIS_URL"], worker)
os.environ.setdefault("DEBUG", "true")
