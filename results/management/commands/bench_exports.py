"""``manage.py bench_exports``: export throughput and peak memory at 1 M and 6 M answers.

Run it against a database of its own, e.g.::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_exports manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_exports manage.py bench_exports

It builds synthetic polls from the seed definition (participants by bulk insert, answers by one
INSERT ... SELECT in PostgreSQL), then measures, in the same run and each in a fresh process so
peak memory is its own: raw ``COPY ... TO STDOUT (FORMAT csv)`` of the poll's answer rows (the
ceiling), the long CSV export and the long Parquet export; ``--methods`` adds a naive ORM export
(model instances with select_related, written by csv.writer), slow at 6 M rows.

Each method runs ``--repeat`` times, the methods taking turns so that other work on the machine
falls on all of them alike. A ratio is the method's throughput as a share of raw COPY's in the
same round (raw seconds / method seconds); the table gives the median and the range over rounds.
Peak RSS is the measuring process's maximum resident set (Django and its imports included);
"own" is what the export added to the process it started in. CPU seconds of the database
backend (read from /proc where PostgreSQL runs on the same machine) and of the exporting process
show where the time goes, and move less than wall time when other work shares the machine.
``--json PATH`` writes every measurement and the summary.
"""

import csv
import io
import json
import os
import resource
import statistics
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
DEFAULT_METHODS = ("raw_copy", "long_csv", "parquet")

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
        cursor.execute("ANALYZE surveys_participant")
    log(f"  {poll.answers.count()} answers in {time.perf_counter() - started:.0f} s")
    return poll


def raw_copy(poll: Poll) -> Iterator[bytes]:
    """The ceiling: the poll's answer rows as PostgreSQL writes them, read as psycopg gives them
    (a chunk per row), with no join, no order and no expression."""
    sql = f"SELECT * FROM surveys_answer WHERE poll_id = {int(poll.pk)}"
    copying = f"COPY ({sql}) TO STDOUT (FORMAT csv)"
    with connection.cursor() as cursor, cursor.cursor.copy(copying) as copy:
        for chunk in copy:
            yield bytes(chunk)


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


def server_cpu(backend: int) -> float | None:
    """CPU seconds the database backend has used, where it runs on this machine (else None)."""
    try:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(method: str, slug: str) -> dict[str, Any]:
    poll = Poll.objects.get(slug=slug)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    chunks = {
        "raw_copy": raw_copy,
        "long_csv": exports.long_csv_chunks,
        "parquet": exports.long_parquet_chunks,
        "naive_orm": naive_orm,
    }[method](poll)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    db_before, cpu_before = server_cpu(backend), client_cpu()
    started = time.perf_counter()
    size = sum(len(chunk) for chunk in chunks)
    seconds = time.perf_counter() - started
    db_after, cpu_after = server_cpu(backend), client_cpu()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "bytes": size,
        "peak_mb": peak,
        "start_mb": base,
        # Where the time goes, steadier than wall time on a busy machine.
        "db_cpu_s": None if db_before is None else db_after - db_before,
        "client_cpu_s": cpu_after - cpu_before,
    }


class Command(BaseCommand):
    help = "Benchmark the long CSV and Parquet exports against raw COPY and a naive ORM export."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--sizes", default="1000000,6000000", help="Answer counts.")
        parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=str(METHODS))
        parser.add_argument("--repeat", type=int, default=3, help="Rounds per size.")
        parser.add_argument("--json", help="Write the measurements and summary here.")
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
        if "raw_copy" not in methods:
            methods.insert(0, "raw_copy")  # every ratio is against raw COPY of the same round
        results = []
        for size in sizes:
            poll = build_poll(f"bench-{size}", size, self.stderr.write)
            rows = poll.answers.count()
            for round_ in range(1, options["repeat"] + 1):
                for method in methods:
                    outcome = self.child(method, poll.slug)
                    outcome.update(
                        method=method, rows=rows, round=round_, rows_per_s=rows / outcome["seconds"]
                    )
                    results.append(outcome)
                    self.stderr.write(
                        f"{rows:>9} #{round_} {method:<10} {outcome['seconds']:7.2f} s "
                        f"{outcome['rows_per_s']:>10,.0f} rows/s  peak {outcome['peak_mb']:.0f} MB"
                    )
        summary = summarise(results, methods)
        self.stdout.write(table(summary, methods))
        if options["json"]:
            Path(options["json"]).write_text(
                json.dumps({"measurements": results, "summary": summary}, indent=2)
            )

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


def summarise(results: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    """Per size and method: median seconds, the ratio to raw COPY of the same round (median and
    range), the highest peak RSS and the most the export itself added."""
    summary = []
    for rows in sorted({r["rows"] for r in results}):
        raw = {
            r["round"]: r["seconds"]
            for r in results
            if r["rows"] == rows and r["method"] == "raw_copy"
        }
        for method in methods:
            runs = [r for r in results if r["rows"] == rows and r["method"] == method]
            ratios = [raw[r["round"]] / r["seconds"] for r in runs if r["round"] in raw]
            summary.append(
                {
                    "rows": rows,
                    "method": method,
                    "seconds": statistics.median(r["seconds"] for r in runs),
                    "seconds_range": [
                        min(r["seconds"] for r in runs),
                        max(r["seconds"] for r in runs),
                    ],
                    "ratio": statistics.median(ratios),
                    "ratio_range": [min(ratios), max(ratios)],
                    "peak_mb": max(r["peak_mb"] for r in runs),
                    "own_mb": max(r["peak_mb"] - r["start_mb"] for r in runs),
                    "bytes": runs[0]["bytes"],
                    "db_cpu_s": median_of(runs, "db_cpu_s"),
                    "client_cpu_s": median_of(runs, "client_cpu_s"),
                }
            )
    return summary


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def table(summary: list[dict[str, Any]], methods: list[str]) -> str:
    """One line per size: seconds, ratio to raw COPY and peak RSS of each method."""
    head = ["rows"]
    for method in methods:
        head += [f"{method} s", f"{method} ratio", f"{method} peak MB (own)"]
        head += [f"{method} CPU s db/client"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for rows in sorted({s["rows"] for s in summary}):
        cells = [f"{rows:,}"]
        for method in methods:
            s = next(s for s in summary if s["rows"] == rows and s["method"] == method)
            low, high = s["seconds_range"]
            cells.append(f"{s['seconds']:.2f} ({low:.2f}-{high:.2f})")
            low, high = s["ratio_range"]
            cells.append(f"{100 * s['ratio']:.0f} % ({100 * low:.0f}-{100 * high:.0f})")
            cells.append(f"{s['peak_mb']:.0f} ({s['own_mb']:.0f})")
            db = "-" if s["db_cpu_s"] is None else f"{s['db_cpu_s']:.1f}"
            cells.append(f"{db}/{s['client_cpu_s']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
