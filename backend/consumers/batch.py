"""One batch: read after the position, decode, handle, advance the position; in the caller's transaction.

A batch is BEGIN, one read (position, head and events, and for a runner the served
generation too), the handler's statements, the position's update, and a COMMIT that does
not wait for the WAL flush (see below): four round trips besides the handler's.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from eventsourcing.persistence import StoredEvent

from backend.consumers.base import Consumer, Decode, Envelope, table_suffix, tracking_name
from backend.consumers.generations import ServedGeneration, shape_change
from backend.store.errors import TrackingConflictError


class ConsumerNotInstalledError(LookupError):
    """The consumer has no tracking row for that generation: run ensure_installed first."""


class UndecodableEventError(RuntimeError):
    """A stored event could not be turned into a domain event."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    position: int  # the position committed with this batch
    head: int  # the newest notification id seen while reading
    handled: int  # events given to the handler (ignored topics excluded)

    @property
    def caught_up(self) -> bool:
        return self.position >= self.head


# Position, head and the events after the position in one round trip. One statement sees
# one snapshot: no event it reads is above that head, and as ids are gapless and commit in
# order, every id up to head is visible to it, so events of other topics below head can be
# passed. (No `<= head` bound in the scan: the planner, not knowing the position, would
# then read the whole range and sort it instead of walking the index to the LIMIT.)
#
# synchronous_commit off for this transaction: its COMMIT need not wait for the WAL
# flush. A crash may then lose the last batches committed, but effects and position
# are in the same transaction, so they are lost together and the next leader replays
# those events from the surviving position. Anything durable that was built on them
# (a command fired from a timer, say) flushed the WAL, and so them, when it committed.
_HEAD = "head AS (SELECT coalesce(max(notification_id), 0) AS id FROM stored_events)"
_COLUMNS = (
    "set_config('synchronous_commit', 'off', true), position.id AS position, head.id AS head, "
    "e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, e.recorded_at"
)
_EVENTS = (
    "LEFT JOIN LATERAL (SELECT notification_id, originator_id, originator_version, topic, state, "
    "recorded_at FROM stored_events WHERE notification_id > position.id {topics} "
    "ORDER BY notification_id LIMIT $2) e ON true ORDER BY e.notification_id"
)
# By tracking name ($1): a rebuild names the generation it fills.
_BY_NAME = (
    "WITH position AS (SELECT notification_id AS id FROM tracking WHERE application_name = $1), "
    f"{_HEAD} SELECT {_COLUMNS} FROM position CROSS JOIN head {_EVENTS}"
)
# By consumer name ($1), for a runner: the served generation is locked FOR SHARE, so a swap
# to a new one waits for this batch, and the batch after the swap reads the new generation.
# The lock may wait for a swap to commit and then return the row as it is now, while the
# position comes from the statement's snapshot, taken before: `seen` tells which generation
# that position belongs to, so a batch read across a swap is not handled.
_SERVED = (
    "WITH served AS (SELECT generation, schema_version, tables FROM consumer_generations "
    "WHERE consumer_name = $1 FOR SHARE), "
    "seen AS (SELECT generation FROM consumer_generations WHERE consumer_name = $1), "
    # the same name as base.tracking_name(name, generation)
    "position AS (SELECT t.notification_id AS id, seen.generation FROM seen "
    "JOIN tracking t ON t.application_name = $1 || '#g' || seen.generation), "
    f"{_HEAD} SELECT served.generation AS served, served.schema_version, served.tables, "
    f"position.generation AS seen, {_COLUMNS} FROM served CROSS JOIN position CROSS JOIN head {_EVENTS}"
)


def _read(sql: str, consumer: Consumer, key: str, limit: int) -> tuple[str, list[object]]:
    """The statement and its arguments, with the consumer's topics if it names them."""
    if consumer.topics is None:
        return sql.format(topics=""), [key, limit]
    # No topics: nothing to read (LIMIT 0 skips the scan), but the position still passes.
    shown = limit if consumer.topics else 0
    return sql.format(topics="AND topic = ANY($3::text[])"), [key, shown, sorted(consumer.topics)]


async def process_batch(
    conn: asyncpg.Connection,
    consumer: Consumer,
    decode: Decode,
    generation: int,
    limit: int,
) -> BatchResult:
    """Must run inside a transaction on conn, so effects and position commit or vanish together."""
    name = tracking_name(consumer.name, generation)
    sql, args = _read(_BY_NAME, consumer, name, limit)
    rows = await conn.fetch(sql, *args)
    if not rows:
        raise ConsumerNotInstalledError(f"no tracking row {name!r}")
    return await _handle(conn, consumer, decode, generation, rows, limit)


@dataclass(frozen=True, slots=True)
class ServedBatch:
    served: ServedGeneration
    change: str | None  # how the served tables differ from this code's; then nothing was handled
    result: BatchResult | None  # None: nothing handled (a shape change, or a swap just committed)


async def process_served_batch(
    conn: asyncpg.Connection, consumer: Consumer, decode: Decode, limit: int
) -> ServedBatch:
    """A batch into the generation the views serve, which stays served until commit; in a transaction."""
    sql, args = _read(_SERVED, consumer, consumer.name, limit)
    rows = await conn.fetch(sql, *args)
    if not rows:
        raise ConsumerNotInstalledError(f"consumer {consumer.name!r} is not installed")
    first = rows[0]
    served = ServedGeneration(first["served"], first["schema_version"], tuple(first["tables"]))
    change = shape_change(consumer, served)
    if change is not None or first["seen"] != served.generation:
        return ServedBatch(served, change, None)
    return ServedBatch(served, None, await _handle(conn, consumer, decode, served.generation, rows, limit))


async def _handle(
    conn: asyncpg.Connection,
    consumer: Consumer,
    decode: Decode,
    generation: int,
    rows: list[asyncpg.Record],
    limit: int,
) -> BatchResult:
    """Decode and handle the rows read, then advance the position past them (or to head)."""
    position: int = rows[0]["position"]
    head: int = rows[0]["head"]
    if head <= position:
        return BatchResult(position, head, 0)
    if rows[0]["notification_id"] is None:  # the one row of a range without events of our topics
        rows = []
    new_position = rows[-1]["notification_id"] if len(rows) == limit else head
    envelopes = [to_envelope(row, decode if getattr(consumer, "decodes", True) else None) for row in rows]
    if envelopes:
        await consumer.handle(conn, envelopes, table_suffix(generation))
    name = tracking_name(consumer.name, generation)
    status = await conn.execute(
        "UPDATE tracking SET notification_id = $2, updated_at = now() "
        "WHERE application_name = $1 AND notification_id = $3",
        name,
        new_position,
        position,
    )
    if status != "UPDATE 1":
        # Someone else advanced from the same position: our effects must not commit.
        raise TrackingConflictError(f"{name} moved on from {position} while this batch ran")
    return BatchResult(new_position, head, len(envelopes))


def to_envelope(row: asyncpg.Record, decode: Decode | None) -> Envelope:
    nid, topic = row["notification_id"], row["topic"]
    if decode is None:
        return Envelope(nid, row["originator_id"], row["originator_version"], topic, row["recorded_at"], None)
    try:
        event = decode(StoredEvent(row["originator_id"], row["originator_version"], topic, row["state"]))
    except Exception as exc:
        raise UndecodableEventError(f"cannot decode notification {nid} ({topic}): {exc}") from exc
    return Envelope(nid, row["originator_id"], row["originator_version"], topic, row["recorded_at"], event)
