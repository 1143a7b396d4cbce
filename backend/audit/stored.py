"""The store's rows as auditors read them: with the global position, the recording time and the chain hash.

The event reader (backend/store/reader.py) serves the aggregates and consumers and
leaves these columns out; auditors need every column, and only from the event table,
never from snapshots (a snapshot is an unchained cache) or from read models.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from backend.store.hashchain import GENESIS, chain_hash
from domain.case import Case

log = logging.getLogger(__name__)

SUBMITTED_TOPIC = get_topic(Case.Submitted)
_CASE_EVENT = get_topic(Case) + "."  # every case event's topic starts so
_COLUMNS = "notification_id, originator_id, originator_version, topic, state, hash, recorded_at"


@dataclass(frozen=True, slots=True)
class StoredRow:
    position: int  # notification_id: the event's place in the whole store
    aggregate_id: UUID
    version: int
    topic: str
    state: bytes
    hash: bytes
    recorded_at: datetime  # when the database committed it, by its own clock

    @classmethod
    def of(cls, record: asyncpg.Record) -> StoredRow:
        return cls(*record)

    def stored_event(self) -> StoredEvent:
        return StoredEvent(self.aggregate_id, self.version, self.topic, self.state)


@dataclass(frozen=True, slots=True)
class Link:
    """One row in its chain: the hash it must follow, and whether it does."""

    row: StoredRow
    previous_hash: bytes
    intact: bool  # the version follows on, and hash = sha256(previous hash || topic || state)


def links(rows: Sequence[StoredRow]) -> list[Link]:
    """Each row of one aggregate (in version order) against the stored hash of the row before it.

    Linking to the stored hash, not a recomputed one, pins a break on the row that was
    altered: an edited state fails its own link only, a forged hash fails the next one.
    """
    found, previous, expected = [], GENESIS, 1
    for row in rows:
        intact = row.version == expected and chain_hash(previous, row.topic, row.state) == row.hash
        found.append(Link(row, previous, intact))
        previous, expected = row.hash, row.version + 1
    return found


def decode(mapper: Mapper[UUID], row: StoredRow) -> tuple[Any, str | None]:
    """The domain event, or None and why not: an audit shows an undecodable (altered) row, not fail."""
    try:
        return mapper.to_domain_event(row.stored_event()), None
    except Exception as exc:  # any decoding fault of one row; the row is still shown, with the fault
        log.warning(
            "audit: event %d (%s v%d) does not decode: %r", row.position, row.aggregate_id, row.version, exc
        )
        return None, f"{type(exc).__name__}: {exc}"


async def aggregate_rows(
    pool: asyncpg.Pool, aggregate_id: UUID, *, upto: int | None = None
) -> list[StoredRow]:
    """Every stored event of one aggregate (up to a version), in version order."""
    records = await pool.fetch(
        f"SELECT {_COLUMNS} FROM stored_events WHERE originator_id = $1 "
        "AND ($2::bigint IS NULL OR originator_version <= $2) ORDER BY originator_version",
        aggregate_id,
        upto,
    )
    return [StoredRow.of(r) for r in records]


async def first_row(pool: asyncpg.Pool, aggregate_id: UUID) -> StoredRow | None:
    """The aggregate's earliest stored event: version 1 unless that one was deleted."""
    record = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM stored_events WHERE originator_id = $1 ORDER BY originator_version LIMIT 1",
        aggregate_id,
    )
    return None if record is None else StoredRow.of(record)


async def case_of(pool: asyncpg.Pool, mapper: Mapper[UUID], aggregate_id: UUID) -> tuple[bool, str | None]:
    """Whether the aggregate is a case, and the 办件编号 its submission records (None: unreadable, gone)."""
    first = await first_row(pool, aggregate_id)
    if first is None or not first.topic.startswith(_CASE_EVENT):
        return False, None
    if first.topic != SUBMITTED_TOPIC:  # the submission itself was deleted
        return True, None
    event, _ = decode(mapper, first)
    number = getattr(event, "number", None)
    return True, number if isinstance(number, str) else None


async def rows_in_order(conn: asyncpg.Connection, aggregate_ids: Sequence[UUID]) -> AsyncIterator[StoredRow]:
    """The events of these aggregates in store order; `conn` must be in a transaction (a server cursor)."""
    cursor = conn.cursor(
        f"SELECT {_COLUMNS} FROM stored_events "
        "WHERE originator_id = ANY($1::uuid[]) ORDER BY notification_id",
        list(aggregate_ids),
        prefetch=500,
    )
    async for record in cursor:
        yield StoredRow.of(record)
