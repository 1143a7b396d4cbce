"""The applier: carries out partners' messages, each handoff's strictly in seq order, each once.

A round finds the handoffs with a message ready (see inbox_rows.py) and works each in
a slot of its own: it takes the handoff's advisory lock, then applies its ready
messages one after another, marking each applied as soon as its handler returns,
until none is ready. A handler that raises (or overruns its time) leaves the error
on the message and a retry time, with backoff; its handoff waits, the others go on,
until the handler succeeds or an administrator skips the message (admin.py).

The locks are session locks on one dedicated connection, so any number of appliers,
in as many processes, never work one handoff at once; a dead process's locks go with
its connection. Outcomes are written on that same connection: an applier that lost
it (and so its locks) marks nothing, and the message is applied again later, which
the handlers' request ids make harmless.

Rounds run when a message arrives (LISTEN on `<schema>_federation_in`), when a slot
frees, when a retry falls due, and otherwise every poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from backend.database import DatabaseUnavailableError, connect
from backend.federation.delivery import backoff_seconds
from backend.federation.handlers import AppliedMessage, Handlers
from backend.federation.inbox import INBOX_CHANNEL_SUFFIX
from backend.federation.inbox_rows import (
    HandoffKey,
    handoff_lock,
    mark_applied,
    mark_failed,
    next_due,
    next_ready,
)
from backend.federation.inbox_rows import ready_handoffs as find_ready
from backend.federation.wakeup import Wakeup

log = logging.getLogger(__name__)

MIN_WAIT = 0.02


@dataclass(frozen=True, slots=True)
class ApplierRules:
    retry_min_seconds: float = 1.0
    retry_max_seconds: float = 300.0
    poll_seconds: float = 1.0
    in_flight: int = 8  # handoffs one applier works at once
    handler_timeout_seconds: float = 60.0


class Applier:
    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        url: str,
        schema: str,
        handlers: Handlers,
        rules: ApplierRules,
        *,
        clock: Callable[[], datetime],
        rng: Callable[[], float] = random.random,
        listen: bool = True,
    ) -> None:
        self._pool, self._url, self._schema, self._handlers = pool, url, schema, dict(handlers)
        self.rules, self._clock, self._rng = rules, clock, rng
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._wakeup = (
            Wakeup(url, schema, INBOX_CHANNEL_SUFFIX, self._wake, "federation applier") if listen else None
        )
        self._locks: asyncpg.Connection | None = None
        self._locks_use = asyncio.Lock()  # one statement at a time on the lock connection
        self._flying: dict[asyncio.Task[None], HandoffKey] = {}
        self._held_elsewhere: dict[HandoffKey, float] = {}  # monotonic time until which not to try
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._wakeup is not None:
            self._wakeup.start()
        self._task = asyncio.create_task(self._run(), name="federation-applier")

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Let the handlers running finish and be recorded; after the grace, cut them off."""
        self._stopping.set()
        self._wake.set()
        if self._wakeup is not None:
            await self._wakeup.stop()
        if self._task is not None:
            await self._task
        if self._flying:
            grace = self.rules.handler_timeout_seconds if grace_seconds is None else grace_seconds
            _, pending = await asyncio.wait(self._flying, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("federation applier: %d handoffs cut off; applied again later", len(pending))
                await asyncio.wait(pending)
        if self._locks is not None:
            await self._locks.close()  # and with it every lock still held

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            wait = await self._round()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _round(self) -> float:
        poll = self.rules.poll_seconds
        try:
            await self._connect_locks()
            room = self.rules.in_flight - len(self._flying)
            if room > 0:
                now = time.monotonic()
                self._held_elsewhere = {k: t for k, t in self._held_elsewhere.items() if t > now}
                skip = {*self._flying.values(), *self._held_elsewhere}
                for key in await find_ready(self._pool(), self._clock(), room, skip):
                    task = asyncio.create_task(self._work(key), name=f"federation-applier:{key[1]}")
                    self._flying[task] = key
                    task.add_done_callback(self._landed)
            due = await next_due(self._pool(), self._clock())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, DatabaseUnavailableError) as exc:
            log.warning("federation applier: cannot look for messages (%s); again in %.1f s", exc, poll)
            return poll
        except Exception:
            log.exception("federation applier: a round failed; again in %.1f s", poll)
            return poll
        if due is None:
            return poll
        return min(max((due - self._clock()).total_seconds(), MIN_WAIT), poll)

    async def _connect_locks(self) -> None:
        if self._locks is None or self._locks.is_closed():
            self._locks = await connect(self._url, self._schema)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._flying.pop(task, None)
        self._wake.set()

    async def _work(self, key: HandoffKey) -> None:
        """Apply the handoff's ready messages in order, holding its lock; stop at a failure."""
        lock = handoff_lock(self._schema, key)
        try:
            async with self._locks_use:
                assert self._locks is not None
                locks = self._locks
                taken = await locks.fetchval("SELECT pg_try_advisory_lock($1)", lock)
            if not taken:  # another applier works it: leave it be for a while
                self._held_elsewhere[key] = time.monotonic() + self.rules.poll_seconds
                return
            try:
                while not self._stopping.is_set() and await self._apply_next(locks, key):
                    pass
            finally:
                async with self._locks_use:
                    if not locks.is_closed():
                        await locks.execute("SELECT pg_advisory_unlock($1)", lock)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("federation applier: handoff %s from %s interrupted (%s)", key[1], key[0], exc)

    async def _apply_next(self, locks: asyncpg.Connection, key: HandoffKey) -> bool:
        """Apply the handoff's ready message, if any; True if there may be another after it."""
        async with self._locks_use:
            found = await next_ready(locks, key, self._clock())
        if found is None:
            return False
        message, failures = found
        error = await self._handle(message)
        async with self._locks_use:
            if error is None:
                await mark_applied(locks, message, self._clock())
                return True
            delay = backoff_seconds(
                failures + 1, self.rules.retry_min_seconds, self.rules.retry_max_seconds, self._rng()
            )
            await mark_failed(locks, message, error, self._clock() + timedelta(seconds=delay))
        log.warning(
            "federation applier: %s #%d of handoff %s from %s failed (%s); again in %.1f s",
            message.kind, message.seq, message.handoff, message.partner, error, delay,
        )  # fmt: skip
        return False

    async def _handle(self, message: AppliedMessage) -> str | None:
        """Run the kind's handler; the error if it did not finish well."""
        handler = self._handlers.get(message.kind)
        if handler is None:
            return f"no handler for messages of kind {message.kind!r} in this deployment"
        try:
            async with asyncio.timeout(self.rules.handler_timeout_seconds):
                await handler(message)
        except TimeoutError:
            return f"the handler did not finish within {self.rules.handler_timeout_seconds:g} s"
        except Exception as exc:
            log.exception(
                "federation applier: the %s handler raised on message %s", message.kind, message.message_id
            )
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return None
