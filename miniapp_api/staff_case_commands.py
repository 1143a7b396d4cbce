"""Staff command routes of cases: 预审, 受理, 转办, task decisions, 特别程序, 延期, 办结, 送达 and trips.

Each decodes its body, passes the caller and an optional Idempotency-Key to the
service, and answers the case's new state; who may act on which case is the
service's and the case's to decide.
"""

from __future__ import annotations

from uuid import UUID

from litestar import post
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from domain.case import MaterialIssue, ResultCode
from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.case_port import CaseCommandService, Outcome, caller_of
from miniapp_api.case_schemas import (
    AcceptanceIn,
    AcceptanceOut,
    CaseOut,
    ConclusionIn,
    DeliveryIn,
    ExtensionDecisionIn,
    ExtensionIn,
    IssueIn,
    OpinionIn,
    PreReviewIn,
    ReasonIn,
    RequestKey,
    ReturnIn,
    SuspensionIn,
    TripIn,
)
from miniapp_api.principal import Role

_STAFF = require_roles(Role.CLERK, Role.OFFICER)
_OFFICERS = require_roles(Role.OFFICER)
_STAFF_PATH = "/staff/cases/{case:uuid}"
_TAGS = ["case commands"]


def case_out(result: Outcome) -> CaseOut:
    return CaseOut(
        case_id=result.case_id, number=result.number, status=str(result.status), version=result.version
    )


def _issues(listed: list[IssueIn]) -> tuple[MaterialIssue, ...]:
    return tuple(MaterialIssue(material_id=i.material_id, reason=i.reason) for i in listed)


def _required(value: str | None, field: str) -> str:
    if value is None:
        raise ValidationException(
            f"{field} is required", extra=[{"key": field, "message": "required", "source": "body"}]
        )
    return value


