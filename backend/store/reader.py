"""Reads from the event store through the shared pool: aggregate histories and the global log."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
from eventsourcing.persistence import Notification, StoredEvent

from backend.store.loads import LoadCoalescer, Loaded


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which committed appends announce their last id."""
    return f"{schema}_events"


class EventReader:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self.channel = notify_channel(schema)
        self._loads = LoadCoalescer(pool)

    async def select_events(
        self,
        originator_id: UUID,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        if lte is None and not desc and limit is None:  # the common case: a whole history
            return (await self._loads.load(originator_id, gt or 0)).events
        clauses = ["originator_id = $1"]
        args: list[object] = [originator_id]
        if gt is not None:
            args.append(gt)
            clauses.append(f"originator_version > ${len(args)}")
        if lte is not None:
            args.append(lte)
            clauses.append(f"originator_version <= ${len(args)}")
        sql = (
            "SELECT originator_id, originator_version, topic, state FROM stored_events WHERE "
            + " AND ".join(clauses)
            + (" ORDER BY originator_version DESC" if desc else " ORDER BY originator_version")
        )
        if limit is not None:
            args.append(limit)
            sql += f" LIMIT ${len(args)}"
        rows = await self.pool.fetch(sql, *args)
        return [StoredEvent(r[0], r[1], r[2], r[3]) for r in rows]

    async def load_latest(self, originator_id: UUID) -> Loaded:
        """The latest snapshot and the events after it (all of them if there is none), in one query."""
        return await self._loads.load(originator_id, 0, from_snapshot=True)

    async def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        rows = await self.fetch_notifications(start, limit, stop, topics, inclusive_of_start)
        return [Notification(r[1], r[2], r[3], r[4], r[0]) for r in rows]

    async def fetch_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        inclusive_of_start: bool = True,
        conn: asyncpg.Connection | None = None,
    ) -> list[asyncpg.Record]:
        """Raw rows (id, originator_id, version, topic, state, recorded_at): the consumers' fast path."""
        clauses: list[str] = []
        args: list[object] = []
        if start is not None:
            args.append(start)
            clauses.append(f"notification_id {'>=' if inclusive_of_start else '>'} ${len(args)}")
        if stop is not None:
            args.append(stop)
            clauses.append(f"notification_id <= ${len(args)}")
        if topics:
            args.append(list(topics))
            clauses.append(f"topic = ANY(${len(args)}::text[])")
        args.append(limit)
        sql = (
            "SELECT notification_id, originator_id, originator_version, topic, state, recorded_at "
            "FROM stored_events"
            + (" WHERE " + " AND ".join(clauses) if clauses else "")
            + f" ORDER BY notification_id LIMIT ${len(args)}"
        )
        rows: list[asyncpg.Record] = await (conn or self.pool).fetch(sql, *args)
        return rows

    async def max_notification_id(self) -> int | None:
        value: int | None = await self.pool.fetchval("SELECT max(notification_id) FROM stored_events")
        return value

    async def max_tracking_id(self, application_name: str) -> int | None:
        value: int | None = await self.pool.fetchval(
            "SELECT notification_id FROM tracking WHERE application_name = $1", application_name
        )
        return value

    async def insert_snapshot(self, snapshot: StoredEvent) -> None:
        await self.pool.execute(
            "INSERT INTO snapshots (originator_id, originator_version, topic, state) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            snapshot.originator_id,
            snapshot.originator_version,
            snapshot.topic,
            snapshot.state,
        )

    async def latest_snapshot(self, originator_id: UUID, lte: int | None = None) -> StoredEvent | None:
        row = await self.pool.fetchrow(
            "SELECT originator_id, originator_version, topic, state FROM snapshots "
            "WHERE originator_id = $1 AND ($2::bigint IS NULL OR originator_version <= $2) "
            "ORDER BY originator_version DESC LIMIT 1",
            originator_id,
            lte,
        )
        return StoredEvent(row[0], row[1], row[2], row[3]) if row else None
