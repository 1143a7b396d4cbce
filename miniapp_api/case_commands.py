"""Command routes of cases: the applicant's (submit, supplement, withdraw) and the staff's, one per use case.

Bodies are decoded and their personal values validated here; who may act on which
case, and everything else, is the service's and the case's to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, Protocol
from uuid import UUID

import msgspec
from litestar import post
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, HeaderParameter, JSONBody
from msgspec import Meta

from domain.case import (
    Agent,
    Applicant,
    ApplicantKind,
    CaseStatus,
    Channel,
    ExtensionKind,
    IdType,
    IllegalTransitionError,
    InvalidCommandError,
    MaterialIssue,
    MaterialsMissingError,
    NotAuthorisedActorError,
    NotEligibleError,
    ResultCode,
    ReturnTarget,
    SuspensionKind,
    UploadedFile,
)
from domain.case import Role as CaseRole
from domain.personal import (
    Address,
    CreditCode,
    DocumentKind,
    IdDocument,
    IdNumber,
    PersonalDataError,
    PersonName,
    Phone,
)
from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.principal import Principal, Role
from miniapp_api.problems import ProblemMap
from miniapp_api.schemas import ApiStruct

Text = Annotated[str, Meta(min_length=1, max_length=500)]
Code = Annotated[str, Meta(min_length=1, max_length=64)]
Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
RequestKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=64)]
_ROLES = {Role.CITIZEN: CaseRole.CITIZEN, Role.CLERK: CaseRole.CLERK, Role.OFFICER: CaseRole.OFFICER}
_ROLES |= {Role.PARTNER: CaseRole.PARTNER}


@dataclass(frozen=True, slots=True)
class CommandCaller:
    """The principal in the case's roles; the service reads its identity and scopes from this."""

    subject: str
    role: CaseRole
    name: str | None = None
    department: str | None = None
    hall: str | None = None
    channel: Channel | None = None


class Outcome(Protocol):
    @property
    def case_id(self) -> UUID: ...
    @property
    def number(self) -> str: ...
    @property
    def status(self) -> CaseStatus: ...
    @property
    def version(self) -> int: ...


class AcceptanceResult(Outcome, Protocol):
    @property
    def receipt_number(self) -> str: ...
    @property
    def query_password(self) -> str | None: ...


