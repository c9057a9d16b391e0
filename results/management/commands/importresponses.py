"""``manage.py importresponses SLUG FILE [--dry-run] [--replace]``: import a wide CSV of existing
panel data; ``manage.py importresponses SLUG --template OUT.xlsx`` writes the template first (the
header row and the codebook; ``OUT.csv``: the header row alone).

The way in for files over the upload limit: no size cap (whoever runs it has the server's shell),
memory stays flat, and the rows checked so far are shown as it goes. The results are recomputed
by the worker once the import has committed, not inside this command.
"""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from results import tasks
from results.exports import template
from results.exports.imports import CHUNK_ROWS, ImportFailed, import_responses
from surveys.models import Poll

PROGRESS_EVERY = 10 * CHUNK_ROWS


class Command(BaseCommand):
    help = (
        "Import participants and answers from a wide CSV (the csv-wide export layout); "
        "--template writes the file to fill in."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("file", nargs="?", help="The CSV to import.")
        parser.add_argument(
            "--template",
            metavar="OUT",
            help="Write the import template to OUT instead: .xlsx (header row, codebook, how "
            "to import) or .csv (the header row).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check everything and store nothing; print what the import would do.",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help=(
                "Replace the poll's imported participants that have the same ids as rows of "
                "the file (online participants are never replaced)."
            ),
        )

    def progress(self, rows: int) -> None:
        if rows % PROGRESS_EVERY == 0:
            self.stderr.write(f"  {rows:,} rows checked")

    def handle(self, *args: Any, **options: Any) -> None:
        poll = Poll.objects.filter(slug=options["slug"]).first()
        if poll is None:
            raise CommandError(f"No poll '{options['slug']}'.")
        if options["template"]:
            self.write_template(poll, Path(options["template"]))
            return
        if not options["file"]:
            raise CommandError("Name the CSV to import (or --template OUT.xlsx to get one).")
        try:
            with open(options["file"], "rb") as stream:
                result = import_responses(
                    poll=poll,
                    stream=stream,
                    recompute=tasks.schedule_recompute,
                    max_bytes=None,
                    progress=self.progress,
                    replace=options["replace"],
                    dry_run=options["dry_run"],
                )
        except OSError as error:
            raise CommandError(f"{options['file']}: {error.strerror}") from None
        except ImportFailed as failure:
            raise CommandError(f"nothing was imported:\n{failure}\n{failure.summary()}") from None
        self.stdout.write(result.summary())
        if not result.dry_run:
            self.stdout.write(f"The results of {poll.slug} are recomputed in the background.")

    def write_template(self, poll: Poll, path: Path) -> None:
        if path.suffix == ".csv":
            content = template.header_csv(poll)
        elif path.suffix == ".xlsx":
            content = template.workbook(poll)
        else:
            raise CommandError(f"--template {path}: the name must end in .xlsx or .csv")
        try:
            path.write_bytes(content)
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror}") from None
        self.stdout.write(f"Wrote the import template of {poll.slug} to {path}.")
