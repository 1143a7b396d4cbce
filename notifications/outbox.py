"""The notification policy consumer: case events become intents in the outbox, exactly once.

The outbox is not a blue/green read model: the dispatcher marks its rows, and a
rebuild must never send again. So intents go in with ON CONFLICT (key) DO NOTHING in
the batch's own transaction: a key is derived from the event's position, so a batch
handled again after a rollback, or a rebuilt generation, finds its rows already there.
Only the consumer's `case_notices` table is rebuilt.

An intent whose event is older than the cut-off (by the injected clock) is written as
'skipped', never 'pending': installing the consumer on an old log, or rebuilding it,
sends nothing about old history, and the row still records that nothing was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from notifications.case_notices import CalendarSource, CaseNotices, ItemLookup, create_notice_table
from notifications.intents import Intent
from notifications.policy import intents_for
from projections.case_facts import CASE_TOPICS

DEFAULT_CUTOFF = timedelta(hours=24)

_INSERT = (
    "INSERT INTO notification_outbox (key, purpose, recipient_kind, recipient, recipient_role, case_id, "
    "variables, urgent, occurred_at, state, next_attempt_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $9) ON CONFLICT (key) DO NOTHING"
)
_encode = msgspec.json.Encoder().encode


class NotificationPolicy:
    """Consumer of every case event (the runner's Consumer protocol, by shape)."""

    name: str = "notification_policy"
    topics: frozenset[str] | None = CASE_TOPICS
    tables: Sequence[str] = ("case_notices",)
    schema_version = 3  # 2: case_notices keeps the deadline's facts; 3: and the extension's reason

    def __init__(
        self,
        items: ItemLookup,
        clock: Callable[[], datetime],
        *,
        cutoff: timedelta = DEFAULT_CUTOFF,
        calendar: CalendarSource | None = None,
    ) -> None:
        self.items, self.clock, self.cutoff, self.calendar = items, clock, cutoff, calendar

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await create_notice_table(conn, f"case_notices{suffix}")

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        notices = await CaseNotices.read(conn, f"case_notices{suffix}", envelopes, self.items, self.calendar)
        intents: list[Intent] = []
        for envelope in envelopes:
            notice = notices.apply(envelope)
            if notice is None:
                continue
            case_id, version = envelope.originator_id, envelope.originator_version
            intents.extend(intents_for(notice, case_id, version, envelope.event))
        await notices.write(conn)
        await insert_intents(conn, intents, self.clock() - self.cutoff)


async def insert_intents(conn: asyncpg.Connection, intents: Sequence[Intent], oldest_news: datetime) -> None:
    """Into the outbox, once per key: 'pending', or 'skipped' when the news is older than `oldest_news`."""
    rows = [_row(i, "pending" if i.occurred_at >= oldest_news else "skipped") for i in intents]
    if rows:
        await conn.executemany(_INSERT, rows)


def _row(intent: Intent, state: str) -> tuple[Any, ...]:
    recipient = intent.recipient
    return (
        intent.key,
        intent.purpose.value,
        recipient.kind.value,
        recipient.address,
        recipient.role.value if recipient.role is not None else None,
        intent.case_id,
        _encode(intent.variables).decode(),
        intent.urgent,
        intent.occurred_at,
        state,
    )
