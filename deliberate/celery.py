"""The Celery application: configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deliberate.settings")

app = Celery("deliberate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="deliberate.ping")
def ping() -> str:
    """A round trip through broker, worker and result backend, for health checks and tests."""
    return "pong"
