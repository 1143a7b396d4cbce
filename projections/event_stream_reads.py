"""Reading the published stream: a scope's page after a cursor, and the clear form of personal events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import msgspec
from eventsourcing.persistence import StoredEvent

from projections.event_stream import EventStreamProjection
from projections.integration_events import DECODER, ENCODER
from projections.integration_mapping import publish

STREAM_CONSUMER = EventStreamProjection.name

# Decodes a stored event into its domain event (the backend injects its mapper's).
Decode = Callable[[StoredEvent], Any]


class StreamScope(msgspec.Struct, frozen=True, kw_only=True):
    """What one subscriber may see: one department's events (None: every event) and whether in the clear."""

    department: str | None
    personal: bool = False

    def admits(self, departments: Sequence[str]) -> bool:
        return self.department is None or self.department in departments


class Published(msgspec.Struct, frozen=True, array_like=True):
    """One published event as stored: its body is the masked integration event's JSON."""

    position: int
    type: str
    departments: tuple[str, ...]
    revealable: bool
    body: bytes


class StreamPage(msgspec.Struct, frozen=True, kw_only=True):
    events: list[bytes]  # integration events' JSON, in position order
    next_cursor: int  # pass as `after` for the next page
    head: int  # the last position published so far


_COLUMNS = "e.position, e.type, e.departments, e.revealable, e.body"


class StreamQueries:
    def __init__(self, pool: Callable[[], asyncpg.Pool], decode: Decode) -> None:
        self._pool, self._decode = pool, decode

    async def head(self) -> int:
        """The last position the stream has published (or checked and skipped)."""
        value = await self._pool().fetchval(
            "SELECT t.notification_id FROM consumer_generations g JOIN tracking t "
            "ON t.application_name = g.consumer_name || '#g' || g.generation WHERE g.consumer_name = $1",
            STREAM_CONSUMER,
        )
        return int(value or 0)

    async def since(self, after: int, limit: int) -> list[Published]:
        """Every department's events after a position: what a hub fans out."""
        rows = await self._pool().fetch(
            f"SELECT {_COLUMNS} FROM stream_events e WHERE e.position > $1 ORDER BY e.position LIMIT $2",
            after,
            limit,
        )
        return [_published(r) for r in rows]

    async def page(self, scope: StreamScope, after: int, limit: int) -> StreamPage:
        """The next events of a scope after `after`, in the clear where the scope allows."""
        head = await self.head()  # read first: nothing published after it can be skipped below
        found = await self.entries(scope, after, limit)
        bodies = await self.bodies(scope, found)
        # A short page has read everything up to the head, so the cursor may skip what the scope never sees.
        last = found[-1].position if found else after
        next_cursor = max(last, head) if len(found) < limit else last
        return StreamPage(events=bodies, next_cursor=max(next_cursor, after), head=head)

    async def entries(self, scope: StreamScope, after: int, limit: int) -> list[Published]:
        """The next events of a scope after `after`, as stored (masked)."""
        if scope.department is None:
            return await self.since(after, limit)
        rows = await self._pool().fetch(
            f"SELECT {_COLUMNS} FROM stream_audience a JOIN stream_events e USING (position) "
            "WHERE a.department = $1 AND a.position > $2 ORDER BY a.position LIMIT $3",
            scope.department,
            after,
            limit,
        )
        return [_published(r) for r in rows]

    async def bodies(self, scope: StreamScope, events: Sequence[Published]) -> list[bytes]:
        """Each event's JSON: masked, or re-derived from the event store in the clear for a personal scope."""
        wanted = [e.position for e in events if e.revealable] if scope.personal else []
        if not wanted:
            return [e.body for e in events]
        rows = await self._pool().fetch(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM stored_events "
            "WHERE notification_id = ANY($1::bigint[])",
            wanted,
        )
        stored = {e.position: e.body for e in events}
        clear = {}
        for row in rows:
            masked = DECODER.decode(stored[row[0]])
            event = self._decode(StoredEvent(row[1], row[2], row[3], row[4]))
            revealed = publish(
                event, position=row[0], case=masked.case, recorded_at=masked.recorded_at, reveal=True
            )
            clear[row[0]] = ENCODER.encode(revealed)
        return [clear.get(e.position, e.body) for e in events]


def _published(row: asyncpg.Record) -> Published:
    return Published(row[0], row[1], tuple(row[2]), row[3], bytes(row[4]))
