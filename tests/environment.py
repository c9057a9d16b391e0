"""Loaded by pytest before Django (``-p tests.environment`` in pyproject.toml).

Tests run against the machine's PostgreSQL unless DATABASE_URL says otherwise: the embedded
SQLite default has its own tests, which start it in a subprocess. Redis is not configured for the
test process itself, so tasks run eagerly there; the worker tests point Celery at Redis.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/deliberate")
os.environ.setdefault("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("DEBUG", "true")
