"""The query side of 好差评: a citizen's own occasions, a unit's 差评工单 with lights, the boards and metrics.

Staff queries never select who rated (`applicant`): a unit sees the rating, the masked
comment and the case, never the person. Boards and metrics are computed by
domain.rating.metrics over the rows of a date range.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Literal
from uuid import UUID

import asyncpg
import msgspec

from domain.calendar import WorkingCalendar
from domain.calendar_deadline import light
from domain.case.checks import BEIJING
from domain.rating.metrics import BoardRow, NationalMetrics, board, national_metrics, public_board
from projections.case_deadlines import LIGHT_RANK, Light
from projections.catalogue import PoolSource
from projections.ratings import rating_facts, ticket_facts

OccasionState = Literal["to_rate", "rated", "defaulted", "closed"]
_LEVEL_LABELS = {1: "非常不满意", 2: "不满意", 3: "基本满意", 4: "满意", 5: "非常满意"}


class OccasionView(msgspec.Struct, frozen=True, kw_only=True):
    rating_id: UUID
    channel: str
    item_code: str
    case_id: UUID | None
    case_number: str | None
    hall: str | None
    invited_at: datetime
    closes_on: date
    state: OccasionState
    level: int | None
    level_label: str | None


class TicketView(msgspec.Struct, frozen=True, kw_only=True):
    ticket_id: UUID
    rating_id: UUID
    level: int
    comment: str  # masked
    case_id: UUID | None
    item_code: str
    due: date
    working_days_left: int
    light: Light
    state: str
    callbacks: int
    called_back: bool
    callback_satisfied: bool | None
    overdue: bool
    resolution: str | None
    opened_at: datetime


class MyTicketView(msgspec.Struct, frozen=True, kw_only=True):
    ticket_id: UUID
    rating_id: UUID
    case_number: str | None
    item_code: str
    level: int
    state: str
    state_label: str
    called_back: bool
    resolution: str | None  # masked
    callback_satisfied: bool | None
    due: date
    opened_at: datetime


_TICKET_LABELS = {
    "open": "待整改",
    "appealed": "核实中",
    "rectified": "已整改",
    "explained": "已解释说明",
    "excluded": "不计入统计",
}


class RatingQueries:
    def __init__(
        self, pool: PoolSource, calendar: Callable[[], WorkingCalendar], clock: Callable[[], datetime]
    ):
        self._pool, self.calendar, self.clock = pool, calendar, clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    def today(self) -> date:
        return self.clock().astimezone(BEIJING).date()

    async def mine(self, subject: str) -> list[OccasionView]:
        """The citizen's own occasions, newest first: what is still theirs to rate comes with its last day."""
        rows = await self.pool.fetch(
            "SELECT rating_id, channel, item_code, case_id, case_number, hall, invited_at, closes_on, level, "
            "is_default FROM rating_occasions WHERE applicant = $1 ORDER BY invited_at DESC LIMIT 100",
            subject,
        )
        today = self.today()
        views = []
        for r in rows:
            level = r["level"]
            state: OccasionState
            if level is None:
                state = "to_rate" if today <= r["closes_on"] else "closed"
            else:
                state = "defaulted" if r["is_default"] else "rated"
            views.append(
                OccasionView(
                    rating_id=r["rating_id"],
                    channel=r["channel"],
                    item_code=r["item_code"],
                    case_id=r["case_id"],
                    case_number=r["case_number"],
                    hall=r["hall"],
                    invited_at=r["invited_at"].astimezone(BEIJING),
                    closes_on=r["closes_on"],
                    state=state,
                    level=level,
                    level_label=None if level is None else _LEVEL_LABELS[level],
                )
            )
        return views

    async def unit_tickets(self, unit: str, *, open_only: bool = True) -> list[TicketView]:
        """A unit's 差评工单: red first, then yellow, then by due date."""
        rows = await self.pool.fetch(
            "SELECT * FROM rating_tickets WHERE unit = $1 AND ($2 = false OR state IN ('open', 'appealed')) "
            "ORDER BY due, opened_at LIMIT 500",
            unit,
            open_only,
        )
        views = [self._ticket(r) for r in rows]
        return sorted(views, key=lambda t: (LIGHT_RANK[t.light], t.due))

    async def my_tickets(self, subject: str) -> list[MyTicketView]:
        """The 差评工单 the citizen's own ratings opened, newest first: where each stands."""
        rows = await self.pool.fetch(
            "SELECT t.ticket_id, t.rating_id, o.case_number, o.item_code, t.level, t.state, t.called_back, "
            "t.resolution, t.callback_satisfied, t.due, t.opened_at FROM rating_tickets t "
            "JOIN rating_occasions o USING (rating_id) WHERE o.applicant = $1 "
            "ORDER BY t.opened_at DESC LIMIT 100",
            subject,
        )
        return [
            MyTicketView(
                ticket_id=r["ticket_id"],
                rating_id=r["rating_id"],
                case_number=r["case_number"],
                item_code=r["item_code"],
                level=r["level"],
                state=r["state"],
                state_label=_TICKET_LABELS.get(r["state"], r["state"]),
                called_back=r["called_back"],
                resolution=r["resolution"],
                callback_satisfied=r["callback_satisfied"],
                due=r["due"],
                opened_at=r["opened_at"].astimezone(BEIJING),
            )
            for r in rows
        ]

    async def ticket(self, ticket_id: UUID) -> TicketView | None:
        row = await self.pool.fetchrow("SELECT * FROM rating_tickets WHERE ticket_id = $1", ticket_id)
        return None if row is None else self._ticket(row)

    async def ticket_unit(self, ticket_id: UUID) -> str | None:
        unit: str | None = await self.pool.fetchval(
            "SELECT unit FROM rating_tickets WHERE ticket_id = $1", ticket_id
        )
        return unit

    def _ticket(self, r: asyncpg.Record) -> TicketView:
        calendar, today = self.calendar(), self.today()
        left = calendar.working_days_between(today, r["due"])
        is_open = r["state"] in ("open", "appealed")
        return TicketView(
            ticket_id=r["ticket_id"],
            rating_id=r["rating_id"],
            level=r["level"],
            comment=r["comment"],
            case_id=r["case_id"],
            item_code=r["item_code"],
            due=r["due"],
            working_days_left=left,
            # The cases' rule: yellow at 2 working days or fewer, red once past; a closed ticket is done.
            light=light(r["due"], today, calendar) if is_open else "green",
            state=r["state"],
            callbacks=r["callbacks"],
            called_back=r["called_back"],
            callback_satisfied=r["callback_satisfied"],
            overdue=r["overdue"],
            resolution=r["resolution"],
            opened_at=r["opened_at"].astimezone(BEIJING),
        )

    async def metrics(self, since: date, until: date) -> NationalMetrics:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            return national_metrics(
                await rating_facts(conn, since, until), await ticket_facts(conn, since, until)
            )

    async def board(self, by: str, since: date, until: date, *, public: bool) -> list[BoardRow]:
        async with self.pool.acquire() as conn:
            facts = await rating_facts(conn, since, until)
        return public_board(facts, by) if public else board(facts, by)
