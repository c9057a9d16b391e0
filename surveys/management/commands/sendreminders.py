"""Send the reminders that are due, once: what beat does every minute, for deployments without
Celery (the embedded default), to run from cron, e.g. ``* * * * * manage.py sendreminders``."""

from typing import Any

from django.core.management.base import BaseCommand

from surveys.journey.reminders import send_due_reminders


class Command(BaseCommand):
    help = "Send the participants' reminders that are due (and forget closed polls' addresses)."

    def handle(self, *args: Any, **options: Any) -> None:
        handled = send_due_reminders()
        self.stdout.write(f"{handled} reminder(s) handled.")
