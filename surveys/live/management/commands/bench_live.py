"""Benchmark of the live rooms over real WebSockets (PostgreSQL and Redis).

Seats ``--rooms`` x ``--members`` simulated members in open rooms of a poll of its own, starts
the ASGI server (daphne, the Redis channel layer) as a subprocess, and from this one process
connects every member with asyncio (the ``websockets`` client), each with the journey's signed
cookie as a browser would have it. Every member joins (the sync), then posts a message every
``--interval`` seconds (first at a random moment within one interval, so posts spread evenly)
for ``--seconds`` seconds. Measured:

* fan-out latency: from a member's send to each member of the room receiving the stored
  message (every delivery), and to the last member of the room receiving it (the message's
  fan-out); p50, p99 and max;
* messages per second stored (acknowledged) and deliveries per second;
* the server process's resident memory (idle, and its peak under load), from /proc.

Baseline, in the same run, server and clients: the same members, frames and rate over the bare
stack (``_bench_asgi``: daphne, Channels and the Redis channel layer's ``group_send``, no
database, no moderator), so every figure is also a ratio to what the stack itself costs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/6 \\
        manage.py migrate
    DATABASE_URL=... REDIS_URL=... manage.py bench_live --rooms 100 --members 10 --seconds 60

Run it against a database of its own: it creates (and with --keep leaves) a poll 'bench-live'.
"""

import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from argparse import ArgumentParser
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core import signing
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from surveys.definition.files import save_poll, validate
from surveys.journey.access import COOKIE_SALT, cookie_name
from surveys.live.models import Message, Room, RoomMember, SessionSlot
from surveys.models import Participant, Poll

SLUG = "bench-live"
SERVER_APP = "surveys.live.management.commands._bench_asgi:application"
CONNECT_AT_ONCE = 20
DRAIN_SECONDS = 5.0
DRAIN_MAX_SECONDS = 60.0
START_SECONDS = 180


def definition() -> dict[str, Any]:
    text = {"en": "Benchmark"}
    return {
        "format": 1,
        "slug": SLUG,
        "status": "open",
        "languages": ["en"],
        "title": text,
        "question": text,
        "design": {
            "control_share": 0.0,
            "group_size": 10,
            "min_subgroup_size": 5,
            "deliberation": "live",
        },
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
                "key": "rate_first",
                "kind": "rating",
                "section": "policy",
                "waves": "both",
                "option": "first",
                "text": text,
                "scale": {"min": 0, "max": 10},
            }
        ],
    }


@dataclass
class Seat:
    room: int  # Room.pk
    cookie: str


@dataclass
class Run:
    """What one phase measured."""

    name: str
    members: int
    sent: dict[str, tuple[float, int]] = field(default_factory=dict)  # token -> (t, room)
    deliveries: dict[str, list[float]] = field(default_factory=dict)  # token -> latencies
    acks: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rss_kib: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def figures(self, room_sizes: dict[int, int]) -> dict[str, Any]:
        every = np.array([x for xs in self.deliveries.values() for x in xs]) * 1000
        complete = []
        for token, (_, room) in self.sent.items():
            got = self.deliveries.get(token, [])
            if len(got) >= room_sizes[room]:
                complete.append(max(got) * 1000)
        full = np.array(complete)
        expected = sum(room_sizes[room] for _, room in self.sent.values())

        def pct(values: np.ndarray, q: float) -> float | None:
            return round(float(np.percentile(values, q)), 1) if values.size else None

        return {
            "phase": self.name,
            "posted": len(self.sent),
            "acknowledged": self.acks,
            "errors": self.errors,
            "messages_per_s": round(len(self.sent) / self.seconds, 1),
            "deliveries": int(every.size),
            "deliveries_expected": expected,
            "deliveries_per_s": round(every.size / self.seconds, 1),
            "delivery_p50_ms": pct(every, 50),
            "delivery_p99_ms": pct(every, 99),
            "fanout_complete": len(complete),
            "fanout_p50_ms": pct(full, 50),
            "fanout_p99_ms": pct(full, 99),
            "fanout_max_ms": round(float(full.max()), 1) if full.size else None,
            "server_rss_peak_mib": round(max(self.rss_kib, default=0) / 1024, 1),
        }


def stop(servers: list[subprocess.Popen[bytes]]) -> None:
    for server in servers:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@transaction.atomic
