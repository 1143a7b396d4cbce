"""The query side of complaints: a citizen's own, the routing desk's unrouted, a department's queue, lit.

Staff readers never learn who complained anonymously: for them `submitter` and the
masked contact are None when the complaint is anonymous to staff. The light is
computed when asked, from the working days left to the due date.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from uuid import UUID

import asyncpg
import msgspec

from domain.calendar import WorkingCalendar
from domain.calendar_deadline import light
from domain.case.checks import BEIJING
from domain.complaint import ComplaintCategory, ComplaintState, LightColour
from domain.complaint.values import WITH_DEPARTMENT, YELLOW_AT
from projections.case_deadlines import LIGHT_RANK
from projections.catalogue import PoolSource

_OPEN = sorted(s.value for s in WITH_DEPARTMENT | {ComplaintState.SUBMITTED, ComplaintState.ANSWERED})


class ComplaintView(msgspec.Struct, frozen=True, kw_only=True):
    complaint_id: UUID
    number: str
    category: str
    category_label: str
    title: str  # ID and mobile numbers masked, here and in every free text below
    description: str
    hall: str | None
    department_hint: str | None
    item_code: str | None
    contact: str | None  # masked; None for staff when anonymous
    submitter: str | None  # None for staff when anonymous
    anonymous: bool
    state: str
    state_label: str
    department: str | None
    due: date | None
    working_days_left: int | None
    light: LightColour
    overdue: bool
    reopened: int
    submitted_at: datetime
    answered_at: datetime | None
    reply: str | None
    resolved: bool | None
    comment: str | None
    satisfied: bool | None
    closed_by_default: bool
    escalated: bool


class ComplaintQueries:
    def __init__(
        self, pool: PoolSource, calendar: Callable[[], WorkingCalendar], clock: Callable[[], datetime]
    ) -> None:
        self._pool, self.calendar, self.clock = pool, calendar, clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    def today(self) -> date:
        return self.clock().astimezone(BEIJING).date()

    async def mine(self, subject: str) -> list[ComplaintView]:
        """The citizen's own complaints, newest first."""
        rows = await self.pool.fetch(
            "SELECT * FROM complaints WHERE submitter = $1 ORDER BY submitted_at DESC LIMIT 100", subject
        )
        return [self._view(r, staff=False) for r in rows]

    async def unrouted(self) -> list[ComplaintView]:
        """What waits for the desk to route it, oldest first."""
        rows = await self.pool.fetch(
            "SELECT * FROM complaints WHERE state = 'submitted' ORDER BY submitted_at LIMIT 500"
        )
        return [self._view(r, staff=True) for r in rows]

    async def department_queue(self, department: str, *, open_only: bool = True) -> list[ComplaintView]:
        """A department's complaints: red first, then yellow, then by due date."""
        rows = await self.pool.fetch(
            "SELECT * FROM complaints WHERE department = $1 AND ($2 = false OR state = ANY($3::text[])) "
            "ORDER BY due, submitted_at LIMIT 500",
            department,
            open_only,
            _OPEN,
        )
        views = [self._view(r, staff=True) for r in rows]
        return sorted(views, key=lambda v: (LIGHT_RANK[v.light], v.due or date.max))

    async def one(self, complaint_id: UUID) -> ComplaintView | None:
        """One complaint as staff see it."""
        row = await self.pool.fetchrow("SELECT * FROM complaints WHERE complaint_id = $1", complaint_id)
        return None if row is None else self._view(row, staff=True)

    def _view(self, r: asyncpg.Record, *, staff: bool) -> ComplaintView:
        state = ComplaintState(r["state"])
        left, light = self._light(state, r["due"])
        hidden = staff and r["anonymous"]
        return ComplaintView(
            complaint_id=r["complaint_id"],
            number=r["number"],
            category=r["category"],
            category_label=ComplaintCategory(r["category"]).label,
            title=r["title"],
            description=r["description"],
            hall=r["hall"],
            department_hint=r["department_hint"],
            item_code=r["item_code"],
            contact=None if hidden else r["contact"],
            submitter=None if hidden else r["submitter"],
            anonymous=r["anonymous"],
            state=state.value,
            state_label=state.label,
            department=r["department"],
            due=r["due"],
            working_days_left=left,
            light=light,
            overdue=r["overdue"],
            reopened=r["reopened"],
            submitted_at=r["submitted_at"].astimezone(BEIJING),
            answered_at=None if r["answered_at"] is None else r["answered_at"].astimezone(BEIJING),
            reply=r["reply"],
            resolved=r["resolved"],
            comment=r["comment"],
            satisfied=r["satisfied"],
            closed_by_default=r["closed_by_default"],
            escalated=r["escalated"],
        )

    def _light(self, state: ComplaintState, due: date | None) -> tuple[int | None, LightColour]:
        """As Complaint.light: only a department that owes an answer has a light other than green."""
        if due is None:
            return None, "green"
        calendar, today = self.calendar(), self.today()
        left = calendar.working_days_between(today, due)
        if state not in WITH_DEPARTMENT:
            return left, "green"
        return left, light(due, today, calendar, yellow_within=YELLOW_AT)
