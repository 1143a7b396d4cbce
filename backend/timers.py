"""Deadlines as rows: consumers schedule them in their transactions, a worker fires them as commands.

Scheduling inside a consumer's batch transaction ties each timer to the event
that caused it exactly once. Firing is at least once: a crash between the command
and marking the row fired repeats the command, so a handler must use the timer
key as its idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

log = logging.getLogger(__name__)

TimerHandler = Callable[[str, Any], Awaitable[None]]
Clock = Callable[[], datetime]


# A fired key stays fired: its row is neither moved nor deleted, so replays do no harm.
_MOVE = (
    "ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, due_at = EXCLUDED.due_at, "
    "payload = EXCLUDED.payload, attempts = 0, last_error = NULL "
    "WHERE due_timers.fired_at IS NULL"
)


@dataclass(frozen=True, slots=True)
class Timer:
    key: str
    kind: str
    due_at: datetime
    payload: Any = None

    def payload_json(self) -> str:
        return msgspec.json.encode(self.payload if self.payload is not None else {}).decode()


async def schedule(
    conn: asyncpg.Connection, key: str, kind: str, due_at: datetime, payload: Any = None
) -> bool:
    """Create the timer or move it; False if the key already fired: it stays fired, so replays do no harm."""
    key_set = await conn.fetchval(
        f"INSERT INTO due_timers (key, kind, due_at, payload) VALUES ($1, $2, $3, $4::jsonb) {_MOVE} "
        "RETURNING key",
        key,
        kind,
        due_at,
        Timer(key, kind, due_at, payload).payload_json(),
    )
    return key_set is not None


async def cancel(conn: asyncpg.Connection, key: str) -> bool:
    """Forget an unfired timer; return whether there was one."""
    status = await conn.execute("DELETE FROM due_timers WHERE key = $1 AND fired_at IS NULL", key)
    return bool(status == "DELETE 1")


async def schedule_many(conn: asyncpg.Connection, timers: Sequence[Timer]) -> None:
    """schedule() for each timer in one statement; the keys must differ."""
    ordered = sorted(timers, key=lambda t: t.key)  # rows locked in one order by every writer
    await conn.execute(
        "INSERT INTO due_timers (key, kind, due_at, payload) "
        "SELECT key, kind, due_at, payload::jsonb "
        "FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) AS t(key, kind, due_at, payload) "
        + _MOVE,
        [t.key for t in ordered],
        [t.kind for t in ordered],
        [t.due_at for t in ordered],
        [t.payload_json() for t in ordered],
    )


async def cancel_many(conn: asyncpg.Connection, keys: Collection[str]) -> None:
    """cancel() for each key in one statement.

    Prepared afresh each time, so it is planned for the table as it is now: a plan cached
    while due_timers was small (a new deployment, a catch-up) would read the whole table for
    the rows' addresses instead of fetching them one by one.
    """
    statement = await conn.prepare(_CANCEL)
    await statement.fetch(sorted(keys))


# Each key is one probe of the primary key that locks the row; the unfired of them are then
# deleted by their row address, which the lock keeps still. Written as `key = ANY(...) AND
# fired_at IS NULL`, or with the keys joined in, stale statistics (pending timers that piled
# up since the last ANALYZE look like a handful) let the planner walk the whole pending index
# instead. OFFSET 0 keeps the fired_at test out of the probe, where it would invite that index.
_CANCEL = """
WITH doomed AS (
    SELECT t.ctid FROM unnest($1::text[]) AS k(key)
    CROSS JOIN LATERAL (SELECT ctid, fired_at FROM due_timers WHERE key = k.key OFFSET 0 FOR UPDATE) AS t
    WHERE t.fired_at IS NULL
)
DELETE FROM due_timers WHERE ctid = ANY(ARRAY(SELECT ctid FROM doomed))
"""


class TimerChanges:
    """Schedules and cancels noted in order, then written in two statements with the same outcome.

    Per key: deleted (unless fired) if it was cancelled at any point, then set to its
    last schedule if that came after its last cancel. Running them one by one leaves
    exactly that, created_at included (now() is the transaction's).
    """

    def __init__(self) -> None:
        self._last: dict[str, Timer | None] = {}  # None: the last word on the key was a cancel
        self._cancelled: set[str] = set()

    def schedule(self, key: str, kind: str, due_at: datetime, payload: Any = None) -> None:
        self._last[key] = Timer(key, kind, due_at, payload)

    def cancel(self, key: str) -> None:
        self._last[key] = None
        self._cancelled.add(key)

    async def write(self, conn: asyncpg.Connection) -> None:
        """Apply what was noted through conn, then start afresh."""
        if self._cancelled:
            await cancel_many(conn, self._cancelled)
        timers = [t for t in self._last.values() if t is not None]
        if timers:
            await schedule_many(conn, timers)
        self._last, self._cancelled = {}, set()


# SKIP LOCKED: several workers share the table, each taking rows no other holds.
# Claiming leases the rows: it moves their due_at past the time the handlers may take
# and commits at once, so no row lock is held while the commands run. A consumer may
# meanwhile move or cancel a leased timer; marking it then finds the row changed and
# leaves it be (a moved timer fires again at its new time, and its handler decides).
# A worker that dies mid-fire leaves its lease to expire, and another fires the timer.
_CLAIM = """
UPDATE due_timers t SET due_at = $3
FROM (
    SELECT key, due_at FROM due_timers WHERE fired_at IS NULL AND due_at <= $1
    ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED
) AS due
WHERE t.key = due.key
RETURNING t.key, t.kind, t.payload, t.attempts, due.due_at AS was_due
"""
# Each only if the row is still as this worker leased it: unfired, at the lease's due_at.
# A fired timer gets its own due time back, so the row records when it was due.
_FIRED = (
    "UPDATE due_timers SET fired_at = $2, last_error = NULL, due_at = $4 "
    "WHERE key = $1 AND due_at = $3 AND fired_at IS NULL"
)
_FAILED = (
    "UPDATE due_timers SET attempts = $2, last_error = $3, due_at = $4 "
    "WHERE key = $1 AND due_at = $5 AND fired_at IS NULL"
)


class TimerWorker:
    """Fires due timers; the clock is injected so that time is a parameter, never the server's now()."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        handlers: Mapping[str, TimerHandler],
        clock: Clock,
        *,
        batch: int = 10,
        poll_seconds: float = 1.0,
        handler_timeout: float = 60.0,
        base_backoff: float = 5.0,
        max_backoff: float = 3600.0,
        jitter: float = 0.25,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.pool, self.handlers, self.clock = pool, handlers, clock
        self.batch, self.poll_seconds, self.handler_timeout = batch, poll_seconds, handler_timeout
        self.base_backoff, self.max_backoff, self.jitter, self.rng = base_backoff, max_backoff, jitter, rng
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name="timer-worker")
        return self._task

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the timers in hand finish, then return; cancel after grace_seconds."""
        self._stopping.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait([self._task], timeout=grace_seconds)
        if not done:
            log.warning("timer worker did not stop within %.1fs; cancelling it", grace_seconds)
            self._task.cancel()
            await asyncio.wait([self._task])

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                fired = await self.fire_due()
            except Exception:
                log.exception("timer worker pass failed; trying again in %.1fs", self.poll_seconds)
                fired = 0
            if fired < self.batch:
                with contextlib.suppress(TimeoutError):  # time to look for due timers again
                    await asyncio.wait_for(self._stopping.wait(), self.poll_seconds)

    @property
    def lease(self) -> timedelta:
        """How long a claimed timer is kept from other workers: a handler's timeout, and as much again.

        The timers of a pass fire together, so the pass takes about as long as its slowest
        handler, which the timeout bounds.
        """
        return timedelta(seconds=self.handler_timeout * 2)

    async def fire_due(self) -> int:
        """One pass: lease up to `batch` due timers and fire them together; return how many were tried.

        Together, not one after another: each handler is a command (a load and an append),
        and the appends of commands in flight at once share a commit. One at a time, a
        morning on which thousands of cases turn yellow would fire about 30 a second.
        Two timers of one case may then race; the loser's command meets a version
        conflict and reloads, as any command does.
        """
        now = self.clock()
        leased_until = now + self.lease
        rows = await self.pool.fetch(_CLAIM, now, self.batch, leased_until)
        # Every fire ends (marked, or left to its lease) before a failure to mark one is raised.
        fires = [self._fire(row, leased_until) for row in rows]
        outcomes = await asyncio.gather(*fires, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return len(rows)

    async def _fire(self, row: asyncpg.Record, leased_until: datetime) -> None:
        key, kind, attempts = row["key"], row["kind"], row["attempts"] + 1
        try:
            handler = self.handlers.get(kind)
            if handler is None:
                raise LookupError(f"no handler for timer kind {kind!r}")
            await asyncio.wait_for(handler(key, msgspec.json.decode(row["payload"])), self.handler_timeout)
        except Exception as exc:
            delay = self.backoff(attempts)
            log.warning(
                "timer %s (%s) failed on attempt %d; retrying in %.1fs",
                key,
                kind,
                attempts,
                delay,
                exc_info=True,
            )
            due_at = self.clock() + timedelta(seconds=delay)
            error = f"{type(exc).__name__}: {exc}"
            await self.pool.execute(_FAILED, key, attempts, error, due_at, leased_until)
            return
        await self.pool.execute(_FIRED, key, self.clock(), leased_until, row["was_due"])

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt `attempts + 1`: exponential, capped, with jitter to spread retries."""
        delay = min(self.max_backoff, self.base_backoff * 2.0 ** (attempts - 1))
        return delay * (1 + self.jitter * self.rng())
