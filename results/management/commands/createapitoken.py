"""``manage.py createapitoken USERNAME --poll SLUG [--level microdata]``: grant polls and print a
new API token, creating the user first when there is none of that name."""

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
        users = get_user_model()
        polls = []
        for slug in options["poll"]:
            poll = Poll.objects.filter(slug=slug).first()
            if poll is None:
                raise CommandError(f"No poll '{slug}'.")
            polls.append(poll)
        try:
            with transaction.atomic():  # a bad option stores no user, grant or token
                user, created = self.user(users, options["username"])
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
        if created:
            # Said on stderr with the token's notice: stdout carries the secret alone.
            self.stderr.write(
                f"Created the user '{user}' (no password: the token is how they sign in to the "
                "API; set a password with manage.py changepassword for the admin)."
            )
        self.stderr.write(
            f"Token for {user} (expires {issued.token.expires_at:%Y-%m-%d}); it is shown only now:"
        )
        self.stdout.write(issued.secret)

    @staticmethod
    def user(users: Any, username: str) -> tuple[Any, bool]:
        """The user of that name, created (with no usable password) when there is none."""
        user = users.objects.filter(username=username).first()
        if user is not None:
            return user, False
        user = users(username=username)
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as problem:
            messages = problem.message_dict.get("username", problem.messages)
            raise ValidationError([f"username '{username}': {' '.join(messages)}"]) from None
        user.set_unusable_password()
        user.save()
        return user, True
