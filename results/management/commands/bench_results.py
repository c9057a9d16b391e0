"""Benchmark of the results engine on a synthetic poll (PostgreSQL only).

Builds a poll of N participants x M paired rating items (N x M x 2 answer rows; the defaults
give 6 million) with PostgreSQL COPY, then times in one run: the raw binary COPY of those rows,
the full recompute, the numeric part alone and a naive ORM version, plus the peak memory of a
full recompute in a fresh process and, with --freshness and REDIS_URL set, how long a
completion takes to show in the snapshot under a steady stream of completions.

Run it against its own database, for example:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_results manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_results manage.py bench_results
"""

import io
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from results.compute.loading import (
    ANSWER_ROW,
    NUMERIC_SQL,
    PollData,
    arrange,
    load_poll_data,
    load_questions,
)
from results.compute.progress import job_status
from results.compute.recompute import build_payload, recompute_poll
from results.models import ResultSnapshot
from results.tasks import request_recompute, schedule_recompute
from surveys.definition.files import save_poll, validate
from surveys.models import Answer, Participant, Poll

SLUG = "bench-results"


def definition(items: int) -> dict[str, Any]:
    scale = {"min": 0, "max": 10}
    text = {"en": "Benchmark"}
    return {
        "format": 1,
        "slug": SLUG,
        "status": "closed",
        "languages": ["en"],
        "title": text,
        "question": text,
        "design": {"control_share": 0.3, "group_size": 8, "min_subgroup_size": 5},
        "sections": [{"key": "policy", "title": text}],
        "positions": [
            {
                "key": key,
                "title": text,
                "summary": text,
                "body": text,
                "sources": [{"title": "Benchmark", "publisher": "Benchmark"}],
            }
            for key in ("A", "B")
        ],
        "options": [
            {"key": key, "text": text, "position": position, "axis": axis}
            for axis, (key, position) in enumerate((("first", "A"), ("second", "B")), 1)
        ],
        "questions": [
            {
                "key": f"item_{i:02d}",
                "kind": "rating",
                "section": "policy",
                "waves": "both",
                "dont_know": True,
                "text": {"en": f"Item {i}"},
                "scale": scale,
            }
            for i in range(1, items + 1)
        ],
    }


