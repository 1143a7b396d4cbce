"""Complaint routes: citizens file, confirm and withdraw; the desk routes; the department signs and answers.

Staff lists never name who complained anonymously (the queries decide). Whether an
officer belongs to the department that holds a complaint is the aggregate's rule,
so a refusal comes back as complaint-not-authorised.
"""

from __future__ import annotations

from typing import Literal, Protocol
from uuid import UUID

import msgspec
from litestar import Router, get, post
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import PermissionDeniedException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from domain.case import Actor, Channel
from domain.case import Role as DomainRole
from domain.complaint import (
    Complaint,
    ComplaintCategory,
    ComplaintStateError,
    InvalidComplaintError,
    NotAuthorisedError,
)
from domain.personal import PersonalDataError, Phone
from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.complaint_schemas import (
    AnswerIn,
    ComplaintIn,
    ComplaintOut,
    ComplaintRowOut,
    ConfirmationIn,
    RoutingIn,
    WithdrawalIn,
    complaint_out,
)
from miniapp_api.principal import Principal, Role, domain_actor
from miniapp_api.problems import ProblemMap
from projections.complaint_reads import ComplaintQueries, ComplaintView

_PRIVATE = CacheControlHeader(private=True, no_store=True)
_CITIZENS = require_roles(Role.CITIZEN)
_DESK = require_roles(Role.CLERK, Role.MANAGER)
_OFFICERS = require_roles(Role.OFFICER)
_ROLES = {
    Role.CITIZEN: DomainRole.CITIZEN,
    Role.CLERK: DomainRole.CLERK,
    Role.MANAGER: DomainRole.MANAGER,
    Role.OFFICER: DomainRole.OFFICER,
}
_TAGS = ["请你来找茬"]


class ComplaintCommands(Protocol):
    """What the routes ask of the complaint service (backend.complaints.service is the adapter)."""

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
    ) -> Complaint: ...
    async def confirm(
        self, actor: Actor, complaint_id: UUID, satisfied: bool, comment: str | None = None
    ) -> Complaint: ...
    async def withdraw(self, actor: Actor, complaint_id: UUID, reason: str) -> Complaint: ...
    async def route(
        self,
        actor: Actor,
        complaint_id: UUID,
        department: str,
        *,
        reason: str | None = ...,
        channel: Channel = ...,
    ) -> Complaint: ...
    async def accept(self, actor: Actor, complaint_id: UUID, channel: Channel = ...) -> Complaint: ...
    async def answer(
        self, actor: Actor, complaint_id: UUID, reply: str, *, resolved: bool, channel: Channel = ...
    ) -> Complaint: ...


def _actor(principal: Principal) -> Actor:
    return domain_actor(principal, _ROLES, "complaints")


def _contact(text: str | None) -> Phone | None:
    if text is None:
        return None
    try:
        return Phone.parse(text)
    except PersonalDataError as exc:
        error = {"key": "contact", "message": str(exc), "source": "body"}
        raise ValidationException("invalid contact number", extra=[error]) from None


def _rows(views: list[ComplaintView]) -> list[ComplaintRowOut]:
    return [msgspec.convert(v, ComplaintRowOut, from_attributes=True) for v in views]