def staff_command_handlers(service: CaseCommandService) -> list[HTTPRouteHandler]:
    """The staff's command routes, relative to /api/v1."""

    @post(f"{_STAFF_PATH}/pre-review", guards=[_STAFF], status_code=200, tags=_TAGS, summary="预审")
    async def pre_review(
        case: FromPath[UUID], data: JSONBody[PreReviewIn], principal: CurrentPrincipal, key: RequestKey = None
    ) -> CaseOut:
        who = caller_of(principal)
        if data.decision == "pass":
            return case_out(await service.pass_pre_review(who, case, request_id=key))
        if data.decision == "request_materials":
            return case_out(
                await service.request_materials(who, case, issues=_issues(data.issues), request_id=key)
            )
        reason, path = _required(data.reason, "reason"), _required(data.path_forward, "pathForward")
        return case_out(
            await service.refuse_acceptance(who, case, reason=reason, path_forward=path, request_id=key)
        )

    @post(f"{_STAFF_PATH}/acceptance", guards=[_STAFF], status_code=200, tags=_TAGS, summary="受理")
    async def acceptance(
        case: FromPath[UUID],
        data: JSONBody[AcceptanceIn],
        principal: CurrentPrincipal,
        key: RequestKey = None,
    ) -> AcceptanceOut:
        who = caller_of(principal)
        if data.mode == "standard":
            result = await service.accept(who, case, request_id=key)
        elif data.mode == "missing_materials":
            result = await service.accept_with_missing_materials(
                who,
                case,
                missing=data.missing,
                commitment_sha256=_required(data.commitment_sha256, "commitmentSha256"),
                supplement_due=data.supplement_due,
                request_id=key,
            )
        else:
            result = await service.accept_on_commitment(
                who,
                case,
                commitment_sha256=_required(data.commitment_sha256, "commitmentSha256"),
                replaced_proofs=data.replaced_proofs,
                request_id=key,
            )
        return AcceptanceOut(
            case_id=result.case_id,
            number=result.number,
            status=str(result.status),
            version=result.version,
            receipt_number=result.receipt_number,
            query_password=result.query_password,
        )

    @post(f"{_STAFF_PATH}/routing", guards=[_STAFF], status_code=200, tags=_TAGS, summary="按责转办")
    async def routing(case: FromPath[UUID], principal: CurrentPrincipal, key: RequestKey = None) -> CaseOut:
        return case_out(await service.route(caller_of(principal), case, request_id=key))

    @post(
        f"{_STAFF_PATH}/tasks/{{department:str}}/claim",
        guards=[_OFFICERS],
        status_code=200,
        tags=_TAGS,
        summary="Claim",
    )
    async def claim(
        case: FromPath[UUID], department: FromPath[str], principal: CurrentPrincipal, key: RequestKey = None
    ) -> CaseOut:
        return case_out(
            await service.claim_task(caller_of(principal), case, department=department, request_id=key)
        )

    @post(
        f"{_STAFF_PATH}/tasks/{{department:str}}/approve",
        guards=[_OFFICERS],
        status_code=200,
        tags=_TAGS,
        summary="签批",
    )
    async def approve(
        case: FromPath[UUID],
        department: FromPath[str],
        principal: CurrentPrincipal,
        key: RequestKey = None,
        data: JSONBody[OpinionIn | None] = None,
    ) -> CaseOut:
        opinion = data.opinion if data is not None else ""
        return case_out(
            await service.approve_task_step(
                caller_of(principal), case, department=department, opinion=opinion, request_id=key
            )
        )

    @post(
        f"{_STAFF_PATH}/tasks/{{department:str}}/reject",
        guards=[_OFFICERS],
        status_code=200,
        tags=_TAGS,
        summary="Reject",
    )
    async def reject(
        case: FromPath[UUID],
        department: FromPath[str],
        data: JSONBody[ReasonIn],
        principal: CurrentPrincipal,
        key: RequestKey = None,
    ) -> CaseOut:
        reason = _required(data.reason, "reason")
        return case_out(
            await service.reject_task(
                caller_of(principal), case, department=department, reason=reason, request_id=key
            )
        )

    @post(
        f"{_STAFF_PATH}/tasks/{{department:str}}/return",
        guards=[_OFFICERS],
        status_code=200,
        tags=_TAGS,
        summary="退回",
    )
    async def give_back(
        case: FromPath[UUID],
        department: FromPath[str],
        data: JSONBody[ReturnIn],
        principal: CurrentPrincipal,
        key: RequestKey = None,
    ) -> CaseOut:
        return case_out(
            await service.return_task(
                caller_of(principal),
                case,
                department=department,
                to=data.to,
                reason=data.reason,
                request_id=key,
            )
        )

    @post(
        f"{_STAFF_PATH}/suspension", guards=[_STAFF], status_code=200, tags=_TAGS, summary="特别程序: suspend"
    )
    async def suspension(
        case: FromPath[UUID],
        data: JSONBody[SuspensionIn],
        principal: CurrentPrincipal,
        key: RequestKey = None,
    ) -> CaseOut:
        return case_out(
            await service.suspend(
                caller_of(principal),
                case,
                kind=data.kind,
                reason=data.reason,
                expected_end=data.expected_end,
                issues=_issues(data.issues),
                request_id=key,
            )
        )

    @post(
        f"{_STAFF_PATH}/resumption", guards=[_STAFF], status_code=200, tags=_TAGS, summary="特别程序: resume"
    )
    async def resumption(
        case: FromPath[UUID], principal: CurrentPrincipal, key: RequestKey = None
    ) -> CaseOut:
        return case_out(await service.resume(caller_of(principal), case, request_id=key))

    @post(
        f"{_STAFF_PATH}/extension",
        guards=[_OFFICERS],
        status_code=200,
        tags=_TAGS,
        summary="Request an extension",
    )
    async def extension(
        case: FromPath[UUID], data: JSONBody[ExtensionIn], principal: CurrentPrincipal, key: RequestKey = None
    ) -> CaseOut:
        return case_out(
            await service.request_extension(
                caller_of(principal), case, kind=data.kind, reason=data.reason, request_id=key
            )
        )

    @post(
        f"{_STAFF_PATH}/extension/approval",
        guards=[_OFFICERS],
        status_code=200,
        tags=_TAGS,
        summary="Decide an extension",
    )
    async def extension_decision(
        case: FromPath[UUID],
        data: JSONBody[ExtensionDecisionIn],
        principal: CurrentPrincipal,
        key: RequestKey = None,
    ) -> CaseOut:
        who = caller_of(principal)
        if data.approve:
            return case_out(await service.approve_extension(who, case, request_id=key))
        reason = _required(data.reason, "reason")
        return case_out(await service.refuse_extension(who, case, reason=reason, request_id=key))

    @post(f"{_STAFF_PATH}/conclusion", guards=[_STAFF], status_code=200, tags=_TAGS, summary="办结")
    async def conclusion(
        case: FromPath[UUID],
        data: JSONBody[ConclusionIn],
        principal: CurrentPrincipal,
        key: RequestKey = None,
    ) -> CaseOut:
        return case_out(
            await service.conclude(
                caller_of(principal),
                case,
                result=ResultCode(data.result),
                reason=data.reason,
                forwarded_to=data.forwarded_to,
                request_id=key,
            )
        )

    @post(
        f"{_STAFF_PATH}/commitment-revocation",
        guards=[_OFFICERS],
        status_code=200,
        tags=_TAGS,
        summary="告知承诺: revoke the approval after a check found the commitment untrue",
    )
    async def commitment_revocation(
        case: FromPath[UUID], data: JSONBody[ReasonIn], principal: CurrentPrincipal, key: RequestKey = None
    ) -> CaseOut:
        reason = _required(data.reason, "reason")
        return case_out(
            await service.revoke_commitment_approval(
                caller_of(principal), case, reason=reason, request_id=key
            )
        )

    @post(f"{_STAFF_PATH}/delivery", guards=[_STAFF], status_code=200, tags=_TAGS, summary="送达")
    async def delivery(
        case: FromPath[UUID], data: JSONBody[DeliveryIn], principal: CurrentPrincipal, key: RequestKey = None
    ) -> CaseOut:
        who = caller_of(principal)
        if data.method == "e_licence":
            number = _required(data.licence_number, "licenceNumber")
            result = await service.issue_e_licence(
                who, case, licence_number=number, item_code=data.item_code, request_id=key
            )
        elif data.method == "pickup_ready":
            code = _required(data.pickup_code, "pickupCode")
            result = await service.prepare_pickup(who, case, pickup_code=code, request_id=key)
        elif data.method == "picked_up":
            code = _required(data.pickup_code, "pickupCode")
            result = await service.record_pickup(who, case, pickup_code=code, request_id=key)
        else:
            waybill = _required(data.waybill_number, "waybillNumber")
            result = await service.mail_result(
                who, case, waybill_number=waybill, carrier=data.carrier, request_id=key
            )
        return case_out(result)

    @post(
        f"{_STAFF_PATH}/trips",
        guards=[require_roles(Role.CLERK)],
        status_code=200,
        tags=_TAGS,
        summary="Record a visit",
    )
    async def trips(
        case: FromPath[UUID], data: JSONBody[TripIn], principal: CurrentPrincipal, key: RequestKey = None
    ) -> CaseOut:
        return case_out(
            await service.record_trip(caller_of(principal), case, purpose=data.purpose, request_id=key)
        )

    return [
        pre_review,
        acceptance,
        routing,
        claim,
        approve,
        reject,
        give_back,
        suspension,
        resumption,
        extension,
        extension_decision,
        conclusion,
        commitment_revocation,
        delivery,
        trips,
    ]
