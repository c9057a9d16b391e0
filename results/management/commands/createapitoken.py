"""``manage.py createapitoken USERNAME --poll SLUG [--level microdata]``: grant polls and print a
new API token."""

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from results.access import grant_access, issue_api_token, max_token_days
from results.models import Grant
from surveys.models import Poll


class Command(BaseCommand):
    help = "Create an API token for a researcher (printed once) and grant them polls."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--poll", action="append", default=[], help="Poll slug to grant.")
        parser.add_argument("--name", default="command line", help="What the token is for.")
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Lifetime (default 90, at most {max_token_days()}).",
        )
        parser.add_argument(
            "--level",
            choices=Grant.Level.values,
            default=Grant.Level.AGGREGATES,
            help="What the grants give: aggregate results only (default) or microdata.",
        )
        parser.add_argument(
            "--allow-import",
            action="store_true",
            help="The grants also allow imports (needs --level microdata).",
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
        try:
            with transaction.atomic():  # a bad option stores no grant and no token
                for poll in polls:
                    grant_access(
                        user=user,
                        poll=poll,
                        level=options["level"],
                        can_import=options["allow_import"],
                    )
                issued = issue_api_token(user=user, name=options["name"], days=options["days"])
        except ValidationError as problem:
            raise CommandError(" ".join(problem.messages)) from None
        self.stderr.write(
            f"Token for {user} (expires {issued.token.expires_at:%Y-%m-%d}); it is shown only now:"
        )
        self.stdout.write(issued.secret)
