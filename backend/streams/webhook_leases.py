"""The worker's side of the subscriptions table: claim due subscriptions under a lease, record outcomes.

A claim writes a fresh lease token and pushes `leased_until` out, and commits at once;
while the lease holds no other worker claims the subscription, so it has one batch in
flight at a time. An outcome is recorded only where the row still carries the token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from backend.streams.webhook_rules import retry_delay

KEPT_ATTEMPTS = 50  # per subscription; the status page shows the newest of them

_CLAIM = """
UPDATE webhook_subscriptions s SET lease = $3, leased_until = $4
FROM (
    SELECT id FROM webhook_subscriptions
    WHERE status = 'active' AND next_attempt_at <= $1 AND leased_until <= $1 AND cursor < $2
    ORDER BY next_attempt_at LIMIT $5 FOR UPDATE SKIP LOCKED
) AS due
WHERE s.id = due.id
RETURNING s.id, s.department, s.url, s.secret_key_id, s.secret_sealed, s.personal, s.cursor, s.revision
"""

_ATTEMPT = """
INSERT INTO webhook_attempts
    (subscription_id, delivery_id, at, status_code, error, events, cursor, duration_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""

_PRUNE = """
DELETE FROM webhook_attempts WHERE subscription_id = $1 AND id <= (
    SELECT id FROM webhook_attempts WHERE subscription_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1
)
"""

_RELEASE = "lease = NULL, leased_until = '-infinity'"


@dataclass(frozen=True, slots=True)
class Claim:
    """One subscription leased to this worker, as it stood when claimed."""

    id: uuid.UUID
    department: str | None
    url: str
    secret_key_id: str
    secret_sealed: bytes
    personal: bool
    cursor: int
    revision: int
    lease: uuid.UUID


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt came to. A batch with no events (a skip) is sent to nobody."""

    delivery_id: uuid.UUID
    at: datetime
    events: int
    cursor: int  # the last position in the batch
    next_cursor: int  # where the cursor moves on success
    status_code: int | None = None
    error: str | None = None  # None: acknowledged with a 2xx
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def finished_at(self) -> datetime:
        return self.at + timedelta(milliseconds=self.duration_ms)


@dataclass(frozen=True, slots=True)
class Backoff:
    minimum: float
    maximum: float
    pause_after: int


async def claim(pool: asyncpg.Pool, now: datetime, head: int, lease: timedelta, limit: int) -> list[Claim]:
    """Lease up to `limit` active subscriptions that are due and have positions below `head` to read."""
    token = uuid.uuid4()
    rows = await pool.fetch(_CLAIM, now, head, token, now + lease, limit)
    return [Claim(**dict(row), lease=token) for row in rows]


async def release(pool: asyncpg.Pool, claims: list[Claim]) -> None:
    """Give leases back unused (a worker stopping), so another worker need not wait them out."""
    if claims:
        await pool.execute(
            f"UPDATE webhook_subscriptions s SET {_RELEASE} "
            "FROM unnest($1::uuid[], $2::uuid[]) AS c(id, lease) WHERE s.id = c.id AND s.lease = c.lease",
            [c.id for c in claims],
            [c.lease for c in claims],
        )


async def record(pool: asyncpg.Pool, c: Claim, outcome: Outcome, backoff: Backoff, rng: float) -> bool:
    """Write the outcome and give the lease back; False if the lease was lost (the outcome is moot)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT revision, consecutive_failures FROM webhook_subscriptions "
            "WHERE id = $1 AND lease = $2 FOR UPDATE",
            c.id,
            c.lease,
        )
        if row is None:
            return False
        if outcome.events or not outcome.ok:  # a skip over positions nobody may see is no attempt
            await conn.execute(
                _ATTEMPT, c.id, outcome.delivery_id, outcome.at, outcome.status_code, outcome.error,
                outcome.events, outcome.cursor, outcome.duration_ms,
            )  # fmt: skip
            await conn.execute(_PRUNE, c.id, KEPT_ATTEMPTS)
        if row["revision"] != c.revision:  # re-driven meanwhile: the new cursor stands
            await conn.execute(f"UPDATE webhook_subscriptions SET {_RELEASE} WHERE id = $1", c.id)
        elif outcome.ok:
            await _succeeded(conn, c, outcome)
        else:
            failures = row["consecutive_failures"] + 1
            delay = timedelta(seconds=retry_delay(failures, backoff.minimum, backoff.maximum, rng))
            paused = failures >= backoff.pause_after
            await conn.execute(
                "UPDATE webhook_subscriptions SET consecutive_failures = $2, next_attempt_at = $3, "
                "last_error = $4, last_status = $5, status = CASE WHEN $6 THEN 'paused' ELSE status END, "
                f"paused_reason = CASE WHEN $6 THEN $7 ELSE paused_reason END, {_RELEASE} WHERE id = $1",
                c.id, failures, outcome.finished_at + delay, outcome.error, outcome.status_code, paused,
                f"{failures} consecutive failures",
            )  # fmt: skip
    return True


async def _succeeded(conn: asyncpg.Connection, c: Claim, outcome: Outcome) -> None:
    if not outcome.events:  # nothing this subscription may see: only the cursor moves
        await conn.execute(
            f"UPDATE webhook_subscriptions SET cursor = greatest(cursor, $2), {_RELEASE} WHERE id = $1",
            c.id,
            outcome.next_cursor,
        )
        return
    await conn.execute(
        "UPDATE webhook_subscriptions SET cursor = greatest(cursor, $2), "
        "delivered_events = delivered_events + $3, "
        f"consecutive_failures = 0, last_success_at = $4, last_status = $5, next_attempt_at = $4, {_RELEASE} "
        "WHERE id = $1",
        c.id,
        outcome.next_cursor,
        outcome.events,
        outcome.finished_at,
        outcome.status_code,
    )


async def next_due(pool: asyncpg.Pool, head: int) -> datetime | None:
    """When the next subscription with something to read is due, or its lease runs out."""
    value: datetime | None = await pool.fetchval(
        "SELECT min(greatest(next_attempt_at, leased_until)) FROM webhook_subscriptions "
        "WHERE status = 'active' AND cursor < $1",
        head,
    )
    return value
