"""``manage.py createapitoken USERNAME --poll SLUG``: grant polls and print a new API token."""

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from results.api.access import grant_poll, issue_api_token
from surveys.models import Poll


class Command(BaseCommand):
    help = "Create an API token for a researcher (printed once) and grant them polls."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--poll", action="append", default=[], help="Poll slug to grant.")
        parser.add_argument("--name", default="command line", help="What the token is for.")
        parser.add_argument("--days", type=int, default=None, help="Lifetime (default 90).")
        parser.add_argument(
            "--allow-import", action="store_true", help="The grants also allow imports."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user '{options['username']}'.")
        polls = []
        for slug in options["poll"]:
            poll = Poll.objects.filter(slug=slug).first()
            if poll is None:
                raise CommandError(f"No poll '{slug}'.")
            polls.append(poll)
        if options["days"] is not None and options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        for poll in polls:
            grant = grant_poll(user=user, poll=poll)
            if options["allow_import"] and not grant.can_import:
                grant.can_import = True
                grant.save(update_fields=["can_import"])
        issued = issue_api_token(user=user, name=options["name"], days=options["days"])
        self.stderr.write(
            f"Token for {user} (expires {issued.token.expires_at:%Y-%m-%d}); it is shown only now:"
        )
        self.stdout.write(issued.secret)
