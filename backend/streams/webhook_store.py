"""Webhook subscriptions as their owners manage them: register, list, show, pause, resume, re-drive, delete.

Every call names the department the caller is limited to (`within`; None for an
admin): a subscription outside it is answered as if it did not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from backend.streams.webhook_rules import WebhookCursorError, WebhookNotFoundError, check_url
from backend.streams.webhook_secrets import SecretBox
from projections.event_stream_reads import StreamQueries

PoolSource = Callable[[], asyncpg.Pool]
Clock = Callable[[], datetime]

SHOWN_ATTEMPTS = 20


class AttemptView(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    delivery_id: uuid.UUID
    status_code: int | None  # None: no answer at all
    error: str | None  # None: a 2xx
    events: int
    cursor: int  # the last position in the batch
    duration_ms: int


class SubscriptionView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    url: str
    department: str | None  # None: every department
    personal_data: bool
    status: str  # active | paused
    paused_reason: str | None
    cursor: int  # every event up to here was acknowledged with a 2xx
    head: int
    lag: int  # head - cursor, in positions
    consecutive_failures: int
    next_attempt_at: datetime | None  # None while paused
    last_success_at: datetime | None
    last_error: str | None
    last_status: int | None
    delivered_events: int
    created_by: str
    created_at: datetime
    attempts: list[AttemptView] = msgspec.field(default_factory=list)  # newest first; only for one


_COLUMNS = (
    "id, url, department, personal, status, paused_reason, cursor, consecutive_failures, next_attempt_at, "
    "last_success_at, last_error, last_status, delivered_events, created_by, created_at"
)


def _within(n: int) -> str:
    """Parameter $n NULL: an admin, who sees every subscription; else only those of department $n."""
    return f"(${n}::text IS NULL OR department = ${n})"


_WITHIN = _within(2)


class WebhookSubscriptions:
    """The port miniapp_api.webhook_routes asks; the worker (webhook_worker.py) does the deliveries."""

    def __init__(
        self, pool: PoolSource, stream: StreamQueries, box: SecretBox, clock: Clock, *, allow_http: bool
    ) -> None:
        self._pool, self._stream, self._box, self._clock = pool, stream, box, clock
        self._allow_http = allow_http

    async def register(
        self,
        *,
        department: str | None,
        url: str,
        secret: str,
        personal: bool,
        after: int | None,
        by: str,
    ) -> SubscriptionView:
        """A new active subscription from `after` (default: the head, so only events from now on)."""
        check_url(url, allow_http=self._allow_http)
        head = await self._stream.head()
        cursor = head if after is None else _checked(after, head)
        subscription = uuid.uuid4()
        kid, sealed = self._box.seal(subscription, secret)
        now = self._clock()
        await self._pool().execute(
            "INSERT INTO webhook_subscriptions (id, department, url, secret_key_id, secret_sealed, personal, "
            "status, cursor, next_attempt_at, created_by, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $8)",
            subscription, department, url, kid, sealed, personal, cursor, now, by,
        )  # fmt: skip
        return await self.get(subscription, department)

    async def list(self, within: str | None) -> list[SubscriptionView]:
        head = await self._stream.head()
        rows = await self._pool().fetch(
            f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE {_within(1)} ORDER BY created_at, id", within
        )
        return [_view(row, head) for row in rows]

    async def get(self, subscription: uuid.UUID, within: str | None) -> SubscriptionView:
        head = await self._stream.head()
        async with self._pool().acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE id = $1 AND {_WITHIN}",
                subscription,
                within,
            )
            if row is None:
                raise WebhookNotFoundError(f"no webhook subscription {subscription}")
            attempts = await conn.fetch(
                "SELECT at, delivery_id, status_code, error, events, cursor, duration_ms "
                "FROM webhook_attempts WHERE subscription_id = $1 ORDER BY id DESC LIMIT $2",
                subscription,
                SHOWN_ATTEMPTS,
            )
        return _view(row, head, [AttemptView(**dict(a)) for a in attempts])

    async def pause(self, subscription: uuid.UUID, within: str | None, by: str) -> SubscriptionView:
        await self._change(subscription, within, "status = 'paused', paused_reason = $3", f"paused by {by}")
        return await self.get(subscription, within)

    async def resume(self, subscription: uuid.UUID, within: str | None) -> SubscriptionView:
        """Active again, the next batch due now, the failures forgiven."""
        await self._change(subscription, within, _RESUMED, self._clock())
        return await self.get(subscription, within)

    async def redrive(self, subscription: uuid.UUID, within: str | None, after: int) -> SubscriptionView:
        """Deliver again everything after `after`, and resume.

        The revision moves on, so a batch in flight when this was asked moves no cursor.
        """
        _checked(after, await self._stream.head())
        await self._change(
            subscription, within, f"{_RESUMED}, cursor = $4, revision = revision + 1", self._clock(), after
        )
        return await self.get(subscription, within)

    async def delete(self, subscription: uuid.UUID, within: str | None) -> None:
        """Gone, with its attempts; a batch in flight is still sent, but its outcome is not recorded."""
        found = await self._pool().fetchval(
            f"DELETE FROM webhook_subscriptions WHERE id = $1 AND {_WITHIN} RETURNING id",
            subscription,
            within,
        )
        if found is None:
            raise WebhookNotFoundError(f"no webhook subscription {subscription}")

    async def _change(
        self, subscription: uuid.UUID, within: str | None, assignments: str, *args: Any
    ) -> None:
        found = await self._pool().fetchval(
            f"UPDATE webhook_subscriptions SET {assignments} WHERE id = $1 AND {_WITHIN} RETURNING id",
            subscription,
            within,
            *args,
        )
        if found is None:
            raise WebhookNotFoundError(f"no webhook subscription {subscription}")


def _checked(after: int, head: int) -> int:
    if not 0 <= after <= head:
        raise WebhookCursorError(f"position {after} is not in the stream, which has reached {head}")
    return after


_RESUMED = "status = 'active', paused_reason = NULL, consecutive_failures = 0, next_attempt_at = $3"


def _view(row: asyncpg.Record, head: int, attempts: list[AttemptView] | None = None) -> SubscriptionView:
    active = row["status"] == "active"
    return SubscriptionView(
        id=row["id"],
        url=row["url"],
        department=row["department"],
        personal_data=row["personal"],
        status=row["status"],
        paused_reason=row["paused_reason"],
        cursor=row["cursor"],
        head=head,
        lag=max(head - row["cursor"], 0),
        consecutive_failures=row["consecutive_failures"],
        next_attempt_at=row["next_attempt_at"] if active else None,
        last_success_at=row["last_success_at"],
        last_error=row["last_error"],
        last_status=row["last_status"],
        delivered_events=row["delivered_events"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        attempts=attempts or [],
    )
