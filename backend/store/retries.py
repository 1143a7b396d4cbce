"""Commands over several aggregates: run again when another writer got there first, one at a time per key.

`AggregateStore.execute` retries a command on one aggregate. A booking or a check-in
changes several in one append, so the service's own `run` loads them all, and a
version conflict on any of them means loading them all again.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from backend.store.errors import ConcurrencyError

R = TypeVar("R")
# A rush on one slot retries a conflicting hold; each retry sees at least one seat fewer.
RETRIES = 30


async def retry_on_conflict(run: Callable[[], Awaitable[R]], *, retries: int = RETRIES) -> R:
    for attempt in range(retries + 1):
        try:
            return await run()
        except ConcurrencyError:
            if attempt == retries:
                raise
            # Jittered, so that processes colliding on one aggregate do not collide again in step.
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise AssertionError("unreachable")


class KeyedLocks:
    """One asyncio lock per key, kept only while someone holds or waits for it.

    Commands on one busy aggregate queue here within a process, instead of all loading
    the same version and all but one conflicting. Across processes the store's version
    check alone decides.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[Hashable, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: Hashable) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock
