"""Complaints as people see them: one row per complaint, its free text with ID and mobile numbers masked.

Who complained is kept for the citizen's own list and for staff only when the
complaint is not anonymous to staff: the queries (projections.complaint_reads)
decide, from `anonymous`, whether a staff reader sees `submitter`. The contact
number is kept masked only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic

from domain.complaint import Complaint
from domain.personal import mask, scrub

_EVENTS = (
    Complaint.Submitted, Complaint.Routed, Complaint.Rerouted, Complaint.Accepted, Complaint.Answered,
    Complaint.Reopened, Complaint.Closed, Complaint.Escalated, Complaint.Withdrawn, Complaint.Overdue,
)  # fmt: skip
COMPLAINT_TOPICS = frozenset(get_topic(cls) for cls in _EVENTS)


class ComplaintProjection:
    """Consumer of complaint events (the runner's Consumer protocol, by shape)."""

    name: str = "complaints"
    topics: frozenset[str] | None = COMPLAINT_TOPICS
    tables: Sequence[str] = ("complaints",)

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS complaints{suffix} (
                complaint_id   uuid PRIMARY KEY,
                number         text NOT NULL,
                category       text NOT NULL,
                title          text NOT NULL,         -- scrubbed
                description    text NOT NULL,         -- scrubbed
                hall           text,
                department_hint text,
                item_code      text,
                contact        text,                  -- masked
                submitter      text NOT NULL,
                anonymous      boolean NOT NULL,      -- to staff: they never see submitter or contact
                state          text NOT NULL,
                department     text,
                due            date,
                reopened       integer NOT NULL DEFAULT 0,
                overdue        boolean NOT NULL DEFAULT false,
                submitted_at   timestamptz NOT NULL,
                answered_at    timestamptz,
                reply          text,                  -- scrubbed
                resolved       boolean,
                comment        text,                  -- the citizen's latest verdict comment, scrubbed
                satisfied      boolean,
                closed_by_default boolean NOT NULL DEFAULT false,
                escalated      boolean NOT NULL DEFAULT false,
                ended_at       timestamptz
            );
            CREATE INDEX IF NOT EXISTS complaints_submitter{suffix}
                ON complaints{suffix} (submitter, submitted_at DESC);
            CREATE INDEX IF NOT EXISTS complaints_department{suffix}
                ON complaints{suffix} (department, state, due);
            CREATE INDEX IF NOT EXISTS complaints_unrouted{suffix}
                ON complaints{suffix} (submitted_at) WHERE state = 'submitted';
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        for envelope in envelopes:
            await _apply(conn, f"complaints{suffix}", envelope.originator_id, envelope.event)


def _scrubbed(text: str | None) -> str | None:
    return None if text is None else scrub(text)


async def _apply(conn: asyncpg.Connection, table: str, origin: UUID, event: Any) -> None:
    async def update(assignments: str, *values: Any) -> None:
        await conn.execute(f"UPDATE {table} SET {assignments} WHERE complaint_id = $1", origin, *values)

    match event:
        case Complaint.Submitted(report=r):
            await conn.execute(
                f"INSERT INTO {table} (complaint_id, number, category, title, description, hall, "
                "department_hint, item_code, contact, submitter, anonymous, state, submitted_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'submitted', $12) "
                "ON CONFLICT DO NOTHING",
                origin,
                event.number,
                str(r.category),
                scrub(r.title),
                scrub(r.description),
                r.hall,
                r.department_hint,
                r.item_code,
                None if r.contact is None else mask(r.contact),
                event.actor.id,
                r.anonymous_to_staff,
                event.timestamp,
            )
        case Complaint.Routed() | Complaint.Rerouted():
            await update("state = 'routed', department = $2, due = $3", event.department, event.due)
        case Complaint.Accepted():
            await update("state = 'accepted'")
        case Complaint.Answered():
            await update(
                "state = 'answered', answered_at = $2, reply = $3, resolved = $4",
                event.timestamp,
                scrub(event.reply),
                event.resolved,
            )
        case Complaint.Reopened():
            await update(
                "state = 'reopened', due = $2, reopened = reopened + 1, comment = $3, satisfied = false",
                event.due,
                _scrubbed(event.comment),
            )
        case Complaint.Closed():
            await update(
                "state = 'closed', satisfied = $2, closed_by_default = $3, comment = coalesce($4, comment), "
                "ended_at = $5",
                event.satisfied,
                event.by_default,
                _scrubbed(event.comment),
                event.timestamp,
            )
        case Complaint.Escalated():
            await update("escalated = true")
        case Complaint.Withdrawn():
            await update("state = 'withdrawn', ended_at = $2", event.timestamp)
        case Complaint.Overdue():
            await update("overdue = true")
