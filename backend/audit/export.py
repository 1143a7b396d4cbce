"""Write an audit export (export_format.py): a header, the chosen cases' events in store order, a trailer.

The events are read through one server-side cursor in one read-only snapshot, so the
file is consistent however long it takes to stream, and memory stays flat however
many cases it holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.persistence import Mapper

from backend.audit.export_format import EventLine, Header, Trailer, encode_line
from backend.audit.naming import event_type
from backend.audit.readable import event_facts, readable
from backend.audit.stored import StoredRow, decode, rows_in_order

_CHUNK = 64 * 1024  # bytes gathered before a write: one send per line would dominate the cost


@dataclass(frozen=True, slots=True)
class Export:
    filename: str
    header: Header
    case_ids: tuple[UUID, ...]
    pool: asyncpg.Pool
    mapper: Mapper[UUID]

    async def lines(self) -> AsyncIterator[bytes]:
        """The file, in chunks of whole lines."""
        buffer = bytearray(encode_line(self.header) + b"\n")
        previous: dict[UUID, bytes] = {}  # each case's last hash so far
        numbers: dict[UUID, str | None] = {}
        events = 0
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            async for row in rows_in_order(conn, self.case_ids):
                line = self._line(row, previous.get(row.aggregate_id, b""), numbers)
                previous[row.aggregate_id] = row.hash
                buffer += encode_line(line) + b"\n"
                events += 1
                if len(buffer) >= _CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
        buffer += encode_line(Trailer(events=events, cases=len(previous))) + b"\n"
        yield bytes(buffer)

    def _line(self, row: StoredRow, previous: bytes, numbers: dict[UUID, str | None]) -> EventLine:
        event, fault = decode(self.mapper, row)
        if row.aggregate_id not in numbers:  # the case's first line: its submission names it
            number = getattr(event, "number", None)
            numbers[row.aggregate_id] = number if isinstance(number, str) else None
        actor: Any = getattr(event, "actor", None)
        channel = getattr(event, "channel", None)
        return EventLine(
            position=row.position,
            case_id=row.aggregate_id,
            case_number=numbers[row.aggregate_id],
            version=row.version,
            topic=row.topic,
            type=event_type(row.topic),
            recorded_at=row.recorded_at,
            occurred_at=None if event is None else event.timestamp,
            actor=None if actor is None else readable(actor),
            channel=None if channel is None else str(channel),
            state=row.state,
            previous_hash=previous.hex(),
            hash=row.hash.hex(),
            fields=None if event is None else event_facts(event),
            unreadable=fault,
        )
