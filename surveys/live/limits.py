"""One rate limit per room member, shared by every transport and every connection.

The WebSocket and the HTTP fallback both pass each request through ``actions.handle``, which
asks ``spend`` first; the count is kept in Django's cache (Redis when REDIS_URL is set, so all
processes share it; the in-process memory cache in the embedded default, which is one process).
Keying on the RoomMember, not the connection, means a second tab or a POST to the fallback
draws on the same budget. Reads (join, sync, ping) have a looser budget of their own: each still
takes the room row lock. A refusal happens before any lock is taken.
"""

import logging
import time

from django.core.cache import cache

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
