"""``manage.py bench_imports``: import of a wide CSV (default 100,000 participants x 50 items)
beside a raw ``COPY FROM`` of the same file into a plain table, in the same run.

Run it against a database of its own, e.g.::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_imports manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_imports manage.py bench_imports

It writes the file once (synthetic ratings 0..10 with don't-know codes and blanks), and the same
answers in long form (one line per answer), then runs each method in a fresh process so that its
peak memory (``ru_maxrss``) is its own: raw COPY of the wide file into a plain table (one text
column per file column, no checks, no indexes), raw COPY of the long file (the rows the import
writes) into a plain table, and ``import_responses`` (every cell checked, participants and
answers written by COPY into the indexed tables, in one transaction). The plain table and the
imported rows are dropped afterwards; the poll (``bench-imports-<items>``) is kept for the next
run.
"""

import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from argparse import SUPPRESS, ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from results.exports.imports import import_responses
from surveys.definition.files import save_poll, validate
from surveys.models import Poll

SLUG = "bench-imports-{items}"
PLAIN_TABLE = "bench_imports_plain"
METHODS = ("raw_copy_wide", "raw_copy_long", "import")


def texts(text: str) -> dict[str, str]:
    return {"en": text}


def definition(items: int) -> dict[str, Any]:
    scale = {"min": 0, "max": 10}
    return {
        "format": 1,
        "slug": SLUG.format(items=items),
        "status": "open",
        "languages": ["en"],
        "title": texts("Import benchmark"),
        "question": texts("What should be done?"),
        "intro": texts("Welcome."),
        "design": {"control_share": 0.5, "group_size": 8, "min_subgroup_size": 5},
        "sections": [{"key": "policy", "title": texts("Policies")}],
        "positions": [
            {
                "key": key,
                "title": texts(f"Position {key}"),
                "summary": texts(f"Summary {key}"),
                "body": texts(f"Body {key}"),
                "sources": [{"title": f"Source {key}", "publisher": "Publisher"}],
            }
            for key in ("A", "B")
        ],
        "options": [
            {"key": key, "text": texts(f"Option {key}"), "position": position, "axis": axis}
            for axis, (key, position) in enumerate([("one", "A"), ("two", "B")], 1)
        ],
        "questions": [
            {
                "key": f"item{number:02d}",
                "kind": "rating",
                "section": "policy",
                "waves": "both",
                "dont_know": True,
                "text": texts(f"Item {number}"),
                "scale": scale,
            }
            for number in range(1, items + 1)
        ],
    }


def write_files(wide: Path, long: Path, participants: int, items: int, waves: int) -> None:
    rng = random.Random(14)
    columns = [f"item{n:02d}_t{w}" for w in range(1, waves + 1) for n in range(1, items + 1)]
    header = ["participant", "arm", "completed_at", *columns]
    cells = [str(value) for value in range(11)]
    with wide.open("w", newline="") as target, long.open("w", newline="") as lines:
        writer = csv.writer(target, lineterminator="\n")
        long_writer = csv.writer(lines, lineterminator="\n")
        writer.writerow(header)
        long_writer.writerow(["participant", "item", "wave", "value", "missing"])
        for index in range(participants):
            public_id = f"P{index:07d}"
            answers = []
            for column in columns:
                draw = rng.random()
                cell = "" if draw < 0.02 else "-99" if draw < 0.05 else rng.choice(cells)
                answers.append(cell)
                if cell:
                    item, wave = column.rsplit("_t", 1)
                    dk = cell == "-99"
                    long_writer.writerow(
                        [public_id, item, wave, "" if dk else cell, "dont_know" if dk else ""]
                    )
            arm = "treatment" if index % 2 else "control"
            writer.writerow([public_id, arm, "2024-05-01T10:00:00+00:00", *answers])


