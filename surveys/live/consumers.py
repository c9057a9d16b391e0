"""The live room's WebSocket: one connection per member's page, at ``/ws/live/<room>/``.

The member is the participant of the journey's signed per-poll cookie, seated in this room and
not removed; anyone else is refused at the handshake (close code 4403) and nothing is stored.
Every request goes through ``surveys.live.client`` (its rate limit, then ``actions``, which
store first and fan out after commit); events from the room's channel group are forwarded once
the client has synced, and a message already sent by the sync is never sent again. The protocol
is in docs/live-rooms.md.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core import signing
from django.db import connection
from django.utils.translation import gettext as _

from surveys.journey.access import COOKIE_AGE, COOKIE_SALT, cookie_name
from surveys.live import client, moderator
from surveys.live.models import Room, RoomMember

# The largest frame a client may send (a message of MAX_MESSAGE_CHARS in JSON fits easily).
MAX_FRAME_BYTES = 8 * 1024
CLOSE_REFUSED = 4403
CLOSE_REMOVED = 4410


def in_pool(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run ``function`` in a pooled thread (its own database connection), not on the one thread
    Channels uses by default: every member's request would otherwise wait for every other's.
    The room row lock, not a thread, orders the writes of one room. SQLite (the embedded
    default) has one writer anyway and no row locks: there, one thread."""
    return database_sync_to_async(function, thread_sensitive=connection.vendor == "sqlite")


def find_member(room_id: int, cookies: dict[str, str]) -> RoomMember | None:
    """The seated, not removed member this browser's journey cookie names in this room."""
    room = Room.objects.select_related("poll").filter(pk=room_id).first()
    if room is None:
        return None
    name = cookie_name(room.poll.slug)
    value = cookies.get(name)
    if not value:
        return None
    try:
        public_id = signing.get_cookie_signer(salt=name + COOKIE_SALT).unsign(
            value, max_age=COOKIE_AGE
        )
    except signing.BadSignature:
        return None
    return (
        RoomMember.objects.select_related("room")
        .filter(
            room=room,
            removed_at__isnull=True,
            participant__public_id=public_id,
            participant__revoked_at__isnull=True,
        )
        .first()
    )


def _host_port(hostname: str | None, port: int | None) -> tuple[str, int | None]:
    # 80 and 443 stand for "the default": behind a TLS proxy the scheme seen here is not the
    # page's, so a default port on either side matches the other's absence.
    return (hostname or "").lower(), None if port in (None, 80, 443) else port


def same_origin(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the handshake's Origin is the page's own site: the same host AND port as the
    Host it was sent to (a page served on another port of the same host name is another
    origin), or an origin listed in CSRF_TRUSTED_ORIGINS. Browsers always send both headers."""
    found = {name.lower(): value.decode("latin-1") for name, value in headers}
    origin, host = found.get(b"origin", ""), found.get(b"host", "")
    if not origin or not host:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    page, target = urlsplit(origin), urlsplit(f"//{host}")
    try:
        page_port, target_port = page.port, target.port
    except ValueError:
        return False  # a port that is not a number
    if page.scheme not in ("http", "https") or not page.hostname:
        return False
    return _host_port(page.hostname, page_port) == _host_port(target.hostname, target_port)


class RoomConsumer(AsyncWebsocketConsumer):
    member: RoomMember | None = None
    synced_upto: int | None = None

    async def connect(self) -> None:
        room_id = int(self.scope["url_route"]["kwargs"]["room_id"])
        if not same_origin(self.scope.get("headers", [])):
            # Channels' origin validator matches host names only; a page on another port of
            # the same host could otherwise open a member's room with their cookie.
            await self.close(code=CLOSE_REFUSED)
            return
        self.member = await in_pool(find_member)(room_id, self.scope.get("cookies", {}))
        if self.member is None:
            await self.close(code=CLOSE_REFUSED)
            return
        self.group = moderator.group_name(room_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.member is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def send_json(self, content: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))

    async def error(self, code: str, message: str, **detail: Any) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **detail})

    # ------------------------------------------------------------- from the client

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data.encode()) > MAX_FRAME_BYTES:
            await self.error(
                "too_large",
                _("A frame must be JSON text of at most %(limit)s bytes.")
                % {"limit": MAX_FRAME_BYTES},
                limit=MAX_FRAME_BYTES,
            )
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.error("malformed", _("The frame is not valid JSON."))
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.error("malformed", _("A frame is a JSON object with a text 'type'."))
            return
        events = await in_pool(client.handle)(member=self.member, payload=content)
        for event in events:
            await self.send_json(event)
            if event["type"] == "synced":
                # Events of messages up to here were sent by this sync: skip them when they come.
                self.synced_upto = event["last_seq"]
            elif event["type"] == "error" and event["code"] == "removed":
                await self.close(code=CLOSE_REMOVED)

    # ------------------------------------------------------------- from the room's group

    async def live_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        kind = event.get("type")
        if kind == "removed" and event.get("member_id") == self.member.pk:
            await self.error("removed", _("You were removed from this room."))
            await self.close(code=CLOSE_REMOVED)
            return
        if self.synced_upto is None:
            return  # the client's join will fetch all of it
        if kind in ("message", "nudge"):
            if event["seq"] <= self.synced_upto:
                return
            event = moderator.for_member(event, self.member.pk)
        elif kind == "shown":
            # A message shown again keeps its seq: sent even when the client has that seq.
            event = moderator.for_member(event, self.member.pk)
        await self.send_json(event)
