"""电子监察 routes: a case's full history, its state at a version or a time, chain verification, export.

Auditors only, and always with a stated reason (`reason`, 2 to 200 characters): each
answer reveals personal data unmasked, so the service records every access as an
event before it answers.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec
from litestar import Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from domain.audit import (
    REASON_MAX,
    REASON_MIN,
    InvalidScopeError,
    NotAnAuditorError,
    Period,
    ReasonRequiredError,
)
from domain.case import Actor
from domain.case import Role as DomainRole
from miniapp_api.audit_port import AuditReader
from miniapp_api.audit_schemas import CaseHistoryOut, CaseStateOut, VerificationOut
from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.principal import Principal, Role, domain_actor
from miniapp_api.problems import ProblemMap

_AUDITORS = require_roles(Role.AUDITOR)
_NO_STORE = CacheControlHeader(private=True, no_store=True)  # unmasked personal data: never cached
_TAGS = ["audit"]
Reason = Annotated[
    str,
    QueryParameter(
        min_length=REASON_MIN, max_length=REASON_MAX, description="why the auditor reads this; recorded"
    ),
]
CaseRef = Annotated[str, QueryParameter(min_length=1, max_length=64, description="办件编号 or case id")]


def _auditor(principal: Principal) -> Actor:
    return domain_actor(principal, {Role.AUDITOR: DomainRole.AUDITOR}, "电子监察")


def audit_router(service: AuditReader) -> Router:
    @get(
        "/audit/cases/{ref:str}/history",
        guards=[_AUDITORS],
        cache_control=_NO_STORE,
        tags=_TAGS,
        summary="A case's full ordered history, unmasked, with each event's chain hash",
    )
    async def history(ref: FromPath[str], reason: Reason, principal: CurrentPrincipal) -> CaseHistoryOut:
        found = await service.history(_auditor(principal), ref, reason=reason)
        return msgspec.convert(found, CaseHistoryOut, from_attributes=True)

    @get(
        "/audit/cases/{ref:str}/state",
        guards=[_AUDITORS],
        cache_control=_NO_STORE,
        tags=_TAGS,
        summary="A case as it stood at a version or a time (rebuilt from its events), or now",
    )
    async def state(
        ref: FromPath[str],
        reason: Reason,
        principal: CurrentPrincipal,
        version: Annotated[int | None, QueryParameter(ge=1, description="a version of the case")] = None,
        at: Annotated[
            datetime | None, QueryParameter(description="ISO 8601; without an offset, Beijing time")
        ] = None,
    ) -> CaseStateOut:
        if version is not None and at is not None:
            raise ValidationException("give a version or a time, not both")
        found = await service.state(_auditor(principal), ref, reason=reason, version=version, at=at)
        return msgspec.convert(found, CaseStateOut, from_attributes=True)

    @get(
        "/audit/cases/{ref:str}/verification",
        guards=[_AUDITORS],
        cache_control=_NO_STORE,
        tags=_TAGS,
        summary="Verify one case's hash chain; names the first altered event",
    )
    async def verify_case(ref: FromPath[str], reason: Reason, principal: CurrentPrincipal) -> VerificationOut:
        verdict = await service.verify_case(_auditor(principal), ref, reason=reason)
        return msgspec.convert(verdict, VerificationOut, from_attributes=True)

    @get(
        "/audit/verification",
        guards=[_AUDITORS],
        cache_control=_NO_STORE,
        tags=_TAGS,
        summary="Verify the whole store's hash chains and positions; names the first altered event",
    )
    async def verify_store(reason: Reason, principal: CurrentPrincipal) -> VerificationOut:
        verdict = await service.verify_store(_auditor(principal), reason=reason)
        return msgspec.convert(verdict, VerificationOut, from_attributes=True)

    @get(
        "/audit/export",
        guards=[_AUDITORS],
        cache_control=_NO_STORE,
        tags=_TAGS,
        summary="JSON Lines of one case, or of the cases submitted in a period, verifiable offline",
    )
    async def export(
        reason: Reason,
        principal: CurrentPrincipal,
        case: CaseRef | None = None,
        since: Annotated[date | None, QueryParameter(query="from", description="first day, Beijing")] = None,
        until: Annotated[date | None, QueryParameter(query="to", description="last day, included")] = None,
    ) -> Stream:
        if case is not None and (since is not None or until is not None):
            raise ValidationException("give case=, or from= and to=, not both")
        if case is None and (since is None or until is None):
            raise ValidationException(
                "give case= (a 办件编号 or case id), or from= and to= (days of submission)"
            )
        period = None if since is None or until is None else Period(since=since, until=until)
        found = await service.export(_auditor(principal), reason=reason, case=case, period=period)
        return Stream(
            found.lines(),
            media_type="application/x-ndjson",
            headers={"Content-Disposition": f'attachment; filename="{found.filename}"'},
        )

    handlers: list[HTTPRouteHandler] = [history, state, verify_case, verify_store, export]
    return Router(path="/api/v1", route_handlers=handlers)


def register_audit_problems(problems: ProblemMap) -> ProblemMap:
    problems.register(NotAnAuditorError, 403, "not-an-auditor", "Only an auditor may do this")
    problems.register(ReasonRequiredError, 400, "audit-reason-required", "State why, in 2 to 200 characters")
    problems.register(InvalidScopeError, 400, "audit-scope-invalid", "The access names the wrong scope")
    return problems
