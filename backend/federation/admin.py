"""What administrators see of cross-city messaging (both queues by state, and the refusals), and
the one thing they may do to it: skip a partner's message that cannot be applied.

Skipping gives up on the message for good, so that the rest of its handoff goes on: it is
never applied, and the next seq becomes ready as if it had been. It takes the handoff's
advisory lock (inbox_rows.handoff_lock), as the applier does while it works the handoff, so
a handler never runs while its message is skipped: a skip waits for a run under way to end,
and refuses if the run applied the message.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from backend.federation.inbox import INBOX_CHANNEL_SUFFIX
from backend.federation.inbox_rows import handoff_lock
from backend.federation.refusals import Refused
from miniapp_api.problems import ProblemMap

log = logging.getLogger(__name__)

SKIP_REASON_MAX = 500  # characters
LOCK_WAIT = "5s"  # for a handler under way on the handoff to end; beyond that the skip is refused

_OUTBOX_STATES = {"pending": "delivered_at IS NULL", "delivered": "delivered_at IS NOT NULL"}
_INBOX_STATES = {
    "pending": "applied_at IS NULL AND skipped_at IS NULL AND error IS NULL",
    "applied": "applied_at IS NOT NULL",
    "failed": "applied_at IS NULL AND skipped_at IS NULL AND error IS NOT NULL",
    "skipped": "skipped_at IS NOT NULL",
}

_OUTBOX_ITEM = """
SELECT message_id, partner, handoff, seq, kind, created_at, delivered_at, attempts, consecutive_failures,
    CASE WHEN delivered_at IS NULL THEN nullif(next_attempt_at, '-infinity') END AS next_attempt_at,
    last_error, last_status
FROM federation_outbox
"""

_INBOX_ITEM = """
SELECT partner, message_id, handoff, seq, kind, received_at, applied_at, attempts,
    CASE WHEN applied_at IS NULL AND skipped_at IS NULL THEN nullif(next_attempt_at, '-infinity') END
        AS next_attempt_at,
    error, skipped_at, skipped_by, skip_reason
FROM federation_inbox
"""

_SKIP = """
UPDATE federation_inbox SET skipped_at = $3, skipped_by = $4, skip_reason = $5
WHERE partner = $1 AND message_id = $2 AND applied_at IS NULL AND skipped_at IS NULL
"""


class FederationAdminError(Exception):
    """An administrator's request about cross-city messages that cannot be carried out."""


class InboxMessageNotFoundError(FederationAdminError):
    pass


class InboxMessageSettledError(FederationAdminError):
    """The message is applied or skipped already: there is nothing left to give up on."""


class InboxMessageBusyError(FederationAdminError):
    """An applier has been working the message's handoff for longer than a skip waits."""


class SkipReasonError(FederationAdminError, ValueError):
    pass


def register_federation_admin_problems(problems: ProblemMap) -> ProblemMap:
    problems.register(InboxMessageNotFoundError, 404, "federation-message-not-found", "No such inbox message")
    problems.register(
        InboxMessageSettledError,
        409,
        "federation-message-settled",
        "The message is applied or skipped already",
    )
    problems.register(
        InboxMessageBusyError, 409, "federation-message-busy", "The message's handoff is being applied now"
    )
    problems.register(
        SkipReasonError, 400, "federation-skip-reason", f"State why, in 1 to {SKIP_REASON_MAX} characters"
    )
    return problems


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
    skipped_at: datetime | None
    skipped_by: str | None  # the administrator's subject
    skip_reason: str | None


@dataclass(frozen=True, slots=True)
class InboxSummary:
    pending: int
    applied: int
    failed: int
    skipped: int
    items: list[InboxItem]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FederationAdmin:
    """The adapter behind miniapp_api.federation_routes.FederationAdmin."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._pool, self._clock = pool, clock

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

    async def skip(self, partner: str, message_id: uuid.UUID, *, by: str, reason: str) -> InboxItem:
        """Give up on a message neither applied nor skipped, so its handoff's next one can go on."""
        stated = reason.strip()
        if not 1 <= len(stated) <= SKIP_REASON_MAX:
            raise SkipReasonError(
                f"state why the message is skipped, in 1 to {SKIP_REASON_MAX} characters "
                f"({len(stated)} given)"
            )
        async with self._pool().acquire() as conn, conn.transaction():
            found = _unsettled(await _inbox_item(conn, partner, message_id), partner, message_id)
            lock = handoff_lock(await conn.fetchval("SELECT current_schema()"), (partner, found.handoff))
            await conn.execute("SELECT set_config('lock_timeout', $1, true)", LOCK_WAIT)
            try:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
            except asyncpg.LockNotAvailableError:
                raise InboxMessageBusyError(
                    f"handoff {found.handoff} from {partner} is being applied; try again in a moment"
                ) from None
            # The applier may have applied it, or another admin skipped it, while we waited.
            _unsettled(await _inbox_item(conn, partner, message_id), partner, message_id)
            await conn.execute(_SKIP, partner, message_id, self._clock(), by, stated)
            await conn.execute("SELECT pg_notify(current_schema() || $1, '')", INBOX_CHANNEL_SUFFIX)
            skipped = await _inbox_item(conn, partner, message_id)
        assert skipped is not None
        log.warning(
            "federation: %s skipped message %s (#%d, %s) of handoff %s from %s: %s",
            by, message_id, skipped.seq, skipped.kind, skipped.handoff, partner, stated,
        )  # fmt: skip
        return skipped


async def _inbox_item(conn: asyncpg.Connection, partner: str, message_id: uuid.UUID) -> InboxItem | None:
    row = await conn.fetchrow(f"{_INBOX_ITEM} WHERE partner = $1 AND message_id = $2", partner, message_id)
    return None if row is None else InboxItem(**dict(row))


def _unsettled(item: InboxItem | None, partner: str, message_id: uuid.UUID) -> InboxItem:
    """The item, if it is still to apply; otherwise the error that says why not."""
    if item is None:
        raise InboxMessageNotFoundError(f"no message {message_id} from {partner} in the inbox")
    if item.applied_at is not None:
        raise InboxMessageSettledError(
            f"message {message_id} from {partner} was applied at {item.applied_at.isoformat()}"
        )
    if item.skipped_at is not None:
        raise InboxMessageSettledError(
            f"message {message_id} from {partner} was skipped at {item.skipped_at.isoformat()} "
            f"by {item.skipped_by}"
        )
    return item
