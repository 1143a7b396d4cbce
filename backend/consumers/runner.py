"""Runs consumers: leads those no other process leads, reads batches, commits effects with positions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from backend.consumers.base import Consumer, Decode
from backend.consumers.batch import process_served_batch
from backend.consumers.generations import install
from backend.consumers.group import process_group_batch
from backend.consumers.leadership import release_lead, try_lead
from backend.database import connect
from backend.store.reader import EventReader

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Member:
    """One consumer of a runner, and what the runner knows of it."""

    consumer: Consumer
    installed: bool = False
    leading: bool = False
    next_try: float = 0.0  # monotonic time from which to try to lead it (again)
    generation: int | None = None
    position: int | None = None
    mismatch: str | None = None  # why it stepped aside, logged once
    apart: bool = False  # runs in a transaction of its own until it has caught up
    backoff: float = 0.0  # after a failed batch; 0 while its batches succeed
    retry_at: float = 0.0  # monotonic time before which a failed member waits

    @property
    def name(self) -> str:
        return self.consumer.name


class ConsumerRunner:
    """Follows the log for one consumer, or a group of them, on a dedicated connection.

    The connection holds the leader locks, listens for appends and runs every batch
    transaction. Keeping all three on one session means that when it dies, the
    locks and any half-done batch go with it, and a follower resumes from the
    committed positions.

    A group's members that this process leads take their batches together: one
    transaction, one read and one decoding of the events for all of them (see
    group.py). If such a batch fails, every member runs alone, in a transaction of its
    own, until it has caught up: the one at fault retries with backoff while the
    others go on, and rejoin the group once they reach the head.
    """

    def __init__(
        self,
        url: str,
        reader: EventReader,
        consumers: Consumer | Sequence[Consumer],
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
        group = list(consumers) if isinstance(consumers, Sequence) else [consumers]
        if not group or len({c.name for c in group}) != len(group):
            raise ValueError(f"a runner needs consumers of distinct names, not {[c.name for c in group]}")
        self.url, self.reader, self.decode = url, reader, decode
        self.members = [_Member(c) for c in group]
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.coalesce_seconds = coalesce_seconds  # after a wake-up, how long to let appends gather
        self.retry_seconds = retry_seconds  # how often a follower, or a lost connection, tries again
        self.listen = listen
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.backend_pid: int | None = None
        self._listening = False
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    @property
    def name(self) -> str:
        return "+".join(m.name for m in self.members)

    @property
    def is_leader(self) -> bool:
        """Whether this process leads any of its consumers."""
        return any(m.leading for m in self.members)

    @property
    def generation(self) -> int | None:
        """The served generation of the first consumer, as of its last batch."""
        return self.members[0].generation

    @property
    def position(self) -> int | None:
        """The position of the first consumer, as of its last batch."""
        return self.members[0].position

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
                        await self._pause(max(self._next_try() - time.monotonic(), 0.01))
                        continue
                    self._wake.clear()  # before reading, so an append during the batch wakes us again
                    wait = await self._step()
                    backoff = self.min_backoff
                    if wait is not None:
                        await self._idle(wait)
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
                        log.exception("consumer %s failed; retrying in %.2fs", self.name, backoff)
                        await self._pause(backoff)
                        backoff = min(backoff * 2, self.max_backoff)
        finally:
            await self._close()

    async def _ensure_leading(self) -> bool:
        """Connect if need be, and try to lead each consumer not led here whose turn has come."""
        if self._conn is None:
            self._conn = await connect(self.url, self.reader.schema)
            self.backend_pid = self._conn.get_server_pid()
            # A session that dies while we idle should be noticed now, not at the next poll.
            self._conn.add_termination_listener(lambda _conn: self._wake.set())
        now = time.monotonic()
        for member in self.members:
            if member.leading or now < member.next_try:
                continue
            member.next_try = now + self.retry_seconds
            if not member.installed:
                await install(self._conn, member.consumer)
                member.installed = True
            if await try_lead(self._conn, self.reader.schema, member.name):
                member.leading = True
                log.info("consumer %s: this process leads (backend %s)", member.name, self.backend_pid)
        if not self.is_leader:
            return False
        if self.listen and not self._listening:
            await self._conn.add_listener(self.reader.channel, self._on_notify)
            self._listening = True
        return True

    def _next_try(self) -> float:
        return min((m.next_try for m in self.members if not m.leading), default=time.monotonic())

    async def _step(self) -> float | None:
        """A batch for each consumer led here; None if some have more to read, else the longest idle."""
        led = [m for m in self.members if m.leading]
        together = [m for m in led if not m.apart]
        alone = [m for m in led if m.apart]
        more = False
        if len(together) > 1:
            more = not await self._step_together(together)
        else:
            alone += together  # a group of one takes the single consumer's batch
        now = time.monotonic()
        wait = self.poll_seconds
        for member in alone:
            if member.retry_at > now:
                wait = min(wait, member.retry_at - now)
            elif not await self._step_alone(member):
                more = True
        if any(not m.leading for m in self.members):  # followers try to lead again in time
            wait = min(wait, max(self._next_try() - now, 0.0))
        return None if more else wait

    async def _step_together(self, members: list[_Member]) -> bool:
        """One batch for all of them in one transaction; whether they all caught up."""
        assert self._conn is not None
        try:
            async with self._conn.transaction():
                batch = await process_group_batch(
                    self._conn, [m.consumer for m in members], self.decode, self.batch_size
                )
        except Exception:
            if self._conn.is_closed():
                raise
            # The transaction rolled back, so nothing of the batch stands. Which member is at
            # fault shows when each runs alone: that one backs off, the others rejoin.
            log.warning(
                "consumers %s failed a batch together; each runs alone until it has caught up",
                "+".join(m.name for m in members),
                exc_info=True,
            )
            for member in members:
                member.apart = True
            return False
        for member in members:
            outcome = batch.outcomes[member.name]
            if outcome.change is not None:
                await self._step_aside(member, outcome.served.generation, outcome.change)
            elif outcome.result is not None:
                self._advanced(member, outcome.served.generation, outcome.result.position)
        return batch.caught_up

    async def _step_alone(self, member: _Member) -> bool:
        """One batch for this consumer in its own transaction; whether it has nothing more to read now."""
        assert self._conn is not None
        try:
            while True:
                async with self._conn.transaction():
                    # The served generation stays served until this commits (see process_served_batch).
                    batch = await process_served_batch(
                        self._conn, member.consumer, self.decode, self.batch_size
                    )
                if batch.change is not None:
                    await self._step_aside(member, batch.served.generation, batch.change)
                    return True
                if batch.result is not None:
                    break
                # A swap committed while the batch waited for it: read the new generation at once.
        except Exception:
            if self._conn.is_closed():
                raise
            # The transaction rolled back, so nothing of the batch stands: retry it.
            member.backoff = min(max(member.backoff * 2, self.min_backoff), self.max_backoff)
            member.retry_at = time.monotonic() + member.backoff
            log.exception(
                "consumer %s failed a batch after position %s; retrying in %.2fs",
                member.name,
                member.position,
                member.backoff,
            )
            return True
        member.backoff = member.retry_at = 0.0
        self._advanced(member, batch.served.generation, batch.result.position)
        if batch.result.caught_up and member.apart:
            member.apart = False
            log.info("consumer %s has caught up; it takes its batches with the group again", member.name)
        return batch.result.caught_up

    def _advanced(self, member: _Member, generation: int, position: int) -> None:
        if member.mismatch is not None:
            log.info("consumer %s: the served generation fits this code again", member.name)
            member.mismatch = None
        if generation != member.generation:
            log.info("consumer %s serves generation %d", member.name, generation)
        member.generation, member.position = generation, position

    async def _step_aside(self, member: _Member, generation: int, change: str) -> None:
        """Let go of one consumer's leadership, so that a process running code of the served shape can lead.

        Writing with another version's handler would put rows of the wrong shape or
        meaning into tables that queries trust, as when an old worker outlives the
        start of a new release that rebuilt the read model.
        """
        assert self._conn is not None
        if change != member.mismatch:
            log.warning(
                "consumer %s: served generation %d was built by another release (%s); "
                "not writing to it, and leaving the lead to a process whose code fits",
                member.name,
                generation,
                change,
            )
            member.mismatch = change
        await release_lead(self._conn, self.reader.schema, member.name)
        member.leading = False
        member.next_try = time.monotonic() + self.retry_seconds
        if self._listening and not self.is_leader:
            await self._conn.remove_listener(self.reader.channel, self._on_notify)
            self._listening = False

    def _on_notify(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self._wake.set()

    async def _idle(self, longest: float) -> None:
        """Wait for a notification or `longest` seconds, whichever comes first, then let appends gather.

        Every batch costs a transaction whatever it holds, and every append wakes every
        runner: without the pause, a busy log makes each runner run a transaction per
        append or two. Waiting coalesce_seconds after the wake-up lets the appends of
        that moment arrive, so one batch takes them all, at the price of that much lag.
        """
        with contextlib.suppress(TimeoutError):  # a timeout is the polling fallback: read anyway
            await asyncio.wait_for(self._wake.wait(), longest)
        if self.coalesce_seconds > 0:
            await self._pause(self.coalesce_seconds)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):  # the pause ran its course without a stop
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
        self._conn = None
        self._lost_leadership()

    def _lost_leadership(self) -> None:
        now = time.monotonic()
        for member in self.members:
            member.leading, member.next_try = False, now
        self._listening = False

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        self._lost_leadership()
        if conn is None or conn.is_closed():
            return
        try:
            await conn.close(timeout=5)  # ends the session, which releases the leader locks
        except Exception:
            log.warning("consumer %s: closing its connection failed; aborting it", self.name, exc_info=True)
            conn.terminate()
