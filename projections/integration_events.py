"""Integration events: the stable, versioned JSON that departments receive, whatever the classes inside are.

A department's system reads these, not our domain events. Each type has a name
(`case.accepted`) and a schema version; a field is never removed or retyped within a
version. When one must change, the new shape ships as version 2 beside version 1.
Nothing here names a Python class, so the domain may be refactored freely.

The envelope is the same for every type; `data` is what the type adds. The union
`IntegrationEvent` is tagged by `type`, so the OpenAPI document lists each shape.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TypeAlias
from uuid import UUID

import msgspec

SCHEMA_VERSION = 1


class Wire(msgspec.Struct, rename="camel", kw_only=True, frozen=True):
    """camelCase on the wire, like the API's own schemas."""


class CaseRef(Wire, frozen=True):
    id: UUID
    number: str  # 办件编号
    item_code: str  # 事项编码 (the bundle's code for 一件事)


class ActorRef(Wire, frozen=True):
    role: str
    id: str | None  # None for a citizen unless the subscriber may see personal data
    name: str | None = None
    department: str | None = None
    hall: str | None = None


class Envelope(Wire, frozen=True, tag_field="type"):
    id: UUID  # the same for every delivery of this event: the receiver's dedupe key
    position: int  # the global position in the log: the cursor
    version: int  # the schema version of this type
    occurred_at: datetime
    recorded_at: datetime
    case: CaseRef
    actor: ActorRef
    channel: str


# The parts some types share.


class PartyOut(Wire, frozen=True):
    kind: str  # person | enterprise
    name: str
    id_type: str
    id_number: str
    phone: str
    address: str


class AgentOut(Wire, frozen=True):
    name: str
    id_type: str
    id_number: str
    phone: str


class ChildOut(Wire, frozen=True):
    item_code: str
    department: str


class IssueOut(Wire, frozen=True):
    material_id: str
    reason: str


class AcceptanceOut(Wire, frozen=True):
    mode: str  # standard | missing_materials | commitment | instant
    accepted_on: date  # the deadline clock starts here
    accepted_at: datetime
    deemed: bool
    supplement_due: date | None
    rule_id: str | None


class AssignmentOut(Wire, frozen=True):
    department: str
    item_codes: list[str]


# One class per type; the tag is the type's public name.


class CaseSubmitted(Envelope, frozen=True, tag="case.submitted"):
    """申请: the application, with the applicant and agent (masked unless granted)."""

    applicant: PartyOut
    agent: AgentOut | None
    catalogue_version: str
    children: list[ChildOut]
    materials: list[str]  # the material ids supplied


class CasePreReviewPassed(Envelope, frozen=True, tag="case.pre_review_passed"):
    """预审通过: the window found the application complete enough to decide on."""


class CaseMaterialsRequested(Envelope, frozen=True, tag="case.materials_requested"):
    """一次性告知: everything to correct or add, in one notice."""

    issues: list[IssueOut]  # 一次性告知


class CaseAcceptanceRefused(Envelope, frozen=True, tag="case.acceptance_refused"):
    """不予受理, with the path forward."""

    reason: str
    path_forward: str


class CaseMaterialsSupplemented(Envelope, frozen=True, tag="case.materials_supplemented"):
    """补正: the applicant supplied materials."""

    materials: list[str]
    attempt: int
    outstanding: list[str]


class CaseAccepted(Envelope, frozen=True, tag="case.accepted"):
    """受理, 容缺受理, 告知承诺 or 秒批 (acceptance.mode says which); the deadline clock starts."""

    acceptance: AcceptanceOut
    missing: list[str]  # 容缺: minor materials still owed


class CaseRouted(Envelope, frozen=True, tag="case.routed"):
    """按责转办: tasks for departments; a department's stream starts with the case here."""

    assignments: list[AssignmentOut]


class TaskEvent(Envelope, frozen=True):
    department: str
    step: str  # undertake | review | approve


class TaskClaimed(TaskEvent, frozen=True, tag="task.claimed"):
    """An officer took the task's current step (承办, 审核 or 批准)."""


class TaskStepApproved(TaskEvent, frozen=True, tag="task.step_approved"):
    """An officer signed a step other than the last."""

    opinion: str


class TaskApproved(TaskEvent, frozen=True, tag="task.approved"):
    """The department approved its task (批准 signed)."""

    opinion: str


class TaskRejected(TaskEvent, frozen=True, tag="task.rejected"):
    """The department rejected its task."""

    reason: str


class TaskReturned(TaskEvent, frozen=True, tag="task.returned"):
    """The task went back a step, or to the window."""

    to: str  # previous_step | window
    reason: str


class CaseSuspended(Envelope, frozen=True, tag="case.suspended"):
    """特别程序 or 待补正: the deadline clock stops."""

    kind: str
    reason: str
    expected_end: date
    issues: list[IssueOut]


class CaseResumed(Envelope, frozen=True, tag="case.resumed"):
    """The clock runs again."""


class CaseExtensionRequested(Envelope, frozen=True, tag="case.extension_requested"):
    """延期 was asked for."""

    kind: str
    reason: str


