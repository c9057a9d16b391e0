import secrets
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

SEEDS = Path(settings.BASE_DIR) / "seeds"


class Command(BaseCommand):
    help = (
        "Prepare the embedded default and serve it: migrate, load the seed polls, create a demo "
        "organiser with a fresh password, print how to log in, then run the development server."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="Prepare only; do not serve.")

    def handle(self, *args: Any, addrport: str, no_serve: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        for path in sorted(SEEDS.glob("*.yaml")):
            call_command("loadpoll", str(path))
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(
            username="organiser", defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(password)
        user.save()
        host = addrport if ":" in addrport else f"127.0.0.1:{addrport}"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nDeliberate is ready.\n"
                f"  Participants: http://{host}/\n"
                f"  Organisers:   http://{host}/admin/  user 'organiser', password '{password}'\n"
            )
        )
        if not no_serve:
            call_command("runserver", addrport, use_reloader=False)
