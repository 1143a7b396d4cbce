"""One batch: read after the position, decode, handle, advance the position; in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from eventsourcing.persistence import StoredEvent

from backend.consumers.base import Consumer, Decode, Envelope, table_suffix, tracking_name
from backend.store.errors import TrackingConflictError
from backend.store.reader import EventReader


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


async def process_batch(
    conn: asyncpg.Connection,
    reader: EventReader,
    consumer: Consumer,
    decode: Decode,
    generation: int,
    limit: int,
) -> BatchResult:
    """Must run inside a transaction on conn, so effects and position commit or vanish together."""
    name = tracking_name(consumer.name, generation)
    position: int | None = await conn.fetchval(
        "SELECT notification_id FROM tracking WHERE application_name = $1", name
    )
    if position is None:
        raise ConsumerNotInstalledError(f"no tracking row {name!r}")
    # Head first, then read up to it: ids are gapless and commit in order, so every id
    # up to head is visible now, and events of other topics below head can be passed.
    head: int = await conn.fetchval("SELECT coalesce(max(notification_id), 0) FROM stored_events")
    if head <= position:
        return BatchResult(position, head, 0)
    rows = []
    if consumer.topics is None or consumer.topics:
        topics = sorted(consumer.topics or ())
        rows = await reader.fetch_notifications(
            position, limit, stop=head, topics=topics, inclusive_of_start=False, conn=conn
        )
    new_position = rows[-1][0] if len(rows) == limit else head
    envelopes = [_envelope(row, decode) for row in rows]
    if envelopes:
        await consumer.handle(conn, envelopes, table_suffix(generation))
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


def _envelope(row: asyncpg.Record, decode: Decode) -> Envelope:
    nid, originator_id, version, topic, state, recorded_at = row
    try:
        event = decode(StoredEvent(originator_id, version, topic, state))
    except Exception as exc:
        raise UndecodableEventError(f"cannot decode notification {nid} ({topic}): {exc}") from exc
    return Envelope(nid, originator_id, version, topic, recorded_at, event)