class CaseExtensionApproved(Envelope, frozen=True, tag="case.extension_approved"):
    """延期 was granted."""

    kind: str


class CaseExtensionRefused(Envelope, frozen=True, tag="case.extension_refused"):
    """延期 was refused."""

    reason: str


class CaseConcluded(Envelope, frozen=True, tag="case.concluded"):
    """办结: the decision (or a withdrawal, voiding or forwarding)."""

    result: str  # approved | rejected | withdrawn | voided | forwarded …
    reason: str | None
    forwarded_to: str | None


class CaseApprovalRevoked(Envelope, frozen=True, tag="case.approval_revoked"):
    """An approval on commitment (告知承诺) was revoked."""

    reason: str  # 告知承诺 found untrue


class CaseLicenceIssued(Envelope, frozen=True, tag="case.licence_issued"):
    """电子证照 issued."""

    licence_number: str  # 电子证照
    item_code: str | None


class CaseReadyForPickup(Envelope, frozen=True, tag="case.ready_for_pickup"):
    """The result waits at a hall (the pickup code is never published)."""

    hall: str  # the pickup code is the citizen's secret and never leaves the platform


class CasePickedUp(Envelope, frozen=True, tag="case.picked_up"):
    """The applicant collected the result."""

    hall: str


class CaseMailed(Envelope, frozen=True, tag="case.mailed"):
    """The result was mailed (邮寄送达)."""

    waybill_number: str
    carrier: str


class CaseTripRecorded(Envelope, frozen=True, tag="case.trip_recorded"):
    """跑动: the applicant had to come to a hall."""

    purpose: str  # 跑动: a visit the citizen had to make
    hall: str


class CaseSupervisionRaised(Envelope, frozen=True, tag="case.supervision_raised"):
    """电子监察: a yellow or red light on the deadline."""

    light: str  # yellow | red
    deadline: date


class CaseHandedOff(Envelope, frozen=True, tag="case.handed_off"):
    """跨城通办: the window handed the case to the handling city (办理地), which decides it."""

    partner: str  # the handling city's region code
    mode: str  # full_online | remote_collect | multi_city
    handoff: UUID  # the same id in both cities


class CaseHandoffAccepted(Envelope, frozen=True, tag="case.handoff_accepted"):
    """The handling city took the case on, under its own number."""

    partner_number: str


class CaseHandoffRefused(Envelope, frozen=True, tag="case.handoff_refused"):
    """The handling city refused the case; it is back with the window."""

    reason: str
    path_forward: str | None = None  # its window's 不予受理: where the applicant can go instead (added in v1)


class CasePartnerProgressed(Envelope, frozen=True, tag="case.partner_progressed"):
    """A step the handling city took, in its words."""

    step: str
    label: str


class CasePartnerDecided(Envelope, frozen=True, tag="case.partner_decided"):
    """多地联办: one city decided its part; the case concludes once every city has."""

    result: str  # approved | denied
    reason: str | None


class CasePartnerRequestedMaterials(Envelope, frozen=True, tag="case.partner_requested_materials"):
    """The handling city's 一次性告知: the applicant supplies the materials here."""

    issues: list[IssueOut]


class CasePaperPosted(Envelope, frozen=True, tag="case.paper_posted"):
    """异地代收代办: the paper originals posted from the receiving city to the handling city's archive."""

    waybill_number: str
    carrier: str


class CasePaperArchived(Envelope, frozen=True, tag="case.paper_archived"):
    """The paper originals arrived at the handling city and are archived."""


class CaseReceivedFromPartner(Envelope, frozen=True, tag="case.received_from_partner"):
    """办理地: the case came from a partner city's window; its steps are reported back there."""

    partner: str
    origin_case_id: UUID
    origin_number: str
    mode: str
    handoff: UUID


IntegrationEvent: TypeAlias = (
    CaseSubmitted
    | CasePreReviewPassed
    | CaseMaterialsRequested
    | CaseAcceptanceRefused
    | CaseMaterialsSupplemented
    | CaseAccepted
    | CaseRouted
    | TaskClaimed
    | TaskStepApproved
    | TaskApproved
    | TaskRejected
    | TaskReturned
    | CaseSuspended
    | CaseResumed
    | CaseExtensionRequested
    | CaseExtensionApproved
    | CaseExtensionRefused
    | CaseConcluded
    | CaseApprovalRevoked
    | CaseLicenceIssued
    | CaseReadyForPickup
    | CasePickedUp
    | CaseMailed
    | CaseTripRecorded
    | CaseSupervisionRaised
    | CaseHandedOff
    | CaseHandoffAccepted
    | CaseHandoffRefused
    | CasePartnerProgressed
    | CaseReceivedFromPartner
    | CasePaperPosted
    | CasePaperArchived
    | CasePartnerDecided
    | CasePartnerRequestedMaterials
)

ENCODER = msgspec.json.Encoder()
DECODER = msgspec.json.Decoder(IntegrationEvent)


def type_names() -> list[str]:
    """Every published type, as the OpenAPI document and the README list them."""
    names = []
    for cls in IntegrationEvent.__args__:
        names.append(cls.__struct_config__.tag)
    return names
