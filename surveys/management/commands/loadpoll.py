from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from surveys.definition.files import DefinitionError, load_definition, save_poll


class Command(BaseCommand):
    help = "Create or update a poll from a definition file (idempotent by slug)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="Path to a poll definition YAML file.")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        try:
            data = load_definition(file)
            poll, created = save_poll(data=data, source=file)
        except DefinitionError as error:
            raise CommandError(f"{file} was not loaded; nothing changed.\n{error}") from None
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} poll '{poll.slug}' from {file}."))