def empty(poll: Poll) -> None:
    """Remove the poll's participants and answers (SQL: a ProtectedError-free, fast delete)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM surveys_answer WHERE poll_id = %s", [poll.pk])
        cursor.execute("DELETE FROM surveys_participant WHERE poll_id = %s", [poll.pk])


def measure(method: str, path: Path, slug: str) -> dict[str, Any]:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    if method.startswith("raw_copy"):
        path = path.with_name("long.csv") if method == "raw_copy_long" else path
        with path.open() as source:
            header = next(csv.reader(source))
        names = ", ".join(f'"{name}" text' for name in header)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
            cursor.execute(f"CREATE TABLE {PLAIN_TABLE} ({names})")
            with (
                cursor.cursor.copy(f"COPY {PLAIN_TABLE} FROM STDIN (FORMAT csv, HEADER)") as copy,
                path.open("rb") as source,
            ):
                while block := source.read(1 << 20):
                    copy.write(block)
            cursor.execute(f"SELECT count(*) FROM {PLAIN_TABLE}")
            rows = cursor.fetchone()[0]
        answers = 0
    else:
        poll = Poll.objects.get(slug=slug)
        with path.open("rb") as source:
            result = import_responses(
                poll=poll, stream=source, recompute=lambda poll_id: None, max_bytes=None
            )
        rows, answers = result.participants, result.answers
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "rows": rows, "answers": answers, "peak_mb": peak, "start_mb": base}


class Command(BaseCommand):
    help = "Benchmark the import of a wide CSV against a raw COPY FROM of the same file."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--participants", type=int, default=100_000)
        parser.add_argument("--items", type=int, default=50)
        parser.add_argument(
            "--waves", type=int, choices=(1, 2), default=1, help="Columns per item (T1, T2)."
        )
        parser.add_argument("--measure", help=SUPPRESS)
        parser.add_argument("--file", help=SUPPRESS)
        parser.add_argument("--poll", help=SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark needs PostgreSQL (set DATABASE_URL).")
        if options["measure"]:
            outcome = measure(options["measure"], Path(options["file"]), options["poll"])
            self.stdout.write(json.dumps(outcome))
            return
        slug = SLUG.format(items=options["items"])
        poll = Poll.objects.filter(slug=slug).first()
        if poll is None:
            data = validate(definition(options["items"]), "<bench>")
            poll, _ = save_poll(data=data, source="<bench>")
        empty(poll)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "wide.csv"
            self.stderr.write(
                f"writing {options['participants']:,} participants x "
                f"{options['items'] * options['waves']} item columns"
            )
            write_files(
                path,
                path.with_name("long.csv"),
                options["participants"],
                options["items"],
                options["waves"],
            )
            size = path.stat().st_size
            results = {method: self.child(method, path, slug) for method in METHODS}
        empty(poll)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {PLAIN_TABLE}")
        wide, long, imported = (results[m] for m in METHODS)
        lines = [
            f"file: {options['participants']:,} rows x {options['items'] * options['waves']} "
            f"item columns, {size / 1e6:.0f} MB; {imported['answers']:,} answers stored",
            "| method | rows | seconds | x raw COPY wide | x raw COPY long | peak RSS MB | "
            "RSS at start MB |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for method, outcome in results.items():
            lines.append(
                f"| {method} | {outcome['rows']:,} | {outcome['seconds']:.1f} | "
                f"{outcome['seconds'] / wide['seconds']:.2f} | "
                f"{outcome['seconds'] / long['seconds']:.2f} | {outcome['peak_mb']:.0f} | "
                f"{outcome['start_mb']:.0f} |"
            )
        self.stdout.write("\n".join(lines))

    def child(self, method: str, path: Path, slug: str) -> dict[str, Any]:
        command = [sys.executable, "manage.py", "bench_imports", "--measure", method]
        done = subprocess.run(
            [*command, "--file", str(path), "--poll", slug],
            cwd=settings.BASE_DIR,
            env=os.environ,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise CommandError(f"{method} failed:\n{done.stderr[-3000:]}")
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
        self.stderr.write(f"{method}: {outcome['seconds']:.1f} s, peak {outcome['peak_mb']:.0f} MB")
        return outcome
