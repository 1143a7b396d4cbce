"""The applier's side of the inbox: which handoffs have a message ready, and marking outcomes.

A message is ready when it is neither applied nor skipped, is due (not backing off after
a failure), and either opens its handoff (seq 1) or follows an applied or skipped message
of the same sender and handoff. So each handoff has at most one ready message at a time.
An administrator skips a message (admin.py) under the handoff's lock, so never while it runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

import asyncpg

from backend.consumers.leadership import advisory_key
from backend.federation.handlers import AppliedMessage
from backend.federation.messages import ENVELOPE

HandoffKey = tuple[str, uuid.UUID]  # (sender region, handoff)


def handoff_lock(schema: str, key: HandoffKey) -> int:
    """The advisory lock whoever works the handoff's messages holds: an applier, or an admin skipping one."""
    return advisory_key(schema, f"{key[0]}/{key[1]}", "federation-apply")


_READY = """
SELECT i.partner, i.handoff FROM federation_inbox i
WHERE i.applied_at IS NULL AND i.skipped_at IS NULL AND i.next_attempt_at <= $1
  AND (i.seq = 1 OR EXISTS (
      SELECT 1 FROM federation_inbox p
      WHERE p.partner = i.partner AND p.handoff = i.handoff AND p.seq = i.seq - 1
        AND (p.applied_at IS NOT NULL OR p.skipped_at IS NOT NULL)))
  AND NOT EXISTS (
      SELECT 1 FROM unnest($3::text[], $4::uuid[]) AS skip(partner, handoff)
      WHERE skip.partner = i.partner AND skip.handoff = i.handoff)
ORDER BY i.next_attempt_at, i.received_at
LIMIT $2
"""

_NEXT = """
SELECT i.message_id, i.seq, i.kind, i.body, i.received_at, i.attempts, i.next_attempt_at <= $3 AS due,
    (i.seq = 1 OR EXISTS (
        SELECT 1 FROM federation_inbox p
        WHERE p.partner = i.partner AND p.handoff = i.handoff AND p.seq = i.seq - 1)) AS follows
FROM federation_inbox i
WHERE i.partner = $1 AND i.handoff = $2 AND i.applied_at IS NULL AND i.skipped_at IS NULL
ORDER BY i.seq LIMIT 1
"""


async def ready_handoffs(
    pool: asyncpg.Pool, now: datetime, limit: int, skip: Collection[HandoffKey]
) -> list[HandoffKey]:
    """Up to `limit` handoffs with a message ready, longest waiting first, leaving out `skip`."""
    rows = await pool.fetch(
        _READY, now, limit, [partner for partner, _ in skip], [handoff for _, handoff in skip]
    )
    return [(row["partner"], row["handoff"]) for row in rows]


async def next_ready(
    conn: asyncpg.Connection, key: HandoffKey, now: datetime
) -> tuple[AppliedMessage, int] | None:
    """The handoff's ready message, if it has one now (its lowest seq neither applied nor skipped, if
    that follows on), and how often its handler has failed so far."""
    partner, handoff = key
    row = await conn.fetchrow(_NEXT, partner, handoff, now)
    if row is None or not row["due"] or not row["follows"]:
        return None
    envelope = ENVELOPE.decode(row["body"])  # checked on the way in
    message = AppliedMessage(
        partner=partner,
        message_id=row["message_id"],
        handoff=handoff,
        seq=row["seq"],
        kind=row["kind"],
        payload=bytes(envelope.payload),
        sent_at=envelope.sent_at,
        received_at=row["received_at"],
    )
    return message, row["attempts"]


async def mark_applied(conn: asyncpg.Connection, message: AppliedMessage, at: datetime) -> None:
    await conn.execute(
        "UPDATE federation_inbox SET applied_at = $3 WHERE partner = $1 AND message_id = $2 "
        "AND applied_at IS NULL AND skipped_at IS NULL",
        message.partner,
        message.message_id,
        at,
    )


async def mark_failed(
    conn: asyncpg.Connection, message: AppliedMessage, error: str, retry_at: datetime
) -> None:
    """Record a handler's failure and when to try again."""
    await conn.execute(
        "UPDATE federation_inbox SET attempts = attempts + 1, error = $3, next_attempt_at = $4 "
        "WHERE partner = $1 AND message_id = $2 AND applied_at IS NULL AND skipped_at IS NULL",
        message.partner,
        message.message_id,
        error[:500],
        retry_at,
    )


async def next_due(pool: asyncpg.Pool, now: datetime) -> datetime | None:
    """When the earliest message backing off after a failure falls due."""
    value: datetime | None = await pool.fetchval(
        "SELECT min(next_attempt_at) FROM federation_inbox "
        "WHERE applied_at IS NULL AND skipped_at IS NULL AND next_attempt_at > $1",
        now,
    )
    return value
