"""Coalesced loads: concurrent reads of whole aggregate histories share one query.

The read-side twin of group commit. A request only joins a query that starts
after it was made, so a load always sees every append acknowledged before it.
A load may start from the aggregate's latest snapshot: the same statement finds
it and the events after it, so both come from one consistent view in one round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from uuid import UUID

import asyncpg
from eventsourcing.persistence import StoredEvent

log = logging.getLogger(__name__)

_Key = tuple[UUID, int, bool]  # (aggregate id, load versions after this one, start from a snapshot)


@dataclass(frozen=True, slots=True)
class Loaded:
    """One aggregate's latest snapshot (if asked for and taken) and the events after it."""

    snapshot: StoredEvent | None
    events: list[StoredEvent]


class LoadCoalescer:
    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 500, max_queries: int = 4) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._pending: dict[_Key, list[asyncio.Future[Loaded]]] = defaultdict(list)
        self._slots = asyncio.Semaphore(max_queries)  # several queries may run, each on its own connection
        self._draining = 0
        self._max_queries = max_queries
        self._tasks: set[asyncio.Task[None]] = set()  # held so that they are not collected mid-flight

    async def load(self, originator_id: UUID, after: int, *, from_snapshot: bool = False) -> Loaded:
        future: asyncio.Future[Loaded] = asyncio.get_running_loop().create_future()
        self._pending[(originator_id, after, from_snapshot)].append(future)
        if self._draining < self._max_queries:
            self._draining += 1
            task = asyncio.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                async with self._slots:
                    if not self._pending:
                        return
                    keys = list(self._pending)[: self._max_batch]
                    waiting = {key: self._pending.pop(key) for key in keys}
                    await self._query(waiting)
        finally:
            self._draining -= 1

    async def _query(self, waiting: dict[_Key, list[asyncio.Future[Loaded]]]) -> None:
        keys = list(waiting)
        try:
            rows = await self._pool.fetch(
                _LOAD,
                [k[0] for k in keys],
                [k[1] for k in keys],
                [k[2] for k in keys],
                list(range(len(keys))),
            )
        except Exception as exc:  # every waiter hears about it; nobody is left hanging
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        snapshots: list[StoredEvent | None] = [None] * len(keys)
        found: list[list[StoredEvent]] = [[] for _ in keys]
        for slot, is_snapshot, oid, version, topic, state in rows:
            if is_snapshot:
                snapshots[slot] = StoredEvent(oid, version, topic, state)
            else:
                found[slot].append(StoredEvent(oid, version, topic, state))
        for snapshot, events, futures in zip(snapshots, found, waiting.values(), strict=True):
            for future in futures:
                if not future.done():
                    future.set_result(Loaded(snapshot, events))


# The slot tells which request a row answers; a request's snapshot comes first, then its
# events in version order, from after the snapshot when one was found.
# LATERAL with OFFSET 0 keeps each id an index probe: as a plain join, stale statistics
# (a young or fast-growing table) make the planner hash-join a scan of the whole table.
_LOAD = """
SELECT r.slot, k.is_snapshot, r.id, k.version, k.topic, k.state
FROM unnest($1::uuid[], $2::bigint[], $3::bool[], $4::int[]) AS r(id, after, snap, slot)
LEFT JOIN LATERAL (
    SELECT originator_version, topic, state FROM snapshots
    WHERE r.snap AND originator_id = r.id AND originator_version > r.after
    ORDER BY originator_version DESC LIMIT 1
) AS s ON true
CROSS JOIN LATERAL (
    SELECT true, s.originator_version, s.topic, s.state WHERE s.originator_version IS NOT NULL
    UNION ALL
    (SELECT false, originator_version, topic, state FROM stored_events
     WHERE originator_id = r.id AND originator_version > coalesce(s.originator_version, r.after)
     OFFSET 0)
) AS k(is_snapshot, version, topic, state)
ORDER BY r.slot, k.is_snapshot DESC, k.version
"""
