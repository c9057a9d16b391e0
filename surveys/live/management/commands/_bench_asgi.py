"""The ASGI application of ``bench_live``: the site's own, plus the baseline's echo route.

``/bench/echo/<room>/`` is the bare stack the live rooms are built on, with nothing of theirs:
daphne, Channels and the Redis channel layer. A frame a client sends is passed to its room's
group with ``group_send`` and every connection in the group sends it on, untouched (no
database, no cookie, no moderator). The benchmark drives it exactly as it drives the rooms, so
the rooms' figures read as a ratio to what the stack itself costs. Only the benchmark's server
process loads this module; the site never routes to it.
"""

import functools
import os
from typing import Any

from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings
from django.urls import path

from deliberate.asgi import application as site
from surveys.live import consumers

# ``bench_live --parallel-db``, an experiment: Channels runs database_sync_to_async calls
# thread-sensitively, all of a process's on one thread, so one process stores one post at a time.
# Here the room consumer's calls go to the thread pool instead (ASGI_THREADS threads; each post
# still locks its room row, so seqs stay gapless), to measure what that one-thread queue costs.
# ``bench_live --redis-pool N``, an experiment: the channel layer's Redis connection pool holds
# N connections instead of redis-py's 100, which it refuses to exceed (the consumer then fails
# and daphne closes the socket with 1011) rather than wait.
if os.environ.get("BENCH_REDIS_POOL"):
    for layer in settings.CHANNEL_LAYERS.values():
        hosts = layer.get("CONFIG", {}).get("hosts", [])
        layer["CONFIG"]["hosts"] = [
            {"address": host, "max_connections": int(os.environ["BENCH_REDIS_POOL"])}
            for host in hosts
        ]

if os.environ.get("BENCH_PARALLEL_DB") == "1":
    consumers.database_sync_to_async = functools.partial(  # type: ignore[assignment]
        DatabaseSyncToAsync, thread_sensitive=False
    )


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.group = f"bench.echo.{int(self.scope['url_route']['kwargs']['room'])}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(self.group, {"type": "bench.echo", "text": text_data})

    async def bench_echo(self, message: dict[str, Any]) -> None:
        await self.send(text_data=message["text"])


echo = URLRouter([path("bench/echo/<int:room>/", EchoConsumer.as_asgi())])


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The echo route for /bench/echo/, everything else as the site serves it."""
    if scope["path"].startswith("/bench/echo/"):
        return await echo(scope, receive, send)
    return await site(scope, receive, send)


application = ProtocolTypeRouter({"http": site, "websocket": websocket})
