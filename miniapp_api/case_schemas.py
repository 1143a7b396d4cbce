"""Wire shapes of the case command routes: request bodies in, the case's new state out (camelCase)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar.params import HeaderParameter
from msgspec import Meta

from domain.case import ApplicantKind, ExtensionKind, IdType, ReturnTarget, SuspensionKind
from miniapp_api.schemas import ApiStruct

Text = Annotated[str, Meta(min_length=1, max_length=500)]
Code = Annotated[str, Meta(min_length=1, max_length=64)]
Sha256 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
RequestKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=64)]


# Personal fields arrive as text; miniapp_api.case_parties checks them into domain.personal values.


class ApplicantIn(ApiStruct):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    id_type: IdType  # uscc for an enterprise, an identity document for a person
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
