"""What administrators see of cross-city messaging: both queues by state, and the refusals."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from backend.federation.refusals import Refused

_OUTBOX_STATES = {"pending": "delivered_at IS NULL", "delivered": "delivered_at IS NOT NULL"}
_INBOX_STATES = {
    "pending": "applied_at IS NULL AND error IS NULL",
    "applied": "applied_at IS NOT NULL",
    "failed": "applied_at IS NULL AND error IS NOT NULL",
}

_OUTBOX_ITEM = """
SELECT message_id, partner, handoff, seq, kind, created_at, delivered_at, attempts, consecutive_failures,
    CASE WHEN delivered_at IS NULL THEN nullif(next_attempt_at, '-infinity') END AS next_attempt_at,
    last_error, last_status
FROM federation_outbox
"""

_INBOX_ITEM = """
SELECT partner, message_id, handoff, seq, kind, received_at, applied_at, attempts,
    CASE WHEN applied_at IS NULL THEN nullif(next_attempt_at, '-infinity') END AS next_attempt_at, error
FROM federation_inbox
"""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    message_id: uuid.UUID
    partner: str
    handoff: uuid.UUID
    seq: int
    kind: str
    created_at: datetime
    delivered_at: datetime | None
    attempts: int
    consecutive_failures: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_status: int | None


@dataclass(frozen=True, slots=True)
class OutboxSummary:
    pending: int
    delivered: int
    oldest_pending_at: datetime | None
    items: list[OutboxItem]


@dataclass(frozen=True, slots=True)
class InboxItem:
    partner: str
    message_id: uuid.UUID
    handoff: uuid.UUID
    seq: int
    kind: str
    received_at: datetime
    applied_at: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class InboxSummary:
    pending: int
    applied: int
    failed: int
    items: list[InboxItem]


class FederationAdmin:
    """The adapter behind miniapp_api.federation_routes.FederationAdmin."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def refusals(self, limit: int) -> list[Refused]:
        rows = await self._pool().fetch(
            "SELECT at, region, message_id, kind, detail, remote FROM federation_refusals "
            "ORDER BY id DESC LIMIT $1",
            limit,
        )
        return [Refused(**dict(row)) for row in rows]

    async def outbox(self, state: str | None, limit: int) -> OutboxSummary:
        counts = await self._pool().fetchrow(
            "SELECT count(*) FILTER (WHERE delivered_at IS NULL) AS pending, "
            "count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered, "
            "min(created_at) FILTER (WHERE delivered_at IS NULL) AS oldest_pending_at FROM federation_outbox"
        )
        where = f"WHERE {_OUTBOX_STATES[state]} " if state else ""
        rows = await self._pool().fetch(f"{_OUTBOX_ITEM} {where}ORDER BY created_at DESC LIMIT $1", limit)
        return OutboxSummary(**dict(counts), items=[OutboxItem(**dict(r)) for r in rows])

    async def inbox(self, state: str | None, limit: int) -> InboxSummary:
        counts = await self._pool().fetchrow(
            "SELECT "
            + ", ".join(f"count(*) FILTER (WHERE {cond}) AS {name}" for name, cond in _INBOX_STATES.items())
            + " FROM federation_inbox"
        )
        where = f"WHERE {_INBOX_STATES[state]} " if state else ""
        rows = await self._pool().fetch(f"{_INBOX_ITEM} {where}ORDER BY received_at DESC LIMIT $1", limit)
        return InboxSummary(**dict(counts), items=[InboxItem(**dict(r)) for r in rows])
