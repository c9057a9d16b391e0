"""The ASGI application of ``bench_live``: the site's own, plus the baseline's echo route.

``/bench/echo/<room>/`` is the bare stack the live rooms are built on, with nothing of theirs:
daphne, Channels and the Redis channel layer. A frame a client sends is passed to its room's
group with ``group_send`` and every connection in the group sends it on, untouched (no
database, no cookie, no moderator). The benchmark drives it exactly as it drives the rooms, so
the rooms' figures read as a ratio to what the stack itself costs. Only the benchmark's server
process loads this module; the site never routes to it.
"""

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from deliberate.asgi import application as site


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
