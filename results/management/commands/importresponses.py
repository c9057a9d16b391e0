"""``manage.py importresponses SLUG FILE``: import a wide CSV of existing panel data.

The way in for files over the upload limit: no size cap (whoever runs it has the server's shell),
memory stays flat, and the rows checked so far are shown as it goes.
"""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from results import tasks
from results.exports.imports import CHUNK_ROWS, ImportFailed, import_responses
from surveys.models import Poll

PROGRESS_EVERY = 20 * CHUNK_ROWS


class Command(BaseCommand):
    help = "Import participants and answers from a wide CSV (the csv-wide export layout)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("file")

    def progress(self, rows: int) -> None:
        if rows % PROGRESS_EVERY == 0:
            self.stderr.write(f"  {rows:,} rows checked")

    def handle(self, *args: Any, **options: Any) -> None:
        poll = Poll.objects.filter(slug=options["slug"]).first()
        if poll is None:
            raise CommandError(f"No poll '{options['slug']}'.")
        try:
            with open(options["file"], "rb") as stream:
                result = import_responses(
                    poll=poll,
                    stream=stream,
                    recompute=tasks.schedule_recompute,
                    max_bytes=None,
                    progress=self.progress,
                )
        except OSError as error:
            raise CommandError(f"{options['file']}: {error.strerror}") from None
        except ImportFailed as failure:
            raise CommandError(f"nothing was imported:\n{failure}") from None
        self.stdout.write(
            f"Imported {result.participants} participants and {result.answers} answers "
            f"into {poll.slug}."
        )
        for old, new in result.renamed.items():
            self.stdout.write(f"  {old} is already used by another poll; now {new}")
