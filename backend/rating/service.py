"""The 好差评 commands over the event store: invitations, ratings with their 差评工单, and the ticket's steps.

A 差评 and its ticket are appended together, so a rating of 1 or 2 can never stand
without the ticket that must answer it; an upheld appeal and the rating's exclusion
are appended together too. Invitations come from the log (a concluded case, a served
hall visit) through timers, so each is made at least once, and its deterministic id
makes a second one a no-op.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from backend.store.aggregates import AggregateStore
from backend.store.retries import retry_on_conflict
from domain.calendar import WorkingCalendar
from domain.case import Actor, Case, Channel, Person, ResultCode
from domain.case.checks import beijing_time
from domain.hall_queue import HallQueue
from domain.personal import mask
from domain.rating import (
    CURRENT_SETS,
    Occasion,
    Rating,
    RectificationTicket,
    TicketState,
    online_rating_id,
    ticket_id,
    visit_rating_id,
)
from domain.rating import Channel as RatingChannel

# Results that are rated: a voided case or one forwarded (转报) elsewhere was not served here.
RATED_RESULTS = frozenset(ResultCode) - {ResultCode.VOIDED, ResultCode.FORWARDED}
# The unit that answers for what a hall's windows did when no case names a department,
# and for a 一件事 bundle, which the 政务服务中心 coordinates.
HALL_UNIT = "ZWFW"


def _display_name(case: Case) -> str:
    """A person's name masked (张*); an enterprise's name is public (公示) and shown whole."""
    applicant = case.applicant
    return mask(applicant.name) if isinstance(applicant, Person) else applicant.name


class RatingNotFoundError(LookupError):
    pass


class TicketNotFoundError(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class RatingRules:
    """DOMAIN.md's defaults; regions set their own."""

    window_days: int = 7  # natural days to rate after the occasion
    remind_after_days: int = 3
    rectification_working_days: int = 15


