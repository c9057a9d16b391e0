"""Running a coroutine from a synchronous test, whatever ran before it in the process.

The browser tests' session-wide Playwright (sync API) keeps an event loop marked as running on
the main thread for the rest of the session, so ``asyncio.run`` and ``async_to_sync`` there fail
with "cannot be called from a running event loop". A thread of its own has no running loop.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def in_own_thread(function: Callable[[], T]) -> T:
    """``function()`` on a fresh thread; its result, or its exception raised here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()
