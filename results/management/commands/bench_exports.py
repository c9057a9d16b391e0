"""``manage.py bench_exports``: export throughput and peak memory at 1 M and 6 M answers.

Run it against a database of its own, e.g.::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_exports manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_exports manage.py bench_exports

It builds synthetic polls from the seed definition (participants by bulk insert, answers by one
INSERT ... SELECT in PostgreSQL), then measures, in the same run and each in a fresh process so
peak memory is its own: raw ``COPY ... TO STDOUT (FORMAT csv)`` of the poll's answer rows (the
ceiling), the long CSV export, the long Parquet export, and a naive ORM export (model instances
with select_related, written by csv.writer).
"""

import csv
import io
import json
import os
import resource
import subprocess
import sys
import time
from argparse import SUPPRESS, ArgumentParser
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from results.exports import writers as exports
from surveys.definition.files import load_definition, save_poll
from surveys.models import Answer, Participant, Poll

SEED = Path(settings.BASE_DIR) / "seeds" / "west-putin-exit.yaml"
METHODS = ("raw_copy", "long_csv", "parquet", "naive_orm")

ANSWERS_SQL = """
INSERT INTO surveys_answer (poll_id, participant_id, question_id, wave, value, number,
                            missing, answered_at)
SELECT p.poll_id, p.id, q.id, w.wave,
  CASE WHEN dk THEN NULL
       WHEN q.kind = 'rating' THEN to_jsonb(floor(r * 11)::int)
       WHEN q.kind = 'number' THEN to_jsonb(floor(r * 41)::int - 20)
       WHEN q.kind IN ('single', 'knowledge') THEN
            q.choices -> floor(r * jsonb_array_length(q.choices))::int -> 'key'
       WHEN q.kind = 'text' THEN to_jsonb(CASE WHEN r < 0.01 THEN '=HYPERLINK("x")'
                                              ELSE 'comment ' || p.id END)
       ELSE %(ranking)s::jsonb END,
  CASE WHEN dk THEN NULL
       WHEN q.kind = 'rating' THEN floor(r * 11)
       WHEN q.kind = 'number' THEN floor(r * 41) - 20
       WHEN q.kind IN ('single', 'knowledge') THEN floor(r * jsonb_array_length(q.choices)) + 1
       END,
  CASE WHEN dk THEN 'dont_know' ELSE '' END, now()
FROM surveys_participant p
CROSS JOIN surveys_question q
CROSS JOIN (VALUES (1), (2)) AS w(wave)
CROSS JOIN LATERAL (SELECT random() AS r, (q.dont_know AND random() < 0.05) AS dk) AS x
WHERE p.poll_id = %(poll)s AND q.poll_id = %(poll)s
  AND (q.waves = 'both' OR q.waves = 't' || w.wave)
  AND q.kind <> 'multiple'
"""


def answers_per_participant(poll: Poll) -> int:
    return sum(2 if q.paired else 1 for q in poll.questions.exclude(kind="multiple"))


