"""Complaint commands over the event store: submit, route, accept, answer, confirm, withdraw, and the timers'.

Due dates are counted here in working days from the injected clock, so the aggregate
stays pure. A retried submission (same account, same client request id) has the same
uuid5 id, so the store keeps one complaint. Numbers are "TS" + region + yyyymmdd + a
five-digit daily sequence, taken from the counters case numbers use (under the key
"TS" + region); a refused submission only skips one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from uuid import UUID, uuid4, uuid5

import asyncpg

from backend.cases.numbers import next_in_day
from backend.store.aggregates import AggregateStore
from backend.store.errors import ConcurrencyError
from backend.store.retries import retry_on_conflict
from domain.calendar import WorkingCalendar
from domain.case import Actor, Channel, Role
from domain.case.checks import beijing_time
from domain.complaint import Complaint, ComplaintCategory, ComplaintState
from domain.complaint.values import WITH_DEPARTMENT
from domain.personal import Phone

COMPLAINT_IDS = UUID("6f1d3c2a-8b7e-5d4f-9a1b-2c3d4e5f6a7b")
SYSTEM = Actor(id="system:complaints", role=Role.SYSTEM)


class ComplaintNotFoundError(LookupError):
    pass


def complaint_id_for(account: str, client_request_id: str) -> UUID:
    return uuid5(COMPLAINT_IDS, f"{account}/{client_request_id}")


class ComplaintService:
    def __init__(
        self,
        aggregates: AggregateStore | Callable[[], AggregateStore],
        pool: asyncpg.Pool | Callable[[], asyncpg.Pool],
        *,
        clock: Callable[[], datetime],
        calendar: Callable[[], WorkingCalendar],
        region: str,
        answer_days: int = 10,
        confirm_days: int = 7,
    ) -> None:
        self._aggregates, self._pool, self.clock, self.calendar = aggregates, pool, clock, calendar
        self.region, self.answer_days, self.confirm_days = region, answer_days, confirm_days

    @property
    def aggregates(self) -> AggregateStore:
        a = self._aggregates
        return a if isinstance(a, AggregateStore) else a()

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    def today(self) -> date:
        return beijing_time(self.clock()).date()

    def answer_due(self) -> date:
        return self.calendar().add_working_days(self.today(), self.answer_days)

    # The citizen's side.

    async def submit(
        self,
        actor: Actor,
        channel: Channel,
        *,
        category: ComplaintCategory,
        title: str,
        description: str,
        hall: str | None = None,
        department_hint: str | None = None,
        item_code: str | None = None,
        contact: Phone | None = None,
        anonymous_to_staff: bool = False,
        client_request_id: str | None = None,
    ) -> Complaint:
        """File a complaint; the same client request id from the same account returns the first one."""
        if client_request_id is None:
            complaint_id = uuid4()
        else:
            complaint_id = complaint_id_for(actor.id, client_request_id)
            if (found := await self.aggregates.find(complaint_id)) is not None:
                return self._checked(found, complaint_id)
        now = self.clock()
        complaint = Complaint.submit(
            complaint_id,
            number=await self._next_number(beijing_time(now).date()),
            actor=actor,
            channel=channel,
            at=now,
            category=category,
            title=title,
            description=description,
            hall=hall,
            department_hint=department_hint,
            item_code=item_code,
            contact=contact,
            anonymous_to_staff=anonymous_to_staff,
            request_id=client_request_id,
        )
        try:
            await self.aggregates.save(complaint)
        except ConcurrencyError:
            # The same submission raced itself: the copy that won is the complaint.
            if client_request_id is None:
                raise
            return await self.complaint(complaint_id)
        return complaint

    async def confirm(
        self, actor: Actor, complaint_id: UUID, satisfied: bool, comment: str | None = None
    ) -> Complaint:
        """The citizen's verdict; a first dissatisfaction reopens it, owing an answer in answer_days."""

        def verdict(c: Complaint) -> bool:
            reopen_due = None if satisfied or not c.may_reopen else self.answer_due()
            return c.confirm(
                satisfied,
                comment,
                actor=actor,
                at=self.clock(),
                reopen_due=reopen_due,
                channel=Channel.MINIAPP,
            )

        return await self._command(complaint_id, verdict)

    async def withdraw(self, actor: Actor, complaint_id: UUID, reason: str) -> Complaint:
        return await self._command(
            complaint_id, lambda c: c.withdraw(reason, actor=actor, at=self.clock(), channel=Channel.MINIAPP)
        )

    # The desk's and the department's side.

    async def route(
        self,
        actor: Actor,
        complaint_id: UUID,
        department: str,
        *,
        reason: str | None = None,
        channel: Channel = Channel.SYSTEM,
    ) -> Complaint:
        """Route (or move) it to a department, owing an answer in answer_days working days from today."""
        return await self._command(
            complaint_id,
            lambda c: c.route(
                department,
                due=self.answer_due(),
                actor=actor,
                at=self.clock(),
                reason=reason,
                channel=channel,
            ),
        )

    async def accept(self, actor: Actor, complaint_id: UUID, channel: Channel = Channel.SYSTEM) -> Complaint:
        return await self._command(
            complaint_id, lambda c: c.accept(actor=actor, at=self.clock(), channel=channel)
        )

    async def answer(
        self,
        actor: Actor,
        complaint_id: UUID,
        reply: str,
        *,
        resolved: bool,
        channel: Channel = Channel.SYSTEM,
    ) -> Complaint:
        return await self._command(
            complaint_id,
            lambda c: c.answer(reply, resolved=resolved, actor=actor, at=self.clock(), channel=channel),
        )

    # Timers: the key is the request id, and a timer overtaken by events does nothing.

    async def close_unconfirmed(self, complaint_id: UUID, key: str | None = None) -> bool:
        def close(c: Complaint) -> bool:
            if c.state is not ComplaintState.ANSWERED:
                return False  # confirmed, or reopened, since the timer was set
            return c.close_unconfirmed(actor=SYSTEM, at=self.clock(), request_id=key)

        return await self._timer_command(complaint_id, close)

    async def mark_overdue(self, complaint_id: UUID, due: date, key: str | None = None) -> bool:
        """督办 for `due`, unless the complaint was answered, moved to another due date or ended since."""

        def mark(c: Complaint) -> bool:
            today = self.today()
            if c.state not in WITH_DEPARTMENT or c.due != due or today <= due:
                return False
            return c.mark_overdue(on=today, actor=SYSTEM, at=self.clock(), request_id=key)

        return await self._timer_command(complaint_id, mark)

    # Loading.

    async def complaint(self, complaint_id: UUID) -> Complaint:
        return self._checked(await self.aggregates.find(complaint_id), complaint_id)

    @staticmethod
    def _checked(found: object, complaint_id: UUID) -> Complaint:
        if not isinstance(found, Complaint):
            raise ComplaintNotFoundError(f"no complaint {complaint_id}")
        return found

    async def _command(self, complaint_id: UUID, command: Callable[[Complaint], bool]) -> Complaint:
        async def run() -> Complaint:
            complaint = await self.complaint(complaint_id)
            if command(complaint):
                await self.aggregates.save(complaint)
            return complaint

        return await retry_on_conflict(run)

    async def _timer_command(self, complaint_id: UUID, command: Callable[[Complaint], bool]) -> bool:
        async def run() -> bool:
            complaint = await self.complaint(complaint_id)
            if not command(complaint):
                return False
            await self.aggregates.save(complaint)
            return True

        return await retry_on_conflict(run)

    async def _next_number(self, day: date) -> str:
        counter = f"TS{self.region}"
        return f"{counter}{day:%Y%m%d}{await next_in_day(self.pool, counter, day):05d}"