class RatingService:
    def __init__(
        self,
        aggregates: AggregateStore | Callable[[], AggregateStore],
        *,
        clock: Callable[[], datetime],
        calendar: Callable[[], WorkingCalendar],
        item_departments: Callable[[], Awaitable[Mapping[str, str]]],
        rules: RatingRules | None = None,
    ) -> None:
        self._aggregates, self.clock, self.calendar = aggregates, clock, calendar
        self.item_departments, self.rules = item_departments, rules or RatingRules()

    @property
    def aggregates(self) -> AggregateStore:
        a = self._aggregates
        return a if isinstance(a, AggregateStore) else a()

    # Invitations (from the log, through timers).

    async def invite_for_case(self, case_id: UUID) -> Rating | None:
        """一事一评 once a case concluded with a result that is rated; None when it is not rated."""
        rating_id = online_rating_id(case_id)

        async def run() -> Rating | None:
            if (made := await self.aggregates.find(rating_id)) is not None:
                return made  # type: ignore[no-any-return]
            case: Case = await self.aggregates.get(case_id)
            if case.conclusion is None or case.conclusion.result not in RATED_RESULTS:
                return None
            occasion = Occasion(
                channel=RatingChannel.ONLINE,
                department=await self._unit_of(case),
                item_code=case.item_code,
                case_id=case_id,
                case_number=case.number,
                hall=case.hall,
                applicant_name=_display_name(case),
            )
            concluded = beijing_time(case.conclusion.concluded_at)
            rating = Rating.invite(
                rating_id,
                occasion=occasion,
                applicant=case.submitted_by.id,
                indicator_set=CURRENT_SETS[RatingChannel.ONLINE],
                closes_on=concluded.date() + timedelta(days=self.rules.window_days),
                at=concluded,
            )
            await self.aggregates.save(rating)
            return rating

        return await retry_on_conflict(run)

    async def invite_for_visit(self, queue_id: UUID, ticket: str, window: str, clerk: str) -> Rating | None:
        """一次一评 for a served ticket that someone follows online; None for an anonymous kiosk ticket."""
        queue: HallQueue = await self.aggregates.get(queue_id)
        served = queue.ticket(ticket)
        subject, served_at = served.subject, served.served_at
        if subject is None or served_at is None:
            return None
        rating_id = visit_rating_id(queue.hall, queue.day.isoformat(), ticket)

        async def run() -> Rating | None:
            if (made := await self.aggregates.find(rating_id)) is not None:
                return made  # type: ignore[no-any-return]
            case: Case | None = None if served.case_id is None else await self.aggregates.find(served.case_id)
            occasion = Occasion(
                channel=RatingChannel.OFFLINE,
                department=await self._unit_of(case) if case is not None else HALL_UNIT,
                item_code=case.item_code if case is not None else served.queue,
                case_id=served.case_id,
                case_number=case.number if case is not None else None,
                hall=queue.hall,
                window=window,
                clerk=clerk,
                applicant_name=None if served.name is None else mask(served.name),
            )
            at = beijing_time(served_at)
            rating = Rating.invite(
                rating_id,
                occasion=occasion,
                applicant=subject,
                indicator_set=CURRENT_SETS[RatingChannel.OFFLINE],
                closes_on=at.date() + timedelta(days=self.rules.window_days),
                at=at,
            )
            await self.aggregates.save(rating)
            return rating

        return await retry_on_conflict(run)

    # The applicant's rating.

    async def rate(
        self,
        actor: Actor,
        channel: Channel,
        rating_id: UUID,
        level: int,
        *,
        indicators: Mapping[str, int] | None = None,
        comment: str | None = None,
    ) -> tuple[Rating, RectificationTicket | None]:
        """Rate; a 差评 opens its ticket, owned by the occasion's unit, in the same append."""

        async def run() -> tuple[Rating, RectificationTicket | None]:
            rating = await self.rating(rating_id)
            now = self.clock()
            if not rating.rate(
                level, actor=actor, channel=channel, at=now, indicators=indicators, comment=comment
            ):
                return rating, await self.aggregates.find(ticket_id(rating_id))
            answer = rating.answer
            assert answer is not None  # just rated
            if not answer.level.is_bad:
                await self.aggregates.save(rating)
                return rating, None
            due = self.calendar().add_working_days(
                beijing_time(now).date(), self.rules.rectification_working_days
            )
            ticket = RectificationTicket.open(
                ticket_id(rating_id),
                rating_id=rating_id,
                unit=rating.occasion.department,
                applicant=rating.applicant,
                level=int(answer.level),
                comment=answer.comment or "",
                case_id=rating.occasion.case_id,
                item_code=rating.occasion.item_code,
                due=due,
                at=now,
            )
            await self.aggregates.save(rating, ticket)
            return rating, ticket

        return await retry_on_conflict(run)

    async def disclose_applicant(self, actor: Actor, rating_id: UUID, reason: str) -> tuple[Rating, str]:
        """An auditor learns who rated; the read is appended before the answer is given."""

        async def run() -> tuple[Rating, str]:
            rating = await self.rating(rating_id)
            applicant = rating.disclose_applicant(actor=actor, reason=reason, at=self.clock())
            await self.aggregates.save(rating)
            return rating, applicant

        return await retry_on_conflict(run)

    # Timers.

    async def remind(self, rating_id: UUID) -> bool:
        return await self._on_rating(rating_id, lambda r: r.remind(at=self.clock()))

    async def default(self, rating_id: UUID) -> bool:
        return await self._on_rating(rating_id, lambda r: r.default(at=self.clock()))

    async def mark_overdue(self, ticket: UUID) -> bool:
        now = self.clock()
        return await self._on_ticket(ticket, lambda t: t.mark_overdue(on=beijing_time(now).date(), at=now))

    # The ticket's steps.

    async def record_callback(
        self, actor: Actor, ticket: UUID, *, method: str, reached: bool, note: str
    ) -> RectificationTicket:
        return await self._ticket_step(
            ticket,
            lambda t: t.record_callback(
                actor=actor, at=self.clock(), method=method, reached=reached, note=note
            ),
        )

    async def resolve(
        self, actor: Actor, ticket: UUID, outcome: TicketState, note: str
    ) -> RectificationTicket:
        return await self._ticket_step(
            ticket, lambda t: t.resolve(outcome, note, actor=actor, at=self.clock())
        )

    async def appeal(self, actor: Actor, ticket: UUID, reasons: str) -> RectificationTicket:
        return await self._ticket_step(ticket, lambda t: t.appeal(reasons, actor=actor, at=self.clock()))

    async def rate_callback(self, actor: Actor, ticket: UUID, satisfied: bool) -> RectificationTicket:
        return await self._ticket_step(
            ticket, lambda t: t.rate_callback(satisfied, actor=actor, at=self.clock())
        )

    async def decide_appeal(
        self, actor: Actor, ticket_ref: UUID, upheld: bool, reasons: str
    ) -> RectificationTicket:
        """An upheld appeal excludes the rating in the same append."""

        async def run() -> RectificationTicket:
            ticket = await self.ticket(ticket_ref)
            now = self.clock()
            ticket.decide_appeal(upheld, reasons, actor=actor, at=now)
            if not upheld:
                await self.aggregates.save(ticket)
                return ticket
            rating = await self.rating(ticket.rating_id)
            rating.exclude(reasons, decided_by=actor.id, at=now)
            await self.aggregates.save(ticket, rating)
            return ticket

        return await retry_on_conflict(run)

    # Loading.

    async def rating(self, rating_id: UUID) -> Rating:
        found = await self.aggregates.find(rating_id)
        if not isinstance(found, Rating):
            raise RatingNotFoundError(f"no rating occasion {rating_id}")
        return found

    async def ticket(self, ticket: UUID) -> RectificationTicket:
        found = await self.aggregates.find(ticket)
        if not isinstance(found, RectificationTicket):
            raise TicketNotFoundError(f"no rectification ticket {ticket}")
        return found

    async def _unit_of(self, case: Case) -> str:
        if case.children:
            return HALL_UNIT
        return (await self.item_departments()).get(case.item_code, HALL_UNIT)

    async def _on_rating(self, rating_id: UUID, command: Callable[[Rating], bool]) -> bool:
        async def run() -> bool:
            rating = await self.rating(rating_id)
            if not command(rating):
                return False
            await self.aggregates.save(rating)
            return True

        return await retry_on_conflict(run)

    async def _on_ticket(self, ticket: UUID, command: Callable[[RectificationTicket], bool]) -> bool:
        async def run() -> bool:
            found = await self.ticket(ticket)
            if not command(found):
                return False
            await self.aggregates.save(found)
            return True

        return await retry_on_conflict(run)

    async def _ticket_step(
        self, ticket: UUID, command: Callable[[RectificationTicket], object]
    ) -> RectificationTicket:
        async def run() -> RectificationTicket:
            found = await self.ticket(ticket)
            command(found)
            await self.aggregates.save(found)
            return found

        return await retry_on_conflict(run)
