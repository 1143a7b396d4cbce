"""The stream hub: one per API process, it follows the published stream and fans each event out.

One LISTEN connection and one query per wake-up serve every subscriber of the
process, however many there are: each subscriber only filters what the hub read.
A subscriber's buffer is bounded. One that falls further behind than that (a slow
client whose socket no longer drains) is dropped with its reason, and its buffer
is freed at once; it resumes from its cursor by reconnecting with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge

from backend.database import connect
from projections.event_stream import STREAM_CHANNEL_SUFFIX
from projections.event_stream_reads import Published, StreamQueries, StreamScope

log = logging.getLogger(__name__)


class Subscription:
    """What one SSE connection receives from the hub: a bounded buffer, and why it was dropped, if it was."""

    def __init__(self, scope: StreamScope, limit: int, on_close: Callable[[Subscription], None]) -> None:
        self.scope, self.limit = scope, limit
        self.dropped: str | None = None
        self._on_close = on_close
        self._buffer: deque[Published] = deque()
        self._ready = asyncio.Event()

    def offer(self, event: Published) -> None:
        if self.dropped is not None:
            return
        if len(self._buffer) >= self.limit:
            self.dropped = f"slow-consumer: more than {self.limit} events were waiting to be sent"
            self._buffer.clear()
        else:
            self._buffer.append(event)
        self._ready.set()

    def close(self) -> None:
        """The connection ended: the hub forgets the subscription."""
        self._on_close(self)

    async def take(self, wait_seconds: float) -> list[Published]:
        """What has arrived, waiting up to wait_seconds for something; empty when nothing came."""
        if not self._buffer and self.dropped is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait_seconds)
        self._ready.clear()
        taken = list(self._buffer)
        self._buffer.clear()
        return taken


class StreamHub:
    def __init__(
        self,
        url: str,
        schema: str,
        queries: StreamQueries,
        *,
        buffer: int,
        poll_seconds: float = 1.0,
        fetch_limit: int = 1000,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.url, self.schema, self.queries = url, schema, queries
        self.buffer, self.poll_seconds, self.fetch_limit = buffer, poll_seconds, fetch_limit
        self.position = 0
        self._subscribers: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._gauge = Gauge(
            "citypass_stream_subscribers", "SSE subscribers of this process", registry=registry
        )
        self._dropped = Counter(
            "citypass_stream_dropped", "SSE subscribers dropped for falling behind", registry=registry
        )

    async def start(self) -> None:
        self.position = await self.queries.head()
        self._task = asyncio.create_task(self._run(), name="stream-hub")

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, scope: StreamScope) -> Subscription:
        """Events after the hub's position reach the subscription from now on."""
        subscription = Subscription(scope, self.buffer, self.unsubscribe)
        self._subscribers.add(subscription)
        self._gauge.set(len(self._subscribers))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        self._gauge.set(len(self._subscribers))

    async def _run(self) -> None:
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self.url, self.schema)
                await conn.add_listener(self.schema + STREAM_CHANNEL_SUFFIX, self._on_notify)
                while not self._stopping.is_set():
                    await self._fan_out()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                    self._wake.clear()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("stream hub lost the database (%s); retrying", exc)
                await asyncio.sleep(1.0)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _fan_out(self) -> None:
        while True:
            events = await self.queries.since(self.position, self.fetch_limit)
            for event in events:
                for subscription in list(self._subscribers):
                    if subscription.scope.admits(event.departments):
                        subscription.offer(event)
                        if subscription.dropped is not None:
                            self._drop(subscription)
            if events:
                self.position = events[-1].position
            if len(events) < self.fetch_limit:
                return

    def _drop(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            log.info("stream subscriber dropped: %s", subscription.dropped)
            self._dropped.inc()
            self.unsubscribe(subscription)
