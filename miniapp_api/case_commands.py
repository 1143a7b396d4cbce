"""Command routes of cases: the applicant's here (submit, supplement, withdraw), the staff's beside them.

Bodies are decoded and their personal values checked into domain types
(miniapp_api.case_parties); who may act on which case, and everything else, is the
service's and the case's to decide. The wire shapes live in miniapp_api.case_schemas,
the service port in miniapp_api.case_port, the staff routes in staff_case_commands.
"""

from __future__ import annotations

from uuid import UUID

from litestar import post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from domain.case import (
    IllegalTransitionError,
    InvalidCommandError,
    MaterialsMissingError,
    NotAuthorisedActorError,
    NotEligibleError,
    UploadedFile,
)
from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.case_parties import parse_parties
from miniapp_api.case_port import AcceptanceResult, CaseCommandService, CommandCaller, Outcome, caller_of
from miniapp_api.case_schemas import CaseOut, ReasonIn, RequestKey, SubmitIn, SupplementIn
from miniapp_api.handoff_commands import handoff_command_handlers
from miniapp_api.principal import Role
from miniapp_api.problems import ProblemMap
from miniapp_api.staff_case_commands import case_out, staff_command_handlers

_APPLICANTS = require_roles(Role.CITIZEN, Role.CLERK, Role.PARTNER)
_TAGS = ["case commands"]


def case_command_handlers(service: CaseCommandService) -> list[HTTPRouteHandler]:
    """The command routes, relative to /api/v1.

    Some share a path with a query route (GET and POST /cases), and litestar 2 refuses
    one path in two Routers, so the composition root mounts both lists in one Router.
    """

    @post("/cases", guards=[_APPLICANTS], tags=_TAGS, summary="Submit an application (申请)")
    async def submit(data: JSONBody[SubmitIn], principal: CurrentPrincipal) -> CaseOut:
        applicant, agent = parse_parties(data.applicant, data.agent)
        materials = {m: UploadedFile(sha) for m, sha in data.materials.items()}
        result = await service.submit(
            caller_of(principal),
            item_code=data.item_code,
            client_request_id=data.client_request_id,
            applicant=applicant,
            agent=agent,
            form=data.form,
            materials=materials,
        )
        return case_out(result)

    @post(
        "/cases/{case:uuid}/supplements",
        guards=[_APPLICANTS],
        status_code=200,
        tags=_TAGS,
        summary="Supplement (补正)",
    )
    async def supplement(
        case: FromPath[UUID],
        data: JSONBody[SupplementIn],
        principal: CurrentPrincipal,
        key: RequestKey = None,
    ) -> CaseOut:
        materials = {m: UploadedFile(sha) for m, sha in data.materials.items()}
        return case_out(
            await service.supplement_materials(
                caller_of(principal), case, materials=materials, request_id=key
            )
        )

    @post(
        "/cases/{case:uuid}/withdrawal",
        guards=[_APPLICANTS],
        status_code=200,
        tags=_TAGS,
        summary="Withdraw (撤回)",
    )
    async def withdraw(
        case: FromPath[UUID],
        principal: CurrentPrincipal,
        key: RequestKey = None,
        data: JSONBody[ReasonIn | None] = None,
    ) -> CaseOut:
        reason = data.reason if data is not None else None
        return case_out(await service.withdraw(caller_of(principal), case, reason=reason, request_id=key))

    staff = [*staff_command_handlers(service), *handoff_command_handlers(service)]
    return [submit, supplement, withdraw, *staff]


def register_case_problems(problems: ProblemMap) -> ProblemMap:
    """The case's refusals: stable types clients can switch on."""
    problems.register(
        IllegalTransitionError, 409, "case-transition", "Not possible in the case's current state"
    )
    problems.register(MaterialsMissingError, 422, "materials-missing", "Materials are missing")
    problems.register(NotAuthorisedActorError, 403, "not-authorised-actor", "Not allowed for this caller")
    problems.register(InvalidCommandError, 422, "invalid-command", "The command is incomplete or malformed")
    problems.register(NotEligibleError, 422, "not-eligible", "The applicant is not eligible for this route")
    return problems


# Re-exported: callers and tests import the port from here.
__all__ = [
    "AcceptanceResult",
    "CaseCommandService",
    "CommandCaller",
    "Outcome",
    "case_command_handlers",
    "register_case_problems",
]