def complaint_router(service: ComplaintCommands, queries: ComplaintQueries) -> Router:
    @post("/complaints", guards=[_CITIZENS], status_code=201, tags=_TAGS, summary="File a complaint")
    async def submit(data: JSONBody[ComplaintIn], principal: CurrentPrincipal) -> ComplaintOut:
        complaint = await service.submit(
            _actor(principal),
            Channel.MINIAPP,
            category=data.category,
            title=data.title,
            description=data.description,
            hall=data.hall,
            department_hint=data.department_hint,
            item_code=data.item_code,
            contact=_contact(data.contact),
            anonymous_to_staff=data.anonymous_to_staff,
            client_request_id=data.client_request_id,
        )
        return complaint_out(complaint)

    @get("/complaints", guards=[_CITIZENS], cache_control=_PRIVATE, tags=_TAGS, summary="My complaints")
    async def mine(principal: CurrentPrincipal) -> list[ComplaintRowOut]:
        return _rows(await queries.mine(principal.subject))

    @post(
        "/complaints/{complaint:uuid}/confirmation",
        guards=[_CITIZENS],
        status_code=200,
        tags=_TAGS,
        summary="Satisfied with the answer? Dissatisfied reopens it once, then escalates",
    )
    async def confirm(
        complaint: FromPath[UUID], data: JSONBody[ConfirmationIn], principal: CurrentPrincipal
    ) -> ComplaintOut:
        done = await service.confirm(_actor(principal), complaint, data.satisfied, data.comment)
        return complaint_out(done)

    @post(
        "/complaints/{complaint:uuid}/withdrawal",
        guards=[_CITIZENS],
        status_code=200,
        tags=_TAGS,
        summary="Withdraw a complaint no answer waits on",
    )
    async def withdraw(
        complaint: FromPath[UUID], data: JSONBody[WithdrawalIn], principal: CurrentPrincipal
    ) -> ComplaintOut:
        return complaint_out(await service.withdraw(_actor(principal), complaint, data.reason))

    @get(
        "/staff/complaints/unrouted",
        guards=[_DESK],
        cache_control=_PRIVATE,
        tags=_TAGS,
        summary="Complaints waiting to be routed",
    )
    async def unrouted() -> list[ComplaintRowOut]:
        return _rows(await queries.unrouted())

    @post(
        "/staff/complaints/{complaint:uuid}/routing",
        guards=[_DESK],
        status_code=200,
        tags=_TAGS,
        summary="Route to a department (or move it, with a reason)",
    )
    async def route(
        complaint: FromPath[UUID], data: JSONBody[RoutingIn], principal: CurrentPrincipal
    ) -> ComplaintOut:
        done = await service.route(
            _actor(principal), complaint, data.department, reason=data.reason, channel=Channel.HALL_WINDOW
        )
        return complaint_out(done)

    @get(
        "/staff/complaints",
        guards=[_OFFICERS],
        cache_control=_PRIVATE,
        tags=_TAGS,
        summary="My department's complaints, red lights first",
    )
    async def department(
        principal: CurrentPrincipal, scope: Literal["open", "all"] = "open"
    ) -> list[ComplaintRowOut]:
        if principal.department is None:
            raise PermissionDeniedException("an officer without a department has no complaints")
        return _rows(await queries.department_queue(principal.department, open_only=scope == "open"))

    @post(
        "/staff/complaints/{complaint:uuid}/acceptance",
        guards=[_OFFICERS],
        status_code=200,
        tags=_TAGS,
        summary="签收",
    )
    async def accept(complaint: FromPath[UUID], principal: CurrentPrincipal) -> ComplaintOut:
        return complaint_out(await service.accept(_actor(principal), complaint))

    @post(
        "/staff/complaints/{complaint:uuid}/answer",
        guards=[_OFFICERS],
        status_code=200,
        tags=_TAGS,
        summary="答复 (signs for it first if not yet signed)",
    )
    async def answer(
        complaint: FromPath[UUID], data: JSONBody[AnswerIn], principal: CurrentPrincipal
    ) -> ComplaintOut:
        done = await service.answer(_actor(principal), complaint, data.reply, resolved=data.resolved)
        return complaint_out(done)

    handlers: list[HTTPRouteHandler] = [
        submit, mine, confirm, withdraw, unrouted, route, department, accept, answer,
    ]  # fmt: skip
    return Router(path="/api/v1", route_handlers=handlers)


def register_complaint_problems(problems: ProblemMap) -> ProblemMap:
    problems.register(ComplaintStateError, 409, "complaint-state", "Not possible in the complaint's state")
    problems.register(
        NotAuthorisedError, 403, "complaint-not-authorised", "Not this caller's complaint to act on"
    )
    problems.register(
        InvalidComplaintError, 422, "complaint-invalid", "The complaint command is not acceptable"
    )
    return problems
