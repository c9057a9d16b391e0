"""Fixtures of the fault tests: a private Redis, worker and beat processes, a populated poll."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from results import tasks
from results.simulate import add_simulated_participants
from surveys.models import Poll
from tests.integration.processes import PrivateRedis, Processes, point_celery_at
from tests.results.conftest import load_seed_poll


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