def remove_poll() -> None:
    """The benchmark's poll, its rooms first (messages and rooms protect their members and
    slots from a cascade)."""
    Message.objects.filter(room__poll__slug=SLUG).delete()
    Room.objects.filter(poll__slug=SLUG).delete()
    Poll.objects.filter(slug=SLUG).delete()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Command(BaseCommand):
    help = "Fan-out latency, throughput and memory of the live rooms (see the module docstring)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--rooms", type=int, default=100)
        parser.add_argument("--members", type=int, default=10, help="Members per room.")
        parser.add_argument("--seconds", type=float, default=60.0, help="Posting time a phase.")
        parser.add_argument("--interval", type=float, default=5.0, help="Seconds between posts.")
        parser.add_argument("--port", type=int, default=8160)
        parser.add_argument(
            "--servers",
            type=int,
            default=1,
            help="ASGI processes on ports --port, --port + 1, ...; members are spread over them "
            "and a room's fan-out crosses processes through Redis, as behind a load balancer.",
        )
        parser.add_argument("--threads", type=int, default=0, help="ASGI_THREADS (0: default).")
        parser.add_argument("--keep", action="store_true", help="Keep the poll afterwards.")
        parser.add_argument("--server-log", help="Append the servers' stderr to this file.")
        parser.add_argument("--json", dest="json_path", help="Also write the figures here.")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql" or not settings.REDIS_URL:
            raise CommandError("The benchmark needs PostgreSQL and REDIS_URL (a real layer).")
        if options["rooms"] < 1 or options["members"] < 2 or options["interval"] <= 0:
            raise CommandError("--rooms at least 1, --members at least 2, --interval above 0.")
        self.server_log = Path(options["server_log"]) if options["server_log"] else None
        seats = self.build(options["rooms"], options["members"])
        self.say(f"{len(seats)} members seated in {options['rooms']} rooms")
        if not 1 <= options["servers"] <= 10:
            raise CommandError("--servers from 1 to 10 (the ports --port .. --port + 9).")
        ports = [options["port"] + i for i in range(options["servers"])]
        servers: list[subprocess.Popen[bytes]] = []
        try:
            for port in ports:
                servers.append(self.start_server(port, options["threads"]))
        except CommandError:
            stop(servers)
            raise
        pids = [server.pid for server in servers]
        figures: dict[str, Any] = {
            "rooms": options["rooms"],
            "members": len(seats),
            "interval_s": options["interval"],
            "seconds": options["seconds"],
            "servers": len(servers),
            "asgi_threads": options["threads"] or "default",
        }
        try:
            figures["server_rss_idle_mib"] = round(sum(map(rss_kib, pids)) / 1024, 1)
            sizes: dict[int, int] = {}
            for seat in seats:
                sizes[seat.room] = sizes.get(seat.room, 0) + 1
            for name in ("baseline", "rooms"):
                run = asyncio.run(self.drive(name, seats, pids, ports, options))
                figures[name] = run.figures(sizes)
                self.say(json.dumps(figures[name]))
        finally:
            stop(servers)
            if not options["keep"]:
                remove_poll()
        base, rooms = figures["baseline"], figures["rooms"]
        figures["ratio"] = {
            key: round(rooms[key] / base[key], 2) if base[key] and rooms[key] else None
            for key in ("delivery_p50_ms", "delivery_p99_ms", "fanout_p50_ms", "fanout_p99_ms")
        }
        figures["ratio"]["server_rss_peak"] = round(
            rooms["server_rss_peak_mib"] / max(base["server_rss_peak_mib"], 1e-9), 2
        )
        self.say(json.dumps(figures, indent=2))
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(figures, indent=2))

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    # ------------------------------------------------------------------ the poll and its rooms

    @transaction.atomic
    def build(self, n_rooms: int, per_room: int) -> list[Seat]:
        remove_poll()
        poll, _ = save_poll(data=validate(definition(), "<bench>"), source="<bench>")
        now = timezone.now()
        slot = SessionSlot.objects.create(
            poll=poll, starts_at=now, capacity=n_rooms * per_room, item_seconds=86_400
        )
        rooms = Room.objects.bulk_create(
            Room(
                poll=poll,
                slot=slot,
                language="en",
                group=number,
                state=Room.State.ITEM,
                deadline=now + timedelta(days=1),
                opened_at=now,
                version=1,
            )
            for number in range(1, n_rooms + 1)
        )
        people = Participant.objects.bulk_create(
            Participant(
                poll=poll,
                arm="treatment",
                group=index // per_room + 1,
                group_language="en",
                language="en",
                step=Participant.Step.LIVE,
                consented_at=now,
            )
            for index in range(n_rooms * per_room)
        )
        RoomMember.objects.bulk_create(
            RoomMember(
                room=rooms[index // per_room],
                participant=person,
                pseudonym=f"Member {index % per_room + 1}",
                joined_at=now,
            )
            for index, person in enumerate(people)
        )
        name = cookie_name(SLUG)
        signer = signing.get_cookie_signer(salt=name + COOKIE_SALT)
        return [
            Seat(room=rooms[index // per_room].pk, cookie=f"{name}={signer.sign(p.public_id)}")
            for index, p in enumerate(people)
        ]

    # ------------------------------------------------------------------ the server

    def start_server(self, port: int, threads: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "deliberate.settings",
            "DEBUG": "false",
            "SECRET_KEY": settings.SECRET_KEY,
            "REDIS_URL": settings.REDIS_URL,
        }
        if threads:
            env["ASGI_THREADS"] = str(threads)
        daphne = Path(sys.executable).with_name("daphne")
        server = subprocess.Popen(
            # A thousand members arriving within seconds on a busy machine can take longer than
            # daphne's default 5 s to be admitted (a database read each); a timed-out handshake
            # would be a failure of the benchmark's start, not a figure of the rooms.
            [
                str(daphne),
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "--websocket_connect_timeout",
                "120",
                "--ping-interval",
                "60",
                SERVER_APP,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.server_log.open("ab") if self.server_log else subprocess.DEVNULL,
        )
        # Importing Django and the site takes a few seconds, much longer on a loaded machine.
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError(f"the server exited with {server.returncode}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return server
            time.sleep(0.2)
        server.kill()
        raise CommandError(f"the server did not listen on port {port} within {START_SECONDS} s")

    # ------------------------------------------------------------------ the clients

    async def drive(
        self,
        name: str,
        seats: list[Seat],
        pids: list[int],
        ports: list[int],
        options: dict[str, Any],
    ) -> Run:
        interval, seconds = options["interval"], options["seconds"]
        run = Run(name, len(seats))
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)
        echo = name == "baseline"

        async def open_one(index: int, seat: Seat) -> ClientConnection:
            port = ports[index % len(ports)]
            path = f"/bench/echo/{seat.room}/" if echo else f"/ws/live/{seat.room}/"
            headers = Headers() if echo else Headers({"Cookie": seat.cookie})
            async with gate:
                ws = await connect(
                    f"ws://127.0.0.1:{port}{path}",
                    origin=Origin(f"http://127.0.0.1:{port}"),
                    additional_headers=headers,
                    compression=None,
                    ping_interval=None,
                    open_timeout=60,
                    max_queue=None,
                )
                if not echo:
                    await ws.send(json.dumps({"type": "join", "since": 0}))
                    while json.loads(await ws.recv()).get("type") != "synced":
                        pass
                return ws

        sockets = await asyncio.gather(*(open_one(i, seat) for i, seat in enumerate(seats)))
        self.say(f"{name}: {len(sockets)} connections open and synced")
        start = time.perf_counter()
        stop = start + seconds

        async def receive(ws: ClientConnection) -> None:
            with contextlib.suppress(ConnectionClosed):
                await read(ws)

        async def read(ws: ClientConnection) -> None:
            async for frame in ws:
                now = time.perf_counter()
                event = json.loads(frame)
                kind = event.get("type")
                if kind in ("message", "post") and str(event.get("text", "")).startswith("b:"):
                    token = event["text"].split()[0]
                    if token in run.sent:
                        run.deliveries.setdefault(token, []).append(now - run.sent[token][0])
                elif kind == "ack":
                    run.acks += 1
                elif kind == "error":
                    run.errors[event.get("code", "?")] = run.errors.get(event.get("code"), 0) + 1

        async def post(ws: ClientConnection, seat: Seat) -> None:
            await asyncio.sleep(random.uniform(0, interval))
            while time.perf_counter() < stop:
                token = f"b:{uuid.uuid4().hex[:12]}"
                run.sent[token] = (time.perf_counter(), seat.room)
                frame = {"type": "post", "client_id": str(uuid.uuid4()), "text": f"{token} hi"}
                try:
                    await ws.send(json.dumps(frame))
                except ConnectionClosed as closed:
                    # A connection the server dropped is a figure (errors), not the end of the run.
                    del run.sent[token]
                    code = f"closed_{closed.rcvd.code if closed.rcvd else 'abnormally'}"
                    run.errors[code] = run.errors.get(code, 0) + 1
                    return
                await asyncio.sleep(interval)

        finished = asyncio.Event()

        async def sample() -> None:
            while not finished.is_set():
                run.rss_kib.append(sum(map(rss_kib, pids)))
                await asyncio.sleep(0.5)

        readers = [asyncio.create_task(receive(ws)) for ws in sockets]
        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(post(ws, seat) for ws, seat in zip(sockets, seats, strict=True)))
        run.seconds = time.perf_counter() - start
        # Deliveries still in flight when posting stops are waited for (a loaded server can be
        # seconds behind) until none arrives for DRAIN_SECONDS, at most DRAIN_MAX_SECONDS.
        drained_by = time.perf_counter() + DRAIN_MAX_SECONDS
        count = -1
        while time.perf_counter() < drained_by:
            now = sum(map(len, run.deliveries.values()))
            if now == count:
                break
            count = now
            await asyncio.sleep(DRAIN_SECONDS)
        finished.set()
        await sampler
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        await asyncio.gather(*readers, return_exceptions=True)
        if echo:
            run.acks = len(run.sent)  # the bare stack stores nothing to acknowledge
        latencies = [x for xs in run.deliveries.values() for x in xs]
        if latencies:
            self.say(f"{name}: median delivery {statistics.median(latencies) * 1000:.1f} ms")
        return run
