"""Events per topic per day (Asia/Shanghai): the operations dashboard's first read model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

CHINA = ZoneInfo("Asia/Shanghai")


class TopicDayCount(msgspec.Struct, frozen=True):
    topic: str
    day: date
    events: int


class EventCounts:
    """Counts every event; its tables are rebuilt blue/green like any other read model."""

    name: str = "event_counts"
    topics: frozenset[str] | None = None  # every topic
    decodes: bool = False  # topic and time are all it counts by
    tables: Sequence[str] = ("event_counts",)

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS event_counts{suffix} (
                topic  text   NOT NULL,
                day    date   NOT NULL,
                events bigint NOT NULL,
                PRIMARY KEY (topic, day)
            )
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        # Count in memory first: one upsert per (topic, day) instead of one per event.
        counts = Counter((e.topic, e.recorded_at.astimezone(CHINA).date()) for e in envelopes)
        if not counts:
            return
        keys = list(counts)
        await conn.execute(
            f"""
            INSERT INTO event_counts{suffix} (topic, day, events)
            SELECT * FROM unnest($1::text[], $2::date[], $3::bigint[])
            ON CONFLICT (topic, day) DO UPDATE SET events = event_counts{suffix}.events + EXCLUDED.events
            """,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [counts[k] for k in keys],
        )


async def counts_since(conn: asyncpg.Connection | asyncpg.Pool, since: date) -> list[TopicDayCount]:
    rows = await conn.fetch(
        "SELECT topic, day, events FROM event_counts WHERE day >= $1 ORDER BY day, topic", since
    )
    return [TopicDayCount(r[0], r[1], r[2]) for r in rows]
