"""The outbox as administrators see it: what was sent, what died and why, and re-driving the dead.

Re-driving makes a dead notification pending again, due now, with no channel tried,
so the dispatcher starts it afresh. Its history stays: `last_error`, the attempt rows,
and `attempts` as the total, since attempt numbers key the attempt rows and must go on
counting; `attempt_base` marks where the dispatcher's count towards the dead letter
starts again. `unsettled` stays too: a provider whose send had no clear answer is
still asked before anything is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg
import msgspec

from projections.catalogue import PoolSource

STATES: Final = ("pending", "delivered", "dead", "skipped")


class OutboxAdminError(Exception):
    """An administrator's request about one notification, refused before anything changes."""


class NotificationNotFoundError(OutboxAdminError, LookupError):
    """No notification has that key."""


class NotificationNotDeadError(OutboxAdminError):
    """Only a dead notification may be re-driven; a pending one is still being tried."""


class OutboxRow(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    purpose: str
    recipient_kind: str
    recipient: str
    case_id: UUID | None
    state: str
    channel: str | None
    tried_channels: list[str]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    deferred: str | None


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    channel: str
    provider: str
    outcome: str
    detail: str
    provider_id: str | None
    at: datetime


class NotificationHistory(msgspec.Struct, frozen=True, kw_only=True):
    notification: OutboxRow
    variables: dict[str, str]  # display values, already masked
    attempts: list[Attempt]  # in order


class OutboxPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[OutboxRow]  # newest first
    next_before: str | None  # pass as `before` for the next page; None on the last


class OutboxSummary(msgspec.Struct, frozen=True, kw_only=True):
    pending: int
    delivered: int
    dead: int
    skipped: int
    oldest_pending_due: datetime | None  # how far behind the dispatcher is, if it is


_ROW = (
    "key, purpose, recipient_kind, recipient, case_id, state, channel, tried_channels, attempts, "
    "next_attempt_at, last_error, delivered_at, created_at, deferred"
)
_LIST = (
    f"SELECT {_ROW} FROM notification_outbox o WHERE ($1::text IS NULL OR o.state = $1) "
    # Paging by the last row seen: (time, key) orders the rows one batch wrote at one moment.
    "AND ($2::text IS NULL OR (o.created_at, o.key) < "
    "(SELECT b.created_at, b.key FROM notification_outbox b WHERE b.key = $2)) "
    "ORDER BY o.created_at DESC, o.key DESC LIMIT $3"
)
_HISTORY = f"SELECT {_ROW}, variables FROM notification_outbox WHERE key = $1"
_LOCK = "SELECT state FROM notification_outbox WHERE key = $1 FOR UPDATE"
_REDRIVE = (
    "UPDATE notification_outbox SET state = 'pending', tried_channels = '{}', channel = NULL, "
    "claim = NULL, deferred = NULL, next_attempt_at = $2, attempt_base = attempts "
    f"WHERE key = ANY($1::text[]) AND state = 'dead' RETURNING {_ROW}"
)


class OutboxAdmin:
    def __init__(self, pool: PoolSource, clock: Callable[[], datetime]) -> None:
        self._pool, self.clock = pool, clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    async def list(self, state: str | None = None, limit: int = 50, before: str | None = None) -> OutboxPage:
        """Notifications newest first, of one state when given, after the one keyed `before`."""
        rows = await self.pool.fetch(_LIST, state, before, limit + 1)
        items = [OutboxRow(**dict(r)) for r in rows[:limit]]
        return OutboxPage(items=items, next_before=items[-1].key if len(rows) > limit else None)

    async def history(self, key: str) -> NotificationHistory:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow(_HISTORY, key)
            if row is None:
                raise NotificationNotFoundError(f"no notification {key}")
            attempts = await conn.fetch(
                "SELECT attempt, channel, provider, outcome, detail, provider_id, at "
                "FROM notification_attempts WHERE key = $1 ORDER BY attempt",
                key,
            )
        fields = dict(row)
        variables = msgspec.json.decode(fields.pop("variables"), type=dict[str, str])
        return NotificationHistory(
            notification=OutboxRow(**fields),
            variables=variables,
            attempts=[Attempt(**dict(a)) for a in attempts],
        )

    async def redrive(self, key: str) -> OutboxRow:
        """Send a dead notification again, from its first channel."""
        async with self.pool.acquire() as conn, conn.transaction():
            state = await conn.fetchval(_LOCK, key)
            if state is None:
                raise NotificationNotFoundError(f"no notification {key}")
            if state != "dead":
                raise NotificationNotDeadError(f"notification {key} is {state}; only a dead one is re-driven")
            row = await conn.fetchrow(_REDRIVE, [key], self.clock())
        return OutboxRow(**dict(row))

    async def redrive_many(self, keys: Collection[str]) -> int:
        """Re-drive those of `keys` that are dead (the others are left alone); how many were."""
        return len(await self.pool.fetch(_REDRIVE, list(keys), self.clock()))

    async def summary(self) -> OutboxSummary:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            counts = await conn.fetch("SELECT state, count(*) AS n FROM notification_outbox GROUP BY state")
            oldest = await conn.fetchval(
                "SELECT min(next_attempt_at) FROM notification_outbox WHERE state = 'pending'"
            )
        by_state = {state: 0 for state in STATES} | {r["state"]: r["n"] for r in counts}
        return OutboxSummary(**by_state, oldest_pending_due=oldest)
