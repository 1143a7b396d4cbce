"""The in-app inbox (站内消息): every citizen notice, rendered with the inbox templates, and what was read.

The inbox always gets every notice, whatever the channels did, so it is a read model
of its own (blue/green, rebuilt from the log) rather than a delivery state. What a
citizen has read is their own act, not derived from events: it lives in `inbox_reads`
(a plain table, see 0006_notifications.sql) by the entry's key, which the same event
always gives, so a rebuild never loses it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from notifications.appointment_notices import (
    APPOINTMENT_NOTICE_TOPICS,
    AppointmentNoticeState,
    create_appointment_notice_table,
)
from notifications.case_notices import CalendarSource, CaseNotices, ItemLookup, create_notice_table
from notifications.intents import Intent, RecipientKind
from notifications.policy import intents_for
from notifications.rating_notices import (
    RATING_NOTICE_TOPICS,
    DepartmentNames,
    RatingNoticeState,
    create_rating_notice_table,
)
from notifications.templates import render
from projections.case_facts import CASE_TOPICS
from projections.catalogue import PoolSource


async def _no_names(codes: Sequence[str]) -> dict[str, str]:
    return {}


class Inbox:
    """Consumer of every case event and the appointment notices (the runner's Consumer protocol, by shape)."""

    name: str = "inbox"
    topics: frozenset[str] | None = CASE_TOPICS | APPOINTMENT_NOTICE_TOPICS | RATING_NOTICE_TOPICS
    tables: Sequence[str] = (
        "inbox",
        "inbox_case_notices",
        "inbox_appointment_notices",
        "inbox_rating_notices",
    )
    # 2: inbox_case_notices keeps the deadline's facts; 3: and the extension's reason; 4: appointments;
    # 5: ratings
    schema_version = 5

    def __init__(
        self,
        items: ItemLookup,
        calendar: CalendarSource | None = None,
        department_names: DepartmentNames | None = None,
    ) -> None:
        self.items, self.calendar = items, calendar
        self.department_names = department_names or _no_names

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS inbox{suffix} (
                key         text PRIMARY KEY,      -- the intent's key: the same event gives the same key
                subject     text NOT NULL,         -- the citizen's account
                purpose     text NOT NULL,
                title       text NOT NULL,
                body        text NOT NULL,
                case_id     uuid,
                occurred_at timestamptz NOT NULL
            );
            CREATE INDEX IF NOT EXISTS inbox_subject{suffix}
                ON inbox{suffix} (subject, occurred_at DESC, key DESC);
            """
        )
        await create_notice_table(conn, f"inbox_case_notices{suffix}")
        await create_appointment_notice_table(conn, f"inbox_appointment_notices{suffix}")
        await create_rating_notice_table(conn, f"inbox_rating_notices{suffix}")

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        booking = [e for e in envelopes if e.topic in APPOINTMENT_NOTICE_TOPICS]
        if booking:
            await self._appointments(conn, booking, suffix)
        rated = [e for e in envelopes if e.topic in RATING_NOTICE_TOPICS]
        if rated:
            state = RatingNoticeState(f"inbox_rating_notices{suffix}", self.items, self.department_names)
            await self._write(conn, suffix, await state.apply(conn, rated))
        envelopes = [e for e in envelopes if e.topic in CASE_TOPICS]
        notices = await CaseNotices.read(
            conn, f"inbox_case_notices{suffix}", envelopes, self.items, self.calendar
        )
        rows: list[tuple[Any, ...]] = []
        for envelope in envelopes:
            notice = notices.apply(envelope)
            if notice is None:
                continue
            case_id, version = envelope.originator_id, envelope.originator_version
            for intent in intents_for(notice, case_id, version, envelope.event):
                if intent.recipient.kind is not RecipientKind.CITIZEN:
                    continue
                shown = render(intent, "inbox")
                rows.append(
                    (
                        intent.key,
                        intent.recipient.address,
                        intent.purpose.value,
                        shown.title,
                        shown.body,
                        intent.case_id,
                        intent.occurred_at,
                    )
                )
        await notices.write(conn)
        if rows:
            await conn.executemany(
                f"INSERT INTO inbox{suffix} (key, subject, purpose, title, body, case_id, occurred_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                rows,
            )

    async def _appointments(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        state = AppointmentNoticeState(f"inbox_appointment_notices{suffix}", self.items)
        outcome = await state.apply(conn, envelopes)
        await self._write(conn, suffix, outcome.intents)
        for key, at in outcome.taken_back:
            # A reminder not yet due when its booking ended is never shown; one already shown stays.
            await conn.execute(f"DELETE FROM inbox{suffix} WHERE key = $1 AND occurred_at > $2", key, at)

    async def _write(self, conn: asyncpg.Connection, suffix: str, intents: Sequence[Intent]) -> None:
        """The citizens' intents of a policy other than the cases', rendered for the inbox."""
        rows = []
        for intent in intents:
            if intent.recipient.kind is not RecipientKind.CITIZEN:
                continue
            shown = render(intent, "inbox")
            rows.append(
                (intent.key, intent.recipient.address, intent.purpose.value, shown.title, shown.body,
                 intent.case_id, intent.occurred_at)
            )  # fmt: skip
        if rows:
            await conn.executemany(
                f"INSERT INTO inbox{suffix} (key, subject, purpose, title, body, case_id, occurred_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING",
                rows,
            )


# The query side.


class InboxEntry(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    purpose: str
    title: str
    body: str
    case_id: UUID | None
    occurred_at: datetime
    read_at: datetime | None


class InboxPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[InboxEntry]  # newest first
    unread: int  # of all the subject's entries, not only this page's
    next_before: str | None  # pass as `before` for the next page; None on the last


_ENTRIES = (
    "SELECT i.key, i.purpose, i.title, i.body, i.case_id, i.occurred_at, r.read_at FROM inbox i "
    "LEFT JOIN inbox_reads r ON r.subject = i.subject AND r.key = i.key WHERE i.subject = $1 "
    # A reminder is written when its booking is confirmed, and shown from its due time.
    "AND i.occurred_at <= $4 "
    # Paging by the last entry seen: (time, key) orders entries of one moment too.
    "AND ($2::text IS NULL OR (i.occurred_at, i.key) < "
    "(SELECT b.occurred_at, b.key FROM inbox b WHERE b.subject = $1 AND b.key = $2)) "
    "ORDER BY i.occurred_at DESC, i.key DESC LIMIT $3"
)
_UNREAD = (
    "SELECT count(*) FROM inbox i WHERE i.subject = $1 AND i.occurred_at <= $2 "
    "AND NOT EXISTS (SELECT 1 FROM inbox_reads r WHERE r.subject = $1 AND r.key = i.key)"
)


class InboxQueries:
    def __init__(self, pool: PoolSource, clock: Callable[[], datetime]) -> None:
        self._pool, self.clock = pool, clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    async def list(self, subject: str, limit: int = 20, before: str | None = None) -> InboxPage:
        """The subject's entries, newest first, after the entry keyed `before` when given."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            now = self.clock()
            rows = await conn.fetch(_ENTRIES, subject, before, limit + 1, now)
            unread = await conn.fetchval(_UNREAD, subject, now)
        items = [InboxEntry(**dict(r)) for r in rows[:limit]]
        more = len(rows) > limit
        return InboxPage(items=items, unread=unread, next_before=items[-1].key if more else None)

    async def unread(self, subject: str) -> int:
        """How many of the subject's entries are unread."""
        count: int = await self.pool.fetchval(_UNREAD, subject, self.clock())
        return count

    async def mark_read(self, subject: str, keys: Collection[str]) -> int:
        """Mark the subject's own entries among `keys` read; how many were unread until now."""
        marked: str = await self.pool.execute(
            "INSERT INTO inbox_reads (subject, key, read_at) "
            "SELECT i.subject, i.key, $3 FROM inbox i WHERE i.subject = $1 AND i.key = ANY($2::text[]) "
            "ON CONFLICT (subject, key) DO NOTHING",
            subject,
            list(keys),
            self.clock(),
        )
        return int(marked.rsplit(" ", 1)[1])
