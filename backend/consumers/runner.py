"""Runs one consumer: leads it if no other process does, reads batches, commits effects with the position."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from backend.consumers.base import Consumer, Decode
from backend.consumers.batch import BatchResult, process_served_batch
from backend.consumers.generations import install
from backend.consumers.leadership import release_lead, try_lead
from backend.database import connect
from backend.store.reader import EventReader

log = logging.getLogger(__name__)


class ConsumerRunner:
    """Follows the log for one consumer on a dedicated connection.

    The connection holds the leader lock, listens for appends and runs every batch
    transaction. Keeping all three on one session means that when it dies, the
    lock and any half-done batch go with it, and a follower resumes from the
    committed position.
    """

    def __init__(
        self,
        url: str,
        reader: EventReader,
        consumer: Consumer,
        decode: Decode,
        *,
        batch_size: int = 100,
        poll_seconds: float = 1.0,
        coalesce_seconds: float = 0.0,
        retry_seconds: float = 2.0,
        listen: bool = True,
        min_backoff: float = 0.1,
        max_backoff: float = 30.0,
    ) -> None:
        self.url, self.reader, self.consumer, self.decode = url, reader, consumer, decode
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.coalesce_seconds = coalesce_seconds  # after a wake-up, how long to let appends gather
        self.retry_seconds = retry_seconds  # how often a follower, or a lost connection, tries again
        self.listen = listen
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.is_leader = False
        self.generation: int | None = None
        self.position: int | None = None
        self.backend_pid: int | None = None
        self._installed = False
        self._mismatch: str | None = None  # why this runner stepped aside, logged once
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    @property
    def name(self) -> str:
        return self.consumer.name

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"consumer:{self.name}")
        return self._task

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the batch in hand commit, release leadership, and return; cancel after grace_seconds."""
        self._stopping.set()
        self._wake.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait([self._task], timeout=grace_seconds)
        if not done:
            log.warning("consumer %s did not stop within %.1fs; cancelling it", self.name, grace_seconds)
            self._task.cancel()
            await asyncio.wait([self._task])

    async def run(self) -> None:
        backoff = self.min_backoff
        try:
            while not self._stopping.is_set():
                try:
                    if not await self._ensure_leading():
                        await self._pause(self.retry_seconds)
                        continue
                    self._wake.clear()  # before reading, so an append during the batch wakes us again
                    result = await self._step()
                    if result is None:  # stepped aside: the served tables are not this code's shape
                        await self._pause(self.retry_seconds)
                        continue
                    backoff = self.min_backoff
                    if result.caught_up:
                        await self._idle()
                except Exception as exc:
                    if self._conn is None or self._conn.is_closed():
                        log.warning(
                            "consumer %s lost its connection (%s); reconnecting in %.1fs",
                            self.name,
                            exc,
                            self.retry_seconds,
                        )
                        self._drop_connection()
                        await self._pause(self.retry_seconds)
                    else:
                        # The transaction rolled back, so nothing of the batch stands: retry it.
                        log.exception(
                            "consumer %s failed a batch after position %s; retrying in %.2fs",
                            self.name,
                            self.position,
                            backoff,
                        )
                        await self._pause(backoff)
                        backoff = min(backoff * 2, self.max_backoff)
        finally:
            await self._close()

    async def _ensure_leading(self) -> bool:
        if self._conn is None:
            self._conn = await connect(self.url, self.reader.schema)
            self.backend_pid = self._conn.get_server_pid()
            # A session that dies while we idle should be noticed now, not at the next poll.
            self._conn.add_termination_listener(lambda _conn: self._wake.set())
        if not self._installed:
            await install(self._conn, self.consumer)
            self._installed = True
        if self.is_leader:
            return True
        if not await try_lead(self._conn, self.reader.schema, self.name):
            return False
        self.is_leader = True
        if self.listen:
            await self._conn.add_listener(self.reader.channel, self._on_notify)
        log.info("consumer %s: this process leads (backend %s)", self.name, self.backend_pid)
        return True

    async def _step(self) -> BatchResult | None:
        """One batch into the served generation; None if that is not this code's shape (then step aside)."""
        assert self._conn is not None
        while True:
            async with self._conn.transaction():
                # The served generation stays served until this commits (see process_served_batch).
                batch = await process_served_batch(self._conn, self.consumer, self.decode, self.batch_size)
            served, result = batch.served, batch.result
            if batch.change is not None:
                await self._step_aside(served.generation, batch.change)
                return None
            if result is not None:
                break
            # A swap committed while the batch waited for it: read the new generation at once.
        if self._mismatch is not None:
            log.info("consumer %s: the served generation fits this code again", self.name)
            self._mismatch = None
        if served.generation != self.generation:
            log.info("consumer %s serves generation %d", self.name, served.generation)
        self.generation, self.position = served.generation, result.position
        return result

    async def _step_aside(self, generation: int, change: str) -> None:
        """Let go of leadership, so that a process running code of the served shape can lead.

        Writing with another version's handler would put rows of the wrong shape or
        meaning into tables that queries trust, as when an old worker outlives the
        start of a new release that rebuilt the read model.
        """
        assert self._conn is not None
        if change != self._mismatch:
            log.warning(
                "consumer %s: served generation %d was built by another release (%s); "
                "not writing to it, and leaving the lead to a process whose code fits",
                self.name,
                generation,
                change,
            )
            self._mismatch = change
        if self.listen:
            await self._conn.remove_listener(self.reader.channel, self._on_notify)
        await release_lead(self._conn, self.reader.schema, self.name)
        self.is_leader = False

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self._wake.set()

    async def _idle(self) -> None:
        """Wait for a notification or the poll interval, whichever comes first, then let appends gather.

        Every batch costs a transaction whatever it holds, and every append wakes every
        consumer: without the pause, a busy log makes each consumer run a transaction per
        append or two. Waiting coalesce_seconds after the wake-up lets the appends of
        that moment arrive, so one batch takes them all, at the price of that much lag.
        """
        with contextlib.suppress(TimeoutError):  # a timeout is the polling fallback: read anyway
            await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        if self.coalesce_seconds > 0:
            await self._pause(self.coalesce_seconds)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):  # the pause ran its course without a stop
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
        self._conn, self.is_leader = None, False

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        self.is_leader = False
        if conn is None or conn.is_closed():
            return
        try:
            await conn.close(timeout=5)  # ends the session, which releases the leader lock
        except Exception:
            log.warning("consumer %s: closing its connection failed; aborting it", self.name, exc_info=True)
            conn.terminate()
