"""好差评 routes: citizens rate and judge callbacks, units work 差评工单, the administration decides appeals.

Boards and the national metrics are public for departments, items and halls; the
window and clerk boards are internal. No route shows staff who gave a rating.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Literal, Protocol
from uuid import UUID

import msgspec
from litestar import Router, get, post
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from msgspec import Meta

from domain.case import Actor, Channel
from domain.case import Role as DomainRole
from domain.rating import (
    AlreadyRatedError,
    InvalidRatingError,
    NotTheApplicantError,
    NotTheOwnerError,
    Rating,
    RatingWindowClosedError,
    RectificationTicket,
    TicketState,
    TicketStateError,
)
from domain.rating.metrics import BoardRow
from miniapp_api.auth import EXCLUDE_FROM_AUTH, CurrentPrincipal, require_roles
from miniapp_api.principal import Principal, Role, domain_actor
from miniapp_api.problems import ProblemMap
from miniapp_api.schemas import ApiStruct
from projections.rating_reads import RatingQueries

_PUBLIC = {EXCLUDE_FROM_AUTH: True}
_PRIVATE = CacheControlHeader(private=True, no_store=True)
_CITIZENS = require_roles(Role.CITIZEN)
_OFFICERS = require_roles(Role.OFFICER)
_SUPERVISORS = require_roles(Role.SUPERVISOR)
_INTERNAL = require_roles(Role.OFFICER, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN)
_AUDITORS = require_roles(Role.AUDITOR)
_ROLES = {
    Role.CITIZEN: DomainRole.CITIZEN,
    Role.OFFICER: DomainRole.OFFICER,
    Role.SUPERVISOR: DomainRole.SUPERVISOR,
    Role.AUDITOR: DomainRole.AUDITOR,
}
Level = Annotated[int, Meta(ge=1, le=5)]
Text = Annotated[str, Meta(max_length=1000)]


class RatingCommands(Protocol):
    """What the routes ask of the rating service (backend.rating.service is the adapter)."""

    async def rate(
        self,
        actor: Actor,
        channel: Channel,
        rating_id: UUID,
        level: int,
        *,
        indicators: dict[str, int] | None = None,
        comment: str | None = None,
    ) -> tuple[Rating, RectificationTicket | None]: ...
    async def record_callback(
        self, actor: Actor, ticket: UUID, *, method: str, reached: bool, note: str
    ) -> RectificationTicket: ...
    async def resolve(
        self, actor: Actor, ticket: UUID, outcome: TicketState, note: str
    ) -> RectificationTicket: ...
    async def appeal(self, actor: Actor, ticket: UUID, reasons: str) -> RectificationTicket: ...
    async def decide_appeal(
        self, actor: Actor, ticket_ref: UUID, upheld: bool, reasons: str
    ) -> RectificationTicket: ...
    async def rate_callback(self, actor: Actor, ticket: UUID, satisfied: bool) -> RectificationTicket: ...
    async def disclose_applicant(self, actor: Actor, rating_id: UUID, reason: str) -> tuple[Rating, str]: ...


class RateIn(ApiStruct, forbid_unknown_fields=True):
    level: Level
    indicators: dict[str, Level] = msgspec.field(default_factory=dict)
    comment: Text | None = None


class RatedOut(ApiStruct):
    rating_id: UUID
    level: int
    ticket_id: UUID | None  # a 差评 opened one


class CallbackIn(ApiStruct, forbid_unknown_fields=True):
    method: Literal["phone", "visit", "online"]
    reached: bool
    note: Text = ""


class ResolveIn(ApiStruct, forbid_unknown_fields=True):
    outcome: Literal["rectified", "explained"]
    note: Text


class ReasonsIn(ApiStruct, forbid_unknown_fields=True):
    reasons: Text


class DecisionIn(ApiStruct, forbid_unknown_fields=True):
    upheld: bool
    reasons: Text


class SatisfiedIn(ApiStruct, forbid_unknown_fields=True):
    satisfied: bool


class MetricsOut(ApiStruct):
    """The national metrics over a period, with the counts behind each rate (None: nothing to count)."""

    ratings: int
    active_ratings: int
    satisfied_ratings: int
    bad_ratings: int
    active_rating_rate: float | None  # 主动评价率
    satisfaction_rate: float | None  # 满意率
    tickets: int
    tickets_resolved: int
    rectification_rate: float | None  # 差评整改率
    callbacks: int
    callback_rate: float | None  # 回访率
    callbacks_rated: int
    callbacks_satisfied: int
    callback_satisfaction: float | None  # 回访满意度
    overdue_tickets: int


class MonthOut(ApiStruct):
    month: str
    total: int
    satisfaction_rate: float


class BoardRowOut(ApiStruct):
    key: str
    levels: tuple[int, int, int, int, int]  # counts of levels 1 to 5
    total: int
    defaults: int
    satisfaction_rate: float
    active_rating_rate: float
    trend: list[MonthOut]


def _board(rows: list[BoardRow]) -> list[BoardRowOut]:
    return [msgspec.convert(r, BoardRowOut, from_attributes=True) for r in rows]


class OccasionOut(ApiStruct):
    rating_id: UUID
    channel: str  # online (一事一评) or offline (一次一评)
    item_code: str
    case_id: UUID | None
    case_number: str | None
    hall: str | None
    invited_at: datetime
    closes_on: date  # the last day to rate
    state: str  # to_rate, rated, defaulted (基本满意, by the system), closed
    level: int | None
    level_label: str | None


class MyTicketOut(ApiStruct):
    ticket_id: UUID
    rating_id: UUID
    case_number: str | None
    item_code: str
    level: int
    state: str
    state_label: str
    called_back: bool
    resolution: str | None
    callback_satisfied: bool | None  # the citizen's own 回访满意度, once given
    due: date
    opened_at: datetime


class UnitTicketOut(ApiStruct):
    ticket_id: UUID
    rating_id: UUID
    level: int
    comment: str  # ID and mobile numbers masked
    case_id: UUID | None
    item_code: str
    due: date
    working_days_left: int
    light: str
    state: str
    callbacks: int
    called_back: bool
    callback_satisfied: bool | None
    overdue: bool
    resolution: str | None
    opened_at: datetime


class DisclosedOut(ApiStruct):
    """Who rated an occasion: for auditors only, and this answer is itself recorded."""

    rating_id: UUID
    applicant: str
    level: int | None
    department: str
    case_number: str | None


class TicketOut(ApiStruct):
    ticket_id: UUID
    state: str
    state_label: str
    callbacks: int
    due: date


def _ticket_out(t: RectificationTicket) -> TicketOut:
    return TicketOut(
        ticket_id=t.id, state=t.state.value, state_label=t.state.label, callbacks=len(t.callbacks), due=t.due
    )


def _actor(principal: Principal) -> Actor:
    return domain_actor(principal, _ROLES, "好差评")


def _range(since: date | None, until: date | None, today: date) -> tuple[date, date]:
    """A year up to today when the caller names no period."""
    until = until or today
    return since or until - timedelta(days=365), until


def rating_router(service: RatingCommands, queries: RatingQueries) -> Router:
    @get(
        "/me/ratings",
        guards=[_CITIZENS],
        cache_control=_PRIVATE,
        tags=["好差评"],
        summary="My rating occasions",
    )
    async def mine(principal: CurrentPrincipal) -> list[OccasionOut]:
        return [
            msgspec.convert(o, OccasionOut, from_attributes=True)
            for o in await queries.mine(principal.subject)
        ]

    @get(
        "/me/rating-tickets",
        guards=[_CITIZENS],
        cache_control=_PRIVATE,
        tags=["好差评"],
        summary="The 差评工单 my ratings opened, and where each stands",
    )
    async def my_tickets(principal: CurrentPrincipal) -> list[MyTicketOut]:
        found = await queries.my_tickets(principal.subject)
        return [msgspec.convert(t, MyTicketOut, from_attributes=True) for t in found]

    @post(
        "/ratings/{rating:uuid}", guards=[_CITIZENS], status_code=200, tags=["好差评"], summary="Rate (评价)"
    )
    async def rate(rating: FromPath[UUID], data: JSONBody[RateIn], principal: CurrentPrincipal) -> RatedOut:
        done, ticket = await service.rate(
            _actor(principal),
            Channel.MINIAPP,
            rating,
            data.level,
            indicators=data.indicators,
            comment=data.comment,
        )
        answer = done.answer
        assert answer is not None
        return RatedOut(
            rating_id=done.id, level=int(answer.level), ticket_id=None if ticket is None else ticket.id
        )

    @post(
        "/rating-tickets/{ticket:uuid}/callback-rating",
        guards=[_CITIZENS],
        status_code=200,
        tags=["好差评"],
        summary="回访满意度: was the callback satisfying?",
    )
    async def judge_callback(
        ticket: FromPath[UUID], data: JSONBody[SatisfiedIn], principal: CurrentPrincipal
    ) -> TicketOut:
        return _ticket_out(await service.rate_callback(_actor(principal), ticket, data.satisfied))

    @get(
        "/staff/rating-tickets",
        guards=[_OFFICERS],
        cache_control=_PRIVATE,
        tags=["好差评"],
        summary="My unit's 差评工单",
    )
    async def unit_tickets(
        principal: CurrentPrincipal, scope: Literal["open", "all"] = "open"
    ) -> list[UnitTicketOut]:
        if principal.department is None:
            raise PermissionDeniedException("an officer without a department has no tickets")
        found = await queries.unit_tickets(principal.department, open_only=scope == "open")
        return [msgspec.convert(t, UnitTicketOut, from_attributes=True) for t in found]

    async def _unit_ticket(principal: Principal, ticket: UUID) -> None:
        if await queries.ticket_unit(ticket) not in (None, principal.department):
            raise PermissionDeniedException("this ticket belongs to another unit")

    @post(
        "/staff/rating-tickets/{ticket:uuid}/callbacks",
        guards=[_OFFICERS],
        status_code=200,
        tags=["好差评"],
        summary="Record a 回访",
    )
    async def callback(
        ticket: FromPath[UUID], data: JSONBody[CallbackIn], principal: CurrentPrincipal
    ) -> TicketOut:
        await _unit_ticket(principal, ticket)
        done = await service.record_callback(
            _actor(principal), ticket, method=data.method, reached=data.reached, note=data.note
        )
        return _ticket_out(done)

    @post(
        "/staff/rating-tickets/{ticket:uuid}/resolution",
        guards=[_OFFICERS],
        status_code=200,
        tags=["好差评"],
        summary="Rectified, or explained",
    )
    async def resolve(
        ticket: FromPath[UUID], data: JSONBody[ResolveIn], principal: CurrentPrincipal
    ) -> TicketOut:
        await _unit_ticket(principal, ticket)
        return _ticket_out(
            await service.resolve(_actor(principal), ticket, TicketState(data.outcome), data.note)
        )

    @post(
        "/staff/rating-tickets/{ticket:uuid}/appeal",
        guards=[_OFFICERS],
        status_code=200,
        tags=["好差评"],
        summary="申诉: the rating was malicious",
    )
    async def appeal(
        ticket: FromPath[UUID], data: JSONBody[ReasonsIn], principal: CurrentPrincipal
    ) -> TicketOut:
        await _unit_ticket(principal, ticket)
        return _ticket_out(await service.appeal(_actor(principal), ticket, data.reasons))

    @post(
        "/admin/rating-tickets/{ticket:uuid}/appeal-decision",
        guards=[_SUPERVISORS],
        status_code=200,
        tags=["好差评"],
        summary="Decide an appeal, with reasons",
    )
    async def decide(
        ticket: FromPath[UUID], data: JSONBody[DecisionIn], principal: CurrentPrincipal
    ) -> TicketOut:
        return _ticket_out(await service.decide_appeal(_actor(principal), ticket, data.upheld, data.reasons))

    @get(
        "/ratings/board",
        opt=_PUBLIC,
        security=[{}],
        tags=["好差评"],
        summary="Public board: department, item or hall",
    )
    async def public(
        by: Literal["department", "item", "hall"] = "department",
        since: date | None = None,
        until: date | None = None,
    ) -> list[BoardRowOut]:
        return _board(await queries.board(by, *_range(since, until, queries.today()), public=True))

    @get(
        "/ratings/metrics",
        opt=_PUBLIC,
        security=[{}],
        tags=["好差评"],
        summary="主动评价率, 满意率, 差评整改率, 回访率, 回访满意度",
    )
    async def metrics(since: date | None = None, until: date | None = None) -> MetricsOut:
        found = await queries.metrics(*_range(since, until, queries.today()))
        return msgspec.convert(found, MetricsOut, from_attributes=True)

    @get(
        "/staff/ratings/board",
        guards=[_INTERNAL],
        cache_control=_PRIVATE,
        tags=["好差评"],
        summary="Internal board, by window or clerk too",
    )
    async def internal(
        by: Literal["department", "item", "hall", "window", "clerk"] = "department",
        since: date | None = None,
        until: date | None = None,
    ) -> list[BoardRowOut]:
        return _board(await queries.board(by, *_range(since, until, queries.today()), public=False))

    @post(
        "/audit/ratings/{rating:uuid}/disclosure",
        guards=[_AUDITORS],
        status_code=200,
        tags=["好差评", "audit"],
        summary="Who rated (auditors only, with a reason; every disclosure is an event)",
    )
    async def disclose(
        rating: FromPath[UUID], data: JSONBody[ReasonsIn], principal: CurrentPrincipal
    ) -> DisclosedOut:
        found, applicant = await service.disclose_applicant(_actor(principal), rating, data.reasons)
        level = None if found.answer is None else int(found.answer.level)
        return DisclosedOut(
            rating_id=found.id,
            applicant=applicant,
            level=level,
            department=found.occasion.department,
            case_number=found.occasion.case_number,
        )

    handlers: list[HTTPRouteHandler] = [
        mine, my_tickets, rate, judge_callback, unit_tickets, callback, resolve, appeal, decide,
        public, metrics, internal, disclose,
    ]  # fmt: skip
    return Router(path="/api/v1", route_handlers=handlers)


def register_rating_problems(problems: ProblemMap) -> ProblemMap:
    problems.register(NotTheApplicantError, 403, "not-the-applicant", "Only the applicant rates")
    problems.register(AlreadyRatedError, 409, "already-rated", "This occasion is rated already")
    problems.register(RatingWindowClosedError, 409, "rating-window-closed", "The rating window has closed")
    problems.register(InvalidRatingError, 422, "rating-invalid", "The rating is not acceptable")
    problems.register(TicketStateError, 409, "rating-ticket-state", "Not possible in the ticket's state")
    problems.register(NotTheOwnerError, 403, "not-the-ticket-owner", "Not this caller's ticket to handle")
    return problems
