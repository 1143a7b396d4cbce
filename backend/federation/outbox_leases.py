"""The relay's side of the outbox: claim due messages under a lease, record each outcome.

A claim writes a fresh lease token and pushes `leased_until` out, and commits at once;
while the lease holds no other relay, in this process or another, sends the message.
An outcome is recorded only where the row still carries the token, so a relay that
outlived its lease cannot overwrite its successor's outcome.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from backend.federation.delivery import RelayRules, Verdict

_CLAIM = """
UPDATE federation_outbox o SET lease = $2, leased_until = $3
FROM (
    SELECT message_id FROM federation_outbox
    WHERE delivered_at IS NULL AND next_attempt_at <= $1 AND leased_until <= $1
    ORDER BY next_attempt_at, created_at LIMIT $4 FOR UPDATE SKIP LOCKED
) AS due
WHERE o.message_id = due.message_id
RETURNING o.message_id, o.partner, o.handoff, o.seq, o.kind, o.body
"""

_RELEASE = "lease = NULL, leased_until = '-infinity'"

_DELIVERED = f"""
UPDATE federation_outbox SET delivered_at = $3, attempts = attempts + 1, consecutive_failures = 0,
    last_status = $4, {_RELEASE}
WHERE message_id = $1 AND lease = $2
"""

_FAILED = f"""
UPDATE federation_outbox SET attempts = attempts + $3, consecutive_failures = $4, next_attempt_at = $5,
    last_error = $6, last_status = $7, {_RELEASE}
WHERE message_id = $1 AND lease = $2
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """One message leased to this relay."""

    message_id: uuid.UUID
    partner: str
    handoff: uuid.UUID
    seq: int
    kind: str
    body: bytes
    lease: uuid.UUID


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery came to."""

    at: datetime  # when it ended
    verdict: Verdict
    status: int | None = None  # the answer's status; None: no answer
    error: str | None = None
    sent: bool = True  # False: never sent (no such partner, say); not counted as an attempt


async def claim(pool: asyncpg.Pool, now: datetime, lease: timedelta, limit: int) -> list[Claim]:
    """Lease up to `limit` undelivered messages that are due."""
    token = uuid.uuid4()
    rows = await pool.fetch(_CLAIM, now, token, now + lease, limit)
    return [Claim(**dict(row), lease=token) for row in rows]


async def release(pool: asyncpg.Pool, claims: list[Claim]) -> None:
    """Give leases back unused (a relay stopping), so another need not wait them out."""
    if claims:
        await pool.execute(
            f"UPDATE federation_outbox o SET {_RELEASE} "
            "FROM unnest($1::uuid[], $2::uuid[]) AS c(id, lease) "
            "WHERE o.message_id = c.id AND o.lease = c.lease",
            [c.message_id for c in claims],
            [c.lease for c in claims],
        )


async def record(pool: asyncpg.Pool, c: Claim, outcome: Outcome, rules: RelayRules, rng: float) -> bool:
    """Write the outcome and give the lease back; False if the lease was lost (the outcome is moot)."""
    if outcome.verdict is Verdict.DELIVERED:
        done: str = await pool.execute(_DELIVERED, c.message_id, c.lease, outcome.at, outcome.status)
        return done != "UPDATE 0"
    async with pool.acquire() as conn, conn.transaction():
        failures = await conn.fetchval(
            "SELECT consecutive_failures FROM federation_outbox WHERE message_id = $1 AND lease = $2 "
            "FOR UPDATE",
            c.message_id,
            c.lease,
        )
        if failures is None:
            return False
        failures += 1
        due = outcome.at + timedelta(seconds=rules.delay(outcome.verdict, failures, rng))
        await conn.execute(
            _FAILED, c.message_id, c.lease, int(outcome.sent), failures, due, outcome.error, outcome.status
        )
    return True


async def next_due(pool: asyncpg.Pool, now: datetime) -> datetime | None:
    """When the next undelivered message is due, or its lease runs out (`now` if one is due already)."""
    value: datetime | None = await pool.fetchval(
        "SELECT min(greatest(next_attempt_at, leased_until, $1)) FROM federation_outbox "
        "WHERE delivered_at IS NULL",
        now,
    )
    return value
