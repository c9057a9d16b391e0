"""Load benchmark of the participant journey: wrk against gunicorn and PostgreSQL on loopback.

It loads the seed poll under the slug ``bench-journey`` (replacing an earlier copy and its
participants: point DATABASE_URL at a scratch database), starts participants through
``surveys.journey.actions``, serves the project with gunicorn (DEBUG off) and drives it with
``wrk``,
rotating over the participants' cookies:

- ``bare``: /healthz, a bare Django view, the baseline of the same server in the same run;
- ``page``: GET of a participant's T1 policy page (seven rating grids, cached markup);
- ``submit``: POST of that page (row lock, upsert of seven answers, redirect);
- ``walk``: each simulated participant walks T1 page by page (GET, then POST of each page).

Throughput and p99 latency at 64 connections are printed, with ratios to the bare view.
``--repeat N`` measures every scenario N times in rounds (bare first in each round, each ratio
against its own round's bare figure) and prints the median with the lowest and highest: on a
small shared machine one round can be off by a factor of two.
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import HttpResponse
from django.utils.crypto import get_random_string

from surveys.definition.files import load_definition, save_poll
from surveys.definition.spec import poll_spec
from surveys.journey import access, actions
from surveys.models import Answer, Participant, Poll

SLUG = "bench-journey"
SEED = Path(settings.BASE_DIR) / "seeds" / "west-putin-exit.yaml"
LUA = r"""
local lines = {}
for line in io.lines(os.getenv("BENCH_REQUESTS")) do lines[#lines + 1] = line end
-- Each thread starts at its own place in the list (a table's address differs per thread).
local i = tonumber(tostring({}):match("0x(%x+)"), 16) % #lines
request = function()
  i = i + 1
  local line = lines[(i % #lines) + 1]
  local method, path, cookie, body = line:match("^(%S+) (%S+) (%S+) ?(.*)$")
  local headers = {}
  headers["Cookie"] = (cookie:gsub(";", "; "))
  local text
  if method == "POST" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    text = wrk.format("POST", path, headers, body)
  else
    text = wrk.format("GET", path, headers)
  end
  return text
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command(BaseCommand):
    help = "Benchmark the participant journey with wrk against gunicorn (see the module docstring)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--participants", type=int, default=400)
        parser.add_argument("--connections", type=int, default=64)
        parser.add_argument("--duration", type=int, default=10, help="Seconds per scenario.")
        parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers.")
        parser.add_argument("--repeat", type=int, default=1, help="Rounds of every scenario.")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            raise CommandError("Set DATABASE_URL to a scratch PostgreSQL database.")
        wrk = shutil.which("wrk")
        if wrk is None:
            raise CommandError("wrk is not installed (apt-get install wrk).")
        poll = self._poll()
        workdir = Path(tempfile.mkdtemp(prefix="bench-journey-"))
        files = self._requests(poll, options["participants"], workdir)
        script = workdir / "rotate.lua"
        script.write_text(LUA)
        port = free_port()
        server = self._serve(port, options["workers"])
        rounds: list[dict[str, dict[str, float]]] = []
        try:
            for number in range(options["repeat"]):
                results = {}
                for name in ("bare", "page", "submit", "walk"):
                    results[name] = self._wrk(
                        wrk,
                        port,
                        script,
                        files[name],
                        options["connections"],
                        options["duration"],
                        warm=number == 0,
                    )
                    self.stdout.write(f"{name:7s} {json.dumps(results[name])}")
                rounds.append(results)
        finally:
            self._stop(server)
        self._report(rounds, options)

    def _poll(self) -> Poll:
        data = load_definition(SEED)
        data.update(slug=SLUG, status="open")
        data["design"] = {**data.get("design", {}), "control_share": 0.0}
        # Answers protect their questions: clear them first so a second run can start afresh.
        Answer.objects.filter(poll__slug=SLUG).delete()
        Poll.objects.filter(slug=SLUG).delete()
        poll, _ = save_poll(data=data, source=str(SEED))
        return poll

    def _requests(self, poll: Poll, count: int, workdir: Path) -> dict[str, Path]:
        spec = poll_spec(poll)
        pages = spec.pages(1)
        lines: dict[str, list[str]] = {"bare": [], "page": [], "submit": [], "walk": []}
        for number in range(count):
            participant = actions.give_consent(
                poll=poll,
                spec=spec,
                participant=None,
                entry_key=f"bench-{number}-{get_random_string(8)}",
                language="en" if number % 2 else "uk",
                welcome_seconds=30.0,
            )
            # Far enough that every T1 page may be viewed and submitted again.
            Participant.objects.filter(pk=participant.pk).update(page=len(pages) - 1)
            cookie = self._cookies(participant)
            csrf = cookie.split("csrftoken=")[1]
            lines["bare"].append(f"GET /healthz {cookie}")
            for index, section in enumerate(pages):
                path = f"/p/{poll.slug}/t1/{index + 1}/"
                body = self._answers(spec, section.key, participant.option_order, csrf)
                if index == 0:
                    lines["page"].append(f"GET {path} {cookie}")
                    lines["submit"].append(f"POST {path} {cookie} {body}")
                lines["walk"].append(f"GET {path} {cookie}")
                if index < len(pages) - 1:  # the last page would assign and leave T1
                    lines["walk"].append(f"POST {path} {cookie} {body}")
        files = {}
        for name, rows in lines.items():
            files[name] = workdir / f"{name}.txt"
            files[name].write_text("\n".join(rows) + "\n")
        return files

    def _cookies(self, participant: Participant) -> str:
        response = HttpResponse()
        access.remember(response, participant, SLUG)
        signed = response.cookies[access.cookie_name(SLUG)].value
        return f"{access.cookie_name(SLUG)}={signed};csrftoken={get_random_string(32)}"

    def _answers(self, spec: Any, section: str, order: list[str], csrf: str) -> str:
        fields = [f"csrfmiddlewaretoken={csrf}", "wave=1"]
        for number, question in enumerate(spec.page_questions(1, section, order)):
            name = f"q-{question.key}"
            if question.kind == "rating":
                fields.append(f"{name}={(number * 3) % 11}")
            elif question.kind == "ranking":
                fields += [f"{name}.{key}={rank}" for rank, key in enumerate(order, 1)]
            elif question.choices:
                fields.append(f"{name}={question.choices[0][0]}")
        return "&".join(fields)

    def _serve(self, port: int, workers: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
        }
        # The manifest storage of DEBUG off needs collected static files.
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0", "--ignore=vendor"],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
        )
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "deliberate.wsgi",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "--backlog",
                "2048",
                "--timeout",
                "180",
                "--graceful-timeout",
                "10",
            ],
            cwd=settings.BASE_DIR,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            server.kill()
            raise CommandError("gunicorn did not start within 30 s")
        # The first request of each worker imports the URLconf (and all it pulls in): do it
        # before measuring, one request per worker at a time.
        for _ in range(workers * 3):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=180):
                pass
        return server

    def _stop(self, server: subprocess.Popen[bytes]) -> None:
        # Graceful stop: requests still in flight finish instead of dying with a traceback.
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    def _wrk(
        self,
        wrk: str,
        port: int,
        script: Path,
        requests: Path,
        connections: int,
        duration: int,
        *,
        warm: bool = True,
    ) -> dict[str, float]:
        command = [
            wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
            "-s", str(script), f"http://127.0.0.1:{port}/",
        ]  # fmt: skip
        if warm:
            # Warm the workers' caches (definition and markup) before measuring.
            subprocess.run(
                [*command[:3], "-d2s", *command[4:]],
                env={**os.environ, "BENCH_REQUESTS": str(requests)},
                capture_output=True,
                check=True,
            )
        output = subprocess.run(
            command,
            env={**os.environ, "BENCH_REQUESTS": str(requests)},
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        if "Requests/sec:      0.00" in output:
            raise CommandError(f"no request completed:\n{output}")
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
        p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", output)
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        return {
            "requests_per_second": rate,
            "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 2) if p99 else -1.0,
            "errors": float(non_2xx.group(1)) if non_2xx else 0.0,
        }

    def _report(self, rounds: list[dict[str, dict[str, float]]], options: dict[str, Any]) -> None:
        self.stdout.write(
            f"\n{options['connections']} connections, {options['workers']} gunicorn workers, "
            f"{os.cpu_count()} CPUs, {options['duration']} s per scenario, {len(rounds)} round(s)"
        )
        self.stdout.write(
            f"{'scenario':8s} {'req/s':>9s} {'ratio':>7s} {'p99 ms':>8s} errors"
            + ("   ratio low-high  p99 low-high" if len(rounds) > 1 else "")
        )
        for name in rounds[0]:
            rates = [r[name]["requests_per_second"] for r in rounds]
            ratios = [
                r[name]["requests_per_second"] / r["bare"]["requests_per_second"] for r in rounds
            ]
            p99s = [r[name]["p99_ms"] for r in rounds]
            errors = sum(int(r[name]["errors"]) for r in rounds)
            line = (
                f"{name:8s} {statistics.median(rates):9.1f} {statistics.median(ratios):7.2f} "
                f"{statistics.median(p99s):8.1f} {errors}"
            )
            if len(rounds) > 1:
                line += (
                    f"   {min(ratios):5.2f}-{max(ratios):<5.2f}    {min(p99s):.0f}-{max(p99s):.0f}"
                )
            self.stdout.write(line)