class CaseCommandService(Protocol):
    """backend.cases.service.CaseService is the real one."""

    async def submit(
        self,
        caller: CommandCaller,
        *,
        item_code: str,
        client_request_id: str,
        applicant: Applicant,
        agent: Agent | None = None,
        form: Any = None,
        materials: Any = None,
    ) -> Outcome: ...
    async def supplement_materials(
        self, caller: CommandCaller, case_id: UUID, *, materials: Any, request_id: str | None = None
    ) -> Outcome: ...
    async def withdraw(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def pass_pre_review(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> Outcome: ...
    async def request_materials(
        self, caller: CommandCaller, case_id: UUID, *, issues: Any, request_id: str | None = None
    ) -> Outcome: ...
    async def refuse_acceptance(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        reason: str,
        path_forward: str,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def accept(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> AcceptanceResult: ...
    async def accept_with_missing_materials(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        missing: Any,
        commitment_sha256: str,
        supplement_due: date | None = None,
        request_id: str | None = None,
    ) -> AcceptanceResult: ...
    async def accept_on_commitment(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        commitment_sha256: str,
        replaced_proofs: Any,
        request_id: str | None = None,
    ) -> AcceptanceResult: ...
    async def route(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> Outcome: ...
    async def claim_task(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        department: FromPath[str],
        request_id: str | None = None,
    ) -> Outcome: ...
    async def approve_task_step(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        department: FromPath[str],
        opinion: str = "",
        request_id: str | None = None,
    ) -> Outcome: ...
    async def reject_task(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        department: FromPath[str],
        reason: str,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def return_task(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        department: FromPath[str],
        to: ReturnTarget,
        reason: str,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def suspend(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        kind: SuspensionKind,
        reason: str,
        expected_end: date,
        issues: Any = (),
        request_id: str | None = None,
    ) -> Outcome: ...
    async def resume(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> Outcome: ...
    async def request_extension(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        kind: ExtensionKind,
        reason: str,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def approve_extension(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> Outcome: ...
    async def refuse_extension(
        self, caller: CommandCaller, case_id: UUID, *, reason: str, request_id: str | None = None
    ) -> Outcome: ...
    async def conclude(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        result: ResultCode,
        reason: str | None = None,
        forwarded_to: str | None = None,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def issue_e_licence(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        licence_number: str,
        item_code: str | None = None,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def prepare_pickup(
        self, caller: CommandCaller, case_id: UUID, *, pickup_code: str, request_id: str | None = None
    ) -> Outcome: ...
    async def record_pickup(
        self, caller: CommandCaller, case_id: UUID, *, pickup_code: str, request_id: str | None = None
    ) -> Outcome: ...
    async def mail_result(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        waybill_number: str,
        carrier: str = "EMS",
        request_id: str | None = None,
    ) -> Outcome: ...
    async def record_trip(
        self, caller: CommandCaller, case_id: UUID, *, purpose: str, request_id: str | None = None
    ) -> Outcome: ...


# Wire shapes.


class ApplicantIn(ApiStruct):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    id_type: IdType
    id_number: Annotated[str, Meta(min_length=1, max_length=32)]
    phone: Annotated[str, Meta(min_length=1, max_length=32)]
    address: Annotated[str, Meta(min_length=1, max_length=300)]
    kind: ApplicantKind = ApplicantKind.PERSON


class AgentIn(ApiStruct):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    id_type: IdType
    id_number: Annotated[str, Meta(min_length=1, max_length=32)]
    phone: Annotated[str, Meta(min_length=1, max_length=32)]


class SubmitIn(ApiStruct):
    item_code: Code
    client_request_id: Annotated[str, Meta(min_length=1, max_length=64)]
    applicant: ApplicantIn
    agent: AgentIn | None = None
    form: dict[str, Any] = msgspec.field(default_factory=dict)
    materials: dict[Code, Sha256] = msgspec.field(default_factory=dict)


class SupplementIn(ApiStruct):
    materials: Annotated[dict[Code, Sha256], Meta(min_length=1)]


class ReasonIn(ApiStruct):
    reason: Text | None = None


class IssueIn(ApiStruct):
    material_id: Code
    reason: Text


class PreReviewIn(ApiStruct):
    decision: Literal["pass", "request_materials", "refuse"]
    issues: list[IssueIn] = msgspec.field(default_factory=list)
    reason: Text | None = None
    path_forward: Text | None = None


class AcceptanceIn(ApiStruct):
    mode: Literal["standard", "missing_materials", "commitment"] = "standard"
    missing: list[Code] = msgspec.field(default_factory=list)
    commitment_sha256: Sha256 | None = None
    supplement_due: date | None = None
    replaced_proofs: list[Code] = msgspec.field(default_factory=list)


class OpinionIn(ApiStruct):
    opinion: Annotated[str, Meta(max_length=500)] = ""


class ReturnIn(ApiStruct):
    to: ReturnTarget
    reason: Text


class SuspensionIn(ApiStruct):
    kind: SuspensionKind
    reason: Text
    expected_end: date
    issues: list[IssueIn] = msgspec.field(default_factory=list)


class ExtensionIn(ApiStruct):
    reason: Text
    kind: ExtensionKind = ExtensionKind.STANDARD


class ExtensionDecisionIn(ApiStruct):
    approve: bool
    reason: Text | None = None


class ConclusionIn(ApiStruct):
    result: Literal["approved", "denied", "voided", "forwarded"]  # the others have commands of their own
    reason: Text | None = None
    forwarded_to: Text | None = None


class DeliveryIn(ApiStruct):
    method: Literal["e_licence", "pickup_ready", "picked_up", "mail"]
    licence_number: Code | None = None
    item_code: Code | None = None
    pickup_code: Code | None = None
    waybill_number: Code | None = None
    carrier: Code = "EMS"


class TripIn(ApiStruct):
    purpose: Text


class CaseOut(ApiStruct):
    case_id: UUID
    number: str
    status: str
    version: int


class AcceptanceOut(CaseOut):
    receipt_number: str
    query_password: str | None  # the 查询密码, shown only in this response; null on a replay


# Personal values: checked with the domain's own types, each failure named by its field.

_DOCUMENTS = {
    IdType.PASSPORT: DocumentKind.PASSPORT,
    IdType.HK_MACAO_PERMIT: DocumentKind.HK_MACAO_PERMIT,
    IdType.TAIWAN_PERMIT: DocumentKind.TAIWAN_PERMIT,
}


class _Fields:
    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def check(self, field: str, parse: Any, value: Any) -> str:
        try:
            return str(parse(value))
        except PersonalDataError as exc:
            self.errors.append({"key": field, "message": str(exc), "source": "body"})
            return ""

    def raise_any(self) -> None:
        if self.errors:
            names = ", ".join(e["key"] for e in self.errors)
            raise ValidationException(f"invalid personal data: {names}", extra=self.errors)


def _id_number(id_type: IdType, text: str) -> str:
    if id_type is IdType.RESIDENT_ID:
        return IdNumber.parse(text).number
    if id_type is IdType.USCC:
        return CreditCode.parse(text).code
    if (kind := _DOCUMENTS.get(id_type)) is not None:
        return IdDocument.parse(kind, text).number
    return "".join(text.split()).upper()  # 外国人永久居留身份证: no public check digit scheme here


def _person(text: str) -> str:
    return PersonName(text.strip()).name


def _applicant(body: ApplicantIn, fields: _Fields) -> Applicant:
    person = body.kind is ApplicantKind.PERSON
    return Applicant(
        kind=body.kind,
        name=fields.check("applicant.name", _person, body.name) if person else body.name.strip(),
        id_type=body.id_type,
        id_number=fields.check("applicant.idNumber", lambda t: _id_number(body.id_type, t), body.id_number),
        phone=fields.check("applicant.phone", lambda t: Phone.parse(t).number, body.phone),
        address=fields.check("applicant.address", lambda t: Address.parse(t).text, body.address),
    )


def _agent(body: AgentIn, fields: _Fields) -> Agent:
    return Agent(
        name=fields.check("agent.name", _person, body.name),
        id_type=body.id_type,
        id_number=fields.check("agent.idNumber", lambda t: _id_number(body.id_type, t), body.id_number),
        phone=fields.check("agent.phone", lambda t: Phone.parse(t).number, body.phone),
    )


def caller_of(principal: Principal) -> CommandCaller:
    """Auditors and admins hold no case role: the routes' guards keep them out before this."""
    return CommandCaller(
        subject=principal.subject,
        role=_ROLES[principal.role],
        name=principal.name,
        department=principal.department,
        hall=principal.hall,
    )


def _out(result: Outcome) -> CaseOut:
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


_APPLICANTS = require_roles(Role.CITIZEN, Role.CLERK, Role.PARTNER)
_STAFF = require_roles(Role.CLERK, Role.OFFICER)
_OFFICERS = require_roles(Role.OFFICER)
_STAFF_PATH = "/staff/cases/{case:uuid}"
_TAGS = ["case commands"]


def case_command_handlers(service: CaseCommandService) -> list[HTTPRouteHandler]:
    """The command routes, relative to /api/v1.

    Some share a path with a query route (GET and POST /cases), and litestar 2 refuses
    one path in two Routers, so the composition root mounts both lists in one Router.
    """

    @post("/cases", guards=[_APPLICANTS], tags=_TAGS, summary="Submit an application (申请)")
    async def submit(data: JSONBody[SubmitIn], principal: CurrentPrincipal) -> CaseOut:
        fields = _Fields()
        applicant = _applicant(data.applicant, fields)
        agent = _agent(data.agent, fields) if data.agent is not None else None
        fields.raise_any()
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
        return _out(result)

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
        return _out(
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
        return _out(await service.withdraw(caller_of(principal), case, reason=reason, request_id=key))

    @post(f"{_STAFF_PATH}/pre-review", guards=[_STAFF], status_code=200, tags=_TAGS, summary="预审")
    async def pre_review(
        case: FromPath[UUID], data: JSONBody[PreReviewIn], principal: CurrentPrincipal, key: RequestKey = None
    ) -> CaseOut:
        who = caller_of(principal)
        if data.decision == "pass":
            return _out(await service.pass_pre_review(who, case, request_id=key))
        if data.decision == "request_materials":
            return _out(
                await service.request_materials(who, case, issues=_issues(data.issues), request_id=key)
            )
        reason, path = _required(data.reason, "reason"), _required(data.path_forward, "pathForward")
        return _out(
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
        return _out(await service.route(caller_of(principal), case, request_id=key))

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
        return _out(
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
        return _out(
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
        return _out(
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
        return _out(
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
        return _out(
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
        return _out(await service.resume(caller_of(principal), case, request_id=key))

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
        return _out(
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
            return _out(await service.approve_extension(who, case, request_id=key))
        reason = _required(data.reason, "reason")
        return _out(await service.refuse_extension(who, case, reason=reason, request_id=key))

    @post(f"{_STAFF_PATH}/conclusion", guards=[_STAFF], status_code=200, tags=_TAGS, summary="办结")
    async def conclusion(
        case: FromPath[UUID],
        data: JSONBody[ConclusionIn],
        principal: CurrentPrincipal,
        key: RequestKey = None,
    ) -> CaseOut:
        return _out(
            await service.conclude(
                caller_of(principal),
                case,
                result=ResultCode(data.result),
                reason=data.reason,
                forwarded_to=data.forwarded_to,
                request_id=key,
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
        return _out(result)

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
        return _out(
            await service.record_trip(caller_of(principal), case, purpose=data.purpose, request_id=key)
        )

    handlers = [
        submit,
        supplement,
        withdraw,
        pre_review,
        acceptance,
        routing,
        claim,
        approve,
        reject,
        give_back,
    ]
    handlers += [suspension, resumption, extension, extension_decision, conclusion, delivery, trips]
    return handlers


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
