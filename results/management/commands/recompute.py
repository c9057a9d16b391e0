from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from results.compute.recompute import recompute_poll
from surveys.models import Poll


class Command(BaseCommand):
    help = (
        "Recompute the results of a poll now, in this process, with a progress bar. Waits for a "
        "recompute already running elsewhere; stores nothing new if the data has not changed."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug", help="The poll's slug.")
        parser.add_argument("--quiet", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, slug: str, quiet: bool, **options: Any) -> None:
        try:
            poll = Poll.objects.get(slug=slug)
        except Poll.DoesNotExist:
            raise CommandError(f"No poll with the slug '{slug}'.") from None
        bar = tqdm(total=100, unit="%", disable=quiet, file=self.stderr, leave=False)

        def progress(fraction: float, message: str) -> None:
            bar.set_description(message[:50])
            bar.update(round(fraction * 100) - bar.n)

        with bar:
            snapshot = recompute_poll(poll.pk, progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                f"Results of '{slug}': snapshot {snapshot.pk}, {snapshot.n_participants} "
                f"participants ({snapshot.n_treatment} treatment, {snapshot.n_control} control), "
                f"fingerprint {snapshot.fingerprint[:12]}."
            )
        )
