"""A complaint's clocks from the log: the department's due date (督办) and the citizen's confirmation window.

Routing, rerouting and reopening each set an overdue timer for the midnight (Beijing)
after the due date; its key carries the due date, because a fired key stays fired and
a reopened complaint owes a second answer. An answer clears the overdue timer and
opens the confirmation window; closing or withdrawing clears everything. An answer
carries no due date, so the consumer keeps each complaint's current one in a table of
its own (`complaint_overdue_due`), read by primary key; a stale timer that escapes
anyway finds the complaint moved on, and its handler does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic

from backend.complaints.service import ComplaintService
from backend.consumers.base import Envelope
from backend.timers import TimerChanges, TimerHandler
from domain.case.checks import BEIJING
from domain.complaint import Complaint

OVERDUE = "complaint_overdue"
UNCONFIRMED = "complaint_unconfirmed"
_EVENTS = (
    Complaint.Routed, Complaint.Rerouted, Complaint.Reopened, Complaint.Answered,
    Complaint.Closed, Complaint.Withdrawn,
)  # fmt: skip


def overdue_key(complaint_id: UUID, due: date) -> str:
    return f"{OVERDUE}:{complaint_id}:{due.isoformat()}"


def _midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), BEIJING)


class ComplaintTimers:
    """Consumer of routing, answers and endings (the runner's Consumer protocol, by shape)."""

    name: str = "complaint_timers"
    topics: frozenset[str] | None = frozenset(get_topic(cls) for cls in _EVENTS)
    tables: Sequence[str] = ("complaint_overdue_due",)

    def __init__(self, confirm_days: int = 7) -> None:
        self.confirm_days = confirm_days

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS complaint_overdue_due{suffix} "
            "(complaint_id uuid PRIMARY KEY, due date NOT NULL)"
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        table = f"complaint_overdue_due{suffix}"
        origins = sorted({e.originator_id for e in envelopes})
        rows = await conn.fetch(
            f"SELECT complaint_id, due FROM {table} WHERE complaint_id = ANY($1::uuid[])", origins
        )
        dues: dict[UUID, date | None] = {r["complaint_id"]: r["due"] for r in rows}
        timers = TimerChanges()

        def clear_overdue(origin: UUID) -> None:
            if (due := dues.get(origin)) is not None:
                timers.cancel(overdue_key(origin, due))
            dues[origin] = None

        for envelope in envelopes:
            event: Any = envelope.event
            origin = envelope.originator_id
            match event:
                case Complaint.Routed() | Complaint.Rerouted() | Complaint.Reopened():
                    clear_overdue(origin)  # a moved due date replaces the old one
                    if isinstance(event, Complaint.Reopened):
                        timers.cancel(f"{UNCONFIRMED}:{origin}")  # so the next answer can set it again
                    payload = {"complaint_id": str(origin), "due": event.due.isoformat()}
                    timers.schedule(
                        overdue_key(origin, event.due), OVERDUE, _midnight_after(event.due), payload
                    )
                    dues[origin] = event.due
                case Complaint.Answered():
                    clear_overdue(origin)
                    at = event.timestamp + timedelta(days=self.confirm_days)
                    timers.schedule(f"{UNCONFIRMED}:{origin}", UNCONFIRMED, at, {"complaint_id": str(origin)})
                case Complaint.Closed() | Complaint.Withdrawn():
                    clear_overdue(origin)
                    timers.cancel(f"{UNCONFIRMED}:{origin}")
        await timers.write(conn)
        kept = [(c, d) for c, d in dues.items() if d is not None]
        gone = [c for c, d in dues.items() if d is None]
        if gone:
            await conn.execute(f"DELETE FROM {table} WHERE complaint_id = ANY($1::uuid[])", gone)
        if kept:
            await conn.executemany(
                f"INSERT INTO {table} VALUES ($1, $2) "
                "ON CONFLICT (complaint_id) DO UPDATE SET due = EXCLUDED.due",
                kept,
            )


def complaint_handlers(service: ComplaintService) -> dict[str, TimerHandler]:
    async def overdue(key: str, payload: Any) -> None:
        await service.mark_overdue(UUID(payload["complaint_id"]), date.fromisoformat(payload["due"]), key)

    async def unconfirmed(key: str, payload: Any) -> None:
        await service.close_unconfirmed(UUID(payload["complaint_id"]), key)

    return {OVERDUE: overdue, UNCONFIRMED: unconfirmed}