def timed(function: Any, repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


class Command(BaseCommand):
    help = "Time the results engine on a synthetic poll (see the module docstring)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--participants", type=int, default=100_000)
        parser.add_argument("--items", type=int, default=30)
        parser.add_argument("--repeat", type=int, default=3)
        parser.add_argument("--rebuild", action="store_true", help="Drop and rebuild the poll.")
        parser.add_argument("--skip-naive", action="store_true")
        parser.add_argument(
            "--naive-participants",
            type=int,
            default=10_000,
            help="Time the naive ORM version on the first N participants (0: all) and "
            "extrapolate its throughput to the whole poll.",
        )
        parser.add_argument("--freshness", type=int, default=0, help="Completions to stream.")
        parser.add_argument("--rate", type=float, default=2.0, help="Completions per second.")
        parser.add_argument("--json", dest="json_path", help="Also write the figures here.")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("The benchmark needs PostgreSQL (set DATABASE_URL).")
        figures: dict[str, Any] = {}
        poll = self.build(options["participants"], options["items"], options["rebuild"])
        n_rows = Answer.objects.filter(poll=poll).count()
        figures["answer_rows"] = n_rows
        self.say(f"poll '{SLUG}': {n_rows} answer rows")
        repeat = options["repeat"]

        figures["raw_copy_s"], _ = timed(lambda: self.raw_copy(poll.pk), repeat)
        self.say(f"raw binary COPY: {figures['raw_copy_s']:.3f} s")

        def full() -> ResultSnapshot:
            ResultSnapshot.objects.filter(poll=poll).delete()
            return recompute_poll(poll.pk)

        figures["full_recompute_s"], _ = timed(full, repeat)
        self.say(f"full recompute: {figures['full_recompute_s']:.3f} s")

        with transaction.atomic():
            data = load_poll_data(poll.pk)
        figures["load_s"], _ = timed(lambda: load_poll_data(poll.pk), repeat)
        figures["numeric_s"], payload = timed(lambda: build_payload(data), repeat)
        figures["payload_bytes"] = len(json.dumps(payload))
        self.say(
            f"bulk load: {figures['load_s']:.3f} s; numeric part: {figures['numeric_s']:.3f} s"
        )

        figures["peak_rss_mb"] = self.peak_memory()
        self.say(
            f"peak RSS of a full recompute in a fresh process: {figures['peak_rss_mb']:.0f} MB"
        )

        if not options["skip_naive"]:
            figures.update(self.naive(poll, options["naive_participants"], n_rows, figures))
        figures["full_over_copy"] = figures["full_recompute_s"] / figures["raw_copy_s"]
        if options["freshness"]:
            figures.update(self.freshness(poll, options["freshness"], options["rate"]))
        self.stdout.write(json.dumps(figures, indent=2))
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(figures, indent=2))

    def say(self, message: str) -> None:
        self.stderr.write(message)

    # -- data -------------------------------------------------------------------------------

    def build(self, n: int, items: int, rebuild: bool) -> Poll:
        existing = Poll.objects.filter(slug=SLUG).first()
        if existing and not rebuild:
            return existing
        if existing:
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM surveys_answer WHERE poll_id = %s", [existing.pk])
            existing.delete()
        poll, _ = save_poll(data=validate(definition(items), "<bench>"), source="<bench>")
        rng = np.random.default_rng(1)
        control = rng.random(n) < poll.control_share
        now = timezone.now()
        start = time.perf_counter()
        people = [
            Participant(
                poll=poll,
                arm="control" if control[i] else "treatment",
                group=i // poll.group_size + 1,
                consented_at=now,
                completed_at=now,
                step=Participant.Step.DONE,
            )
            for i in range(n)
        ]
        ids = np.array([p.pk for p in Participant.objects.bulk_create(people, batch_size=5000)])
        question_ids = np.array([q.id for q in load_questions(poll.pk)[0]], dtype=np.int64)
        self.say(f"{n} participants in {time.perf_counter() - start:.1f} s; writing answers")
        position = rng.normal(5, 2.5, n)
        for j, question_id in enumerate(question_ids):
            for wave in (1, 2):
                shift = np.where(control, 0, 0.3 * (5 - position)) if wave == 2 else 0
                value = np.clip(
                    np.rint(position + shift + rng.normal(0, 1.5, n) + j % 3 - 1), 0, 10
                )
                dk = rng.random(n) < 0.03
                frame = pd.DataFrame(
                    {
                        "poll_id": poll.pk,
                        "participant_id": ids,
                        "question_id": question_id,
                        "wave": wave,
                        "value": np.where(dk, "", value.astype(int).astype(str)),
                        "number": np.where(dk, np.nan, value),
                        "missing": np.where(dk, "dont_know", ""),
                        "answered_at": now.isoformat(),
                    }
                )
                buffer = io.StringIO()
                frame.to_csv(buffer, header=False, index=False, na_rep="")
                columns = (
                    "(poll_id, participant_id, question_id, wave, value, number, missing, "
                    "answered_at)"
                )
                with (
                    connection.cursor() as cursor,
                    cursor.copy(
                        # An empty missing kind is "" (not NULL: the column is NOT NULL).
                        f"COPY surveys_answer {columns} FROM STDIN "
                        "(FORMAT csv, FORCE_NOT_NULL (missing))"
                    ) as copy,
                ):
                    copy.write(buffer.getvalue())
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE surveys_answer")
            cursor.execute("ANALYZE surveys_participant")
        self.say(f"synthetic poll built in {time.perf_counter() - start:.1f} s")
        return poll

    # -- measurements -----------------------------------------------------------------------

    @staticmethod
    def raw_copy(poll_id: int) -> int:
        """The baseline: stream the rows the engine needs as binary COPY, nothing else."""
        size = 0
        sql = f"COPY ({NUMERIC_SQL.format(poll_id=int(poll_id))}) TO STDOUT (FORMAT binary)"
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for chunk in copy:
                size += len(chunk)
        return size

    def naive(self, poll: Poll, limit: int, n_rows: int, figures: dict[str, Any]) -> dict[str, Any]:
        """Time the naive ORM version; on a subset (the first ``limit`` participants by id)
        its rows per second are measured and the whole poll's time extrapolated from them."""
        seconds, data = timed(lambda: build_payload(self.naive_load(poll, limit)), 1)
        rows = data["meta"]["n_answers"]
        throughput = rows / seconds
        extrapolated = seconds if rows >= n_rows else n_rows / throughput
        out = {
            "naive_participants": data["meta"]["n_participants"],
            "naive_rows": rows,
            "naive_measured_s": seconds,
            "naive_rows_per_s": throughput,
            "naive_extrapolated": rows < n_rows,
            "naive_orm_s": extrapolated,
            "naive_ratio": extrapolated / figures["full_recompute_s"],
        }
        label = "extrapolated from the subset" if rows < n_rows else "measured"
        self.say(
            f"naive ORM: {rows} rows in {seconds:.1f} s ({throughput:,.0f} rows/s); whole poll "
            f"{extrapolated:.0f} s {label}, {out['naive_ratio']:.1f}x the full recompute"
        )
        return out

    @staticmethod
    def naive_load(poll: Poll, limit: int = 0) -> PollData:
        """What a straightforward ORM version does: model instances, Python dicts."""
        people = Participant.objects.filter(poll=poll).completed().order_by("id")
        participants = list(people[:limit] if limit else people)
        answers: dict[tuple[int, int, int], Answer] = {}
        query = Answer.objects.filter(poll=poll)
        if limit:
            query = query.filter(participant_id__lte=participants[-1].pk)
        for answer in query:
            answers[(answer.participant_id, answer.question_id, answer.wave)] = answer
        rows = np.array(
            [
                (p, q, w, np.nan if a.number is None else a.number, a.missing == "dont_know")
                for (p, q, w), a in answers.items()
            ],
            dtype=ANSWER_ROW,
        )
        questions, axis = load_questions(poll.pk)
        ids = np.array([p.pk for p in participants], dtype=np.int64)
        values, dont_know, answered = arrange(rows, ids, questions)
        return PollData(
            poll_id=poll.pk,
            min_subgroup_size=poll.min_subgroup_size,
            questions=questions,
            option_axis=axis,
            participant_ids=ids,
            arm=np.array(
                [{"treatment": 1, "control": 2}.get(p.arm, 0) for p in participants], dtype=np.int8
            ),
            group=np.array([p.group or -1 for p in participants]),
            weight=np.array([p.weight for p in participants], dtype=float),
            values=values,
            dont_know=dont_know,
            answered=answered,
            n_answers=int(rows.size),
        )

    @staticmethod
    def peak_memory() -> float:
        """Peak RSS (MB) of `manage.py recompute` in a fresh process, after a forced change."""
        ResultSnapshot.objects.filter(poll__slug=SLUG).delete()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        subprocess.run(
            [sys.executable, "manage.py", "recompute", SLUG, "--quiet"],
            cwd=settings.BASE_DIR,
            check=True,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
        )
        return max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024

    def freshness(self, poll: Poll, count: int, rate: float) -> dict[str, Any]:
        """Stream ``count`` completions at ``rate`` per second through a real worker and
        measure completion -> snapshot latency."""
        if not os.environ.get("REDIS_URL"):
            raise CommandError("--freshness needs REDIS_URL (and starts its own worker).")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "deliberate",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=settings.BASE_DIR,
            env={**os.environ, "CONN_MAX_AGE": "0"},
        )
        try:
            recompute_poll(poll.pk)
            self.say(f"worker warm after {self.warm_up(poll):.1f} s")
            question_ids = [q.id for q in load_questions(poll.pk)[0]]
            base = Participant.objects.filter(poll=poll).completed().count()
            commits: list[float] = []
            seen: dict[int, float] = {}
            for k in range(count):
                with transaction.atomic():
                    now = timezone.now()
                    participant = Participant.objects.create(
                        poll=poll,
                        arm="treatment",
                        group=10**6 + k,
                        consented_at=now,
                        completed_at=now,
                        step=Participant.Step.DONE,
                    )
                    Answer.objects.bulk_create(
                        Answer(
                            poll=poll,
                            participant=participant,
                            question_id=q,
                            wave=w,
                            value=5,
                            number=5.0,
                        )
                        for q in question_ids
                        for w in (1, 2)
                    )
                    schedule_recompute(poll.pk)
                commits.append(time.time())
                # Watch the snapshots while streaming: the poll keeps only its newest
                # KEEP_SNAPSHOTS, so a snapshot looked for afterwards may be gone and its
                # completions would be credited to a later one.
                pause_until = time.time() + 1 / rate
                while time.time() < pause_until:
                    self.observe(poll, base, commits, seen)
                    time.sleep(0.05)
            latencies = self.wait_for(poll, base, commits, seen)
        finally:
            worker.terminate()
            worker.wait(30)
        p95 = float(np.percentile(latencies, 95))
        self.say(
            f"freshness over {count} completions: p50 {np.median(latencies):.2f} s, p95 {p95:.2f} s"
        )
        return {
            "freshness_p50_s": float(np.median(latencies)),
            "freshness_p95_s": p95,
            "freshness_max_s": float(max(latencies)),
            "freshness_completions": count,
        }

    @staticmethod
    def warm_up(poll: Poll) -> float:
        """Wait until the new worker has run one recompute of the poll, so the stream measures
        a running deployment: a worker's first recompute also starts it up (Django, then the
        numeric libraries), seconds that the first completions would otherwise all wait for."""
        start = time.perf_counter()
        job_id = request_recompute(poll.pk)
        deadline = time.time() + 300
        while job_status(job_id)["state"] not in ("done", "failed"):
            if time.time() > deadline:
                raise CommandError("the worker did not run a recompute within 5 minutes")
            time.sleep(0.1)
        return time.perf_counter() - start

    @staticmethod
    def observe(poll: Poll, base: int, commits: list[float], seen: dict[int, float]) -> None:
        """Credit each completion to the first snapshot that counts it: latency = that
        snapshot's time minus the completion's commit time."""
        for n, computed in ResultSnapshot.objects.filter(poll=poll).values_list(
            "n_participants", "computed_at"
        ):
            for k in range(len(commits)):
                if n >= base + k + 1:
                    latency = max(computed.timestamp() - commits[k], 0.0)
                    seen[k] = min(seen.get(k, latency), latency)

    def wait_for(
        self, poll: Poll, base: int, commits: list[float], seen: dict[int, float]
    ) -> list[float]:
        """Keep watching until every completion is in a snapshot (at most five minutes)."""
        deadline = time.time() + 300
        while len(seen) < len(commits) and time.time() < deadline:
            self.observe(poll, base, commits, seen)
            time.sleep(0.1)
        return [seen.get(k, float("inf")) for k in range(len(commits))]