def build_poll(slug: str, rows: int, log: Any) -> Poll:
    poll = Poll.objects.filter(slug=slug).first()
    if poll is not None and poll.answers.count() > 0:
        return poll
    data = load_definition(SEED)
    data["slug"] = slug
    poll, _ = save_poll(data=data, source=str(SEED))
    per = answers_per_participant(poll)
    count = -(-rows // per)
    log(f"building {slug}: {count} participants x {per} answers")
    started = time.perf_counter()
    batch = []
    for index in range(count):
        batch.append(
            Participant(
                poll=poll,
                arm="treatment" if index % 3 else "control",
                group=index % 40,
                position_order=["A", "B"] if index % 2 else ["B", "A"],
                option_order=[],
                weight=1.0,
                step=Participant.Step.DONE,
            )
        )
        if len(batch) == 10_000:
            Participant.objects.bulk_create(batch)
            batch = []
    Participant.objects.bulk_create(batch)
    ranking = json.dumps(list(poll.options.order_by("order").values_list("key", flat=True)))
    with connection.cursor() as cursor:
        cursor.execute(ANSWERS_SQL, {"poll": poll.pk, "ranking": ranking})
        cursor.execute("ANALYZE surveys_answer")
    log(f"  {poll.answers.count()} answers in {time.perf_counter() - started:.0f} s")
    return poll


def raw_copy(poll: Poll) -> Iterator[bytes]:
    sql = f"SELECT * FROM surveys_answer WHERE poll_id = {int(poll.pk)}"
    return exports.copy_chunks(sql)


def naive_orm(poll: Poll) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    answers = Answer.objects.filter(poll=poll).select_related("participant", "question")
    for index, answer in enumerate(answers.iterator(chunk_size=2000)):
        writer.writerow(
            [
                answer.participant.public_id,
                answer.question.key,
                answer.wave,
                answer.value,
                answer.number,
                answer.missing == Answer.Missing.DONT_KNOW,
                answer.answered_at.isoformat(),
            ]
        )
        if index % 2000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def measure(method: str, slug: str) -> dict[str, Any]:
    poll = Poll.objects.get(slug=slug)
    chunks = {
        "raw_copy": raw_copy,
        "long_csv": exports.long_csv_chunks,
        "parquet": exports.long_parquet_chunks,
        "naive_orm": naive_orm,
    }[method](poll)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    size = sum(len(chunk) for chunk in chunks)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "bytes": size, "peak_mb": peak, "start_mb": base}


class Command(BaseCommand):
    help = "Benchmark the long CSV and Parquet exports against raw COPY and a naive ORM export."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--sizes", default="1000000,6000000", help="Answer counts.")
        parser.add_argument("--methods", default=",".join(METHODS))
        parser.add_argument("--measure", help=SUPPRESS)
        parser.add_argument("--poll", help=SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark needs PostgreSQL (set DATABASE_URL).")
        if options["measure"]:
            self.stdout.write(json.dumps(measure(options["measure"], options["poll"])))
            return
        sizes = [int(size) for size in options["sizes"].split(",")]
        methods = options["methods"].split(",")
        results = []
        for size in sizes:
            poll = build_poll(f"bench-{size}", size, self.stderr.write)
            rows = poll.answers.count()
            for method in methods:
                outcome = self.child(method, poll.slug)
                outcome.update(method=method, rows=rows, rows_per_s=rows / outcome["seconds"])
                results.append(outcome)
                self.stderr.write(
                    f"{rows:>9} {method:<10} {outcome['seconds']:7.1f} s "
                    f"{outcome['rows_per_s']:>10,.0f} rows/s  peak {outcome['peak_mb']:.0f} MB"
                )
        self.stdout.write(self.table(results))

    def child(self, method: str, slug: str) -> dict[str, Any]:
        command = [sys.executable, "manage.py", "bench_exports", "--measure", method]
        done = subprocess.run(
            [*command, "--poll", slug],
            cwd=settings.BASE_DIR,
            env=os.environ,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    def table(self, results: list[dict[str, Any]]) -> str:
        lines = [
            "| rows | method | seconds | rows/s | % of raw COPY | MB/s | peak RSS MB |",
            "|---:|---|---:|---:|---:|---:|---:|",
        ]
        for result in results:
            raw = next(
                (r for r in results if r["rows"] == result["rows"] and r["method"] == "raw_copy"),
                None,
            )
            share = f"{100 * result['rows_per_s'] / raw['rows_per_s']:.0f} %" if raw else "-"
            lines.append(
                f"| {result['rows']:,} | {result['method']} | {result['seconds']:.1f} | "
                f"{result['rows_per_s']:,.0f} | {share} | "
                f"{result['bytes'] / result['seconds'] / 1e6:.0f} | {result['peak_mb']:.0f} |"
            )
        return "\n".join(lines)
