"""The event recorder: one writer per process group-commits concurrent appends.

Why a single writer: every append must take the table lock to keep notification
ids gapless and visible in order. Taking it once per batch instead of once per
command is what lets us commit far more commands per second than transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from eventsourcing.persistence import StoredEvent, Tracking

from backend.database import connect
from backend.store.errors import (
    ConcurrencyError,
    StoreClosedError,
    StoreUnavailableError,
    TrackingConflictError,
)
from backend.store.hashchain import GENESIS, chain_hash
from backend.store.reader import EventReader

log = logging.getLogger(__name__)

# Errors after which the writer's connection is gone and the outcome must be checked.
_CONNECTION_LOST = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    # A backend killed while the connection sat idle can leave the protocol mid-error;
    # the next statement then fails this way instead of with a connection error.
    asyncpg.exceptions._base.InternalClientError,
)
_MAX_ATTEMPTS = 5


@dataclass(slots=True)
class _Append:
    events: Sequence[StoredEvent]
    tracking: Tracking | None
    future: asyncio.Future[list[int]]


@dataclass(slots=True)
class _Plan:
    """What one batch will write, worked out under the table lock."""

    ids: list[int] = field(default_factory=list)
    originator_ids: list[UUID] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    states: list[bytes] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)
    tracking: dict[str, int] = field(default_factory=dict)
    outcomes: list[list[int] | Exception] = field(default_factory=list)


class EventRecorder(EventReader):
    """Appends events (optionally with a tracking position) and reads them back."""

    def __init__(self, url: str, schema: str, pool: asyncpg.Pool, *, max_batch: int = 500) -> None:
        super().__init__(pool, schema)
        self._url = url
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Append | None] = asyncio.Queue()
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # Test seams: awaited just before COMMIT, and just after it (before anyone is answered).
        self.before_commit: Callable[[], Awaitable[None]] | None = None
        self.after_commit: Callable[[], Awaitable[None]] | None = None
        self.batches_committed = 0

    async def start(self) -> None:
        self._conn = await connect(self._url, self.schema)
        self._task = asyncio.create_task(self._run(), name=f"event-writer:{self.schema}")

    async def close(self) -> None:
        """Finish what is queued, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task
        if self._conn is not None:
            await self._conn.close()

    @property
    def writer_pid(self) -> int | None:
        return self._conn.get_server_pid() if self._conn is not None else None

    async def append(self, events: Sequence[StoredEvent], *, tracking: Tracking | None = None) -> list[int]:
        """Store events atomically; return their notification ids once committed."""
        if self._closed or self._task is None:
            raise StoreClosedError("the event recorder is not running")
        if not events and tracking is None:
            return []
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Append(events, tracking, future))
        return await future

    async def insert_tracking(self, tracking: Tracking) -> None:
        await self.append([], tracking=tracking)

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            await self._commit(batch)
            if stop:
                return

    async def _commit(self, batch: list[_Append]) -> None:
        error: BaseException | None = None
        unresolved: _Plan | None = None  # written when the connection died: committed or not?
        plan: _Plan | None = None
        for attempt in range(_MAX_ATTEMPTS):
            plan = None
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await connect(self._url, self.schema)
                if unresolved is not None:
                    if await _was_committed(self._conn, unresolved):
                        plan = unresolved
                        break
                    unresolved = None  # it rolled back: safe to write the batch again
                plan = _Plan()
                await self._write(self._conn, batch, plan)
                break
            except _CONNECTION_LOST as exc:
                error = exc
                self._discard_connection()
                if plan is not None and (plan.ids or plan.tracking):
                    unresolved = plan
                log.warning("event writer lost its connection (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
            except Exception as exc:  # a fault in the batch as a whole: tell every caller
                log.exception("event writer failed a batch of %d appends", len(batch))
                self._discard_connection()  # its state is unknown; the next batch starts clean
                _fail(batch, exc)
                return
        else:
            reason = "its outcome is unknown" if unresolved else "the database is unreachable"
            _fail(batch, StoreUnavailableError(f"append not confirmed: {reason}: {error}"))
            return
        assert plan is not None
        self.batches_committed += 1
        for item, outcome in zip(batch, plan.outcomes, strict=True):
            if item.future.done():  # the caller was cancelled; its append stands regardless
                continue
            if isinstance(outcome, Exception):
                item.future.set_exception(outcome)
            else:
                item.future.set_result(outcome)

    def _discard_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def _write(self, conn: asyncpg.Connection, batch: list[_Append], plan: _Plan) -> None:
        # Four round trips per batch, whatever its size: begin and lock; read heads,
        # positions and the last id; write events, positions and the NOTIFY; commit.
        await conn.execute("BEGIN; LOCK TABLE stored_events IN EXCLUSIVE MODE")
        try:
            originators = list({e.originator_id for item in batch for e in item.events})
            names = list({item.tracking.application_name for item in batch if item.tracking})
            heads: dict[UUID, tuple[int, bytes]] = {}
            positions: dict[str, int] = {}
            last_id = 0
            for kind, oid, name, number, link in await conn.fetch(_SELECT_STATE, originators, names):
                if kind == 0:
                    heads[oid] = (number, link)
                elif kind == 1:
                    positions[name] = number
                else:
                    last_id = number
            next_id = last_id + 1
            for item in batch:
                next_id = _plan_append(item, plan, heads, positions, next_id)
            if plan.ids or plan.tracking:
                await conn.execute(
                    _WRITE,
                    plan.ids,
                    plan.originator_ids,
                    plan.versions,
                    plan.topics,
                    plan.states,
                    plan.hashes,
                    list(plan.tracking),
                    list(plan.tracking.values()),
                    self.channel,
                    str(plan.ids[-1]) if plan.ids else "",
                )
            if self.before_commit is not None:
                await self.before_commit()
            await conn.execute("COMMIT")
        except BaseException:
            if not conn.is_closed() and conn.is_in_transaction():
                # If the session is gone, the server has rolled back by itself.
                with contextlib.suppress(*_CONNECTION_LOST):
                    await conn.execute("ROLLBACK")
            raise
        if self.after_commit is not None:
            await self.after_commit()


def _fail(batch: list[_Append], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)


async def _was_committed(conn: asyncpg.Connection, plan: _Plan) -> bool:
    """After a lost connection: did the batch's COMMIT reach the server?"""
    if plan.ids:
        stored = await conn.fetchval(
            "SELECT hash FROM stored_events WHERE notification_id = $1", plan.ids[-1]
        )
        return bool(stored == plan.hashes[-1])
    rows = await conn.fetch(_SELECT_TRACKING_PLAIN, list(plan.tracking))
    found = {r[0]: r[1] for r in rows}
    return all(found.get(name, -1) >= position for name, position in plan.tracking.items())


def _plan_append(
    item: _Append,
    plan: _Plan,
    heads: dict[UUID, tuple[int, bytes]],
    positions: dict[str, int],
    next_id: int,
) -> int:
    """Add one append to the plan, or record why it conflicts; return the next free id."""
    tentative: dict[UUID, tuple[int, bytes]] = {}
    hashes: list[bytes] = []
    for event in item.events:
        oid = event.originator_id
        assert isinstance(oid, UUID), "the store keys aggregates by UUID"
        head = tentative.get(oid) or heads.get(oid)
        if head is not None and event.originator_version <= head[0]:
            plan.outcomes.append(
                ConcurrencyError(
                    f"aggregate {event.originator_id} is already at version {head[0]}; "
                    f"cannot append version {event.originator_version}"
                )
            )
            return next_id
        link = chain_hash(head[1] if head else GENESIS, event.topic, event.state)
        tentative[oid] = (event.originator_version, link)
        hashes.append(link)
    if item.tracking is not None:
        name, position = item.tracking.application_name, item.tracking.notification_id
        current = positions.get(name)
        if current is not None and position <= current:
            plan.outcomes.append(TrackingConflictError(f"{name} has already handled notification {current}"))
            return next_id
        positions[name] = position
        plan.tracking[name] = position
    heads.update(tentative)
    ids = list(range(next_id, next_id + len(item.events)))
    for event, link, nid in zip(item.events, hashes, ids, strict=True):
        plan.ids.append(nid)
        plan.originator_ids.append(event.originator_id)  # type: ignore[arg-type]
        plan.versions.append(event.originator_version)
        plan.topics.append(event.topic)
        plan.states.append(event.state)
        plan.hashes.append(link)
    plan.outcomes.append(ids)
    return next_id + len(item.events)


# Everything the plan needs, in one round trip: the newest version and hash of each
# aggregate in the batch (one index probe each), the consumers' positions, the last id.
_SELECT_STATE = """
SELECT 0, i.id, NULL::text, e.originator_version, e.hash
FROM unnest($1::uuid[]) AS i(id)
CROSS JOIN LATERAL (
    SELECT originator_version, hash FROM stored_events
    WHERE originator_id = i.id ORDER BY originator_version DESC LIMIT 1
) AS e
UNION ALL
SELECT 1, NULL, application_name, notification_id, NULL FROM tracking
WHERE application_name = ANY($2::text[])
UNION ALL
SELECT 2, NULL, NULL, coalesce(max(notification_id), 0), NULL FROM stored_events
"""
_SELECT_TRACKING_PLAIN = """
SELECT application_name, notification_id FROM tracking WHERE application_name = ANY($1::text[])
"""
# Events, positions and the wake-up call in one statement (data-modifying CTEs always run).
_WRITE = """
WITH events AS (
    INSERT INTO stored_events
        (notification_id, originator_id, originator_version, topic, state, hash)
    SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::text[], $5::bytea[], $6::bytea[])
), positions AS (
    INSERT INTO tracking (application_name, notification_id)
    SELECT * FROM unnest($7::text[], $8::bigint[])
    ON CONFLICT (application_name)
    DO UPDATE SET notification_id = EXCLUDED.notification_id, updated_at = now()
)
SELECT pg_notify($9, $10) WHERE $10 <> ''
"""
