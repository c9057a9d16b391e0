"""One request of a member's client, as the WebSocket and the HTTP fallback receive it: the
rate limit, the dispatch to ``surveys.live.actions``, and the events answered to that client.

One rate limit per room member, shared by every transport and every connection: ``handle``
asks ``spend`` first; the count is kept in Django's cache (Redis when REDIS_URL is set, so all
processes share it; the in-process memory cache in the embedded default, which is one process).
Keying on the RoomMember, not the connection, means a second tab or a POST to the fallback
draws on the same budget. Reads (join, sync, ping) have a looser budget of their own: each still
takes the room row lock. A refusal happens before any lock is taken.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from surveys.live import actions, moderator
from surveys.live.models import RoomMember

logger = logging.getLogger(__name__)

# At most WRITE_COUNT writes (posts, flags, votes, questions...) and READ_COUNT reads (join,
# sync, ping, polls of the fallback) per member in any window of RATE_SECONDS.
RATE_SECONDS = 10
WRITE_COUNT = 10
READ_COUNT = 30
READS = frozenset({"join", "sync", "ping"})


def budget(kind: str) -> int:
    return READ_COUNT if kind in READS else WRITE_COUNT


def spend(member_id: int, kind: str) -> bool:
    """Count one request of ``kind`` by the member; False when over the budget (refuse it).

    A fixed window per RATE_SECONDS with the previous window's count weighted by how much of it
    still overlaps the last RATE_SECONDS (a sliding-window estimate): a burst at a window's
    edge cannot double the budget. The counter is an atomic cache ``incr`` (Redis INCR)."""
    bucket = "read" if kind in READS else "write"
    now = time.time()
    window, into = divmod(now, RATE_SECONDS)
    key = f"live:rate:{bucket}:{member_id}:{int(window)}"
    try:
        cache.add(key, 0, timeout=RATE_SECONDS * 2)
        used = cache.incr(key)
        previous = cache.get(f"live:rate:{bucket}:{member_id}:{int(window) - 1}", 0)
    except Exception:
        # A cache that is down must not stop the room: the limit is a guard, not a gate.
        logger.exception("rate limit unavailable for member %s", member_id)
        return True
    estimate = used + previous * (1 - into / RATE_SECONDS)
    if estimate > budget(kind):
        # A refused request does not count against the member's next window.
        try:
            cache.decr(key)
        except Exception:
            logger.exception("rate limit unavailable for member %s", member_id)
        return False
    return True


# ----------------------------------------------------------------- one client request


def sync_events(*, member: RoomMember, since: Any) -> list[dict[str, Any]]:
    """What a (re)connecting client gets: the state (with ``you``, the member's id), ``hidden``
    and ``shown`` for messages up to ``since`` the organisers or flags changed, every message
    after ``since`` it may see, and ``synced`` with the last seq covered."""
    if not isinstance(since, int) or isinstance(since, bool) or since < 0:
        raise actions.Refused(
            "invalid", _("since must be a whole number, 0 or more."), field="since"
        )
    state = {**actions.join(member=member), "you": member.pk}
    events: list[dict[str, Any]] = [state]
    events.extend(
        moderator.for_member(event, member.pk)
        for event in moderator.reviewed_before(member.room_id, since)
    )
    last = since
    while True:
        page = actions.messages_since(member=member, seq=last)
        events.extend(
            moderator.for_member(moderator.message_payload(message), member.pk) for message in page
        )
        if page:
            last = page[-1].seq
        if len(page) < actions.SYNC_LIMIT:
            break
    events.append({"type": "synced", "last_seq": last})
    return events


def _ack(client_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "ack", "client_id": client_id, **fields}


def _dispatch(member: RoomMember, kind: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    if kind in ("join", "sync"):
        return sync_events(member=member, since=payload.get("since", 0))
    if kind == "ping":
        actions.ping(member=member)
        return [{"type": "pong"}]
    if kind == "post":
        message, created = actions.post_message(
            member=member,
            client_id=payload.get("client_id"),
            text=payload.get("text"),
            reply_to=payload.get("reply_to"),
        )
        return [_ack(message.client_id, seq=message.seq, new=created)]
    if kind == "question_draft":
        question = actions.draft_question(
            member=member, client_id=payload.get("client_id"), text=payload.get("text")
        )
        return [_ack(question.client_id, question=question.pk)]
    simple: dict[str, Callable[[], Any]] = {
        "flag": lambda: actions.flag_message(member=member, seq=payload.get("seq")),
        "raise_hand": lambda: actions.raise_hand(member=member),
        "lower_hand": lambda: actions.lower_hand(member=member),
        "vote_move_on": lambda: actions.vote_move_on(member=member),
        "question_vote": lambda: actions.vote_question(
            member=member, question=payload.get("question")
        ),
    }
    if kind not in simple:
        raise actions.Refused("unknown_type", _("Unknown type: %(type)s.") % {"type": kind[:40]})
    simple[kind]()
    return []


def handle(*, member: RoomMember, payload: Any) -> list[dict[str, Any]]:
    """One request from a member's client (parsed JSON), as the WebSocket and the HTTP fallback
    receive it. Returns the events for that client alone (state and messages on sync, an ack,
    an error); what the whole room must see is published by ``surveys.live.actions``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return [
            actions.Refused(
                "malformed", _("A frame is a JSON object with a text 'type'.")
            ).as_event()
        ]
    try:
        if not spend(member.pk, payload["type"]):
            raise actions.Refused(
                "too_fast",
                _("At most %(count)s actions in %(seconds)s seconds; wait a moment.")
                % {"count": budget(payload["type"]), "seconds": RATE_SECONDS},
            )
        return _dispatch(member, payload["type"], payload)
    except actions.Refused as refused:
        event = refused.as_event()
        if isinstance(payload.get("client_id"), str):
            event["client_id"] = payload["client_id"]
        return [event]
