"""From a case's domain event to its integration event: the one place that knows both shapes.

`publish` is pure, so the same stored event always gives the same bytes: a rebuild
publishes identical rows, and a subscriber entitled to personal data gets the same
event with the values in the clear (`reveal=True`) instead of masked. Free text
(reasons, opinions) is scrubbed of ID and mobile numbers unless revealed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.case import Case
from domain.case.values import Agent, Applicant, Person, Role
from domain.personal import mask, plain, scrub
from projections.integration_events import (
    SCHEMA_VERSION,
    AcceptanceOut,
    ActorRef,
    AgentOut,
    AssignmentOut,
    CaseAcceptanceRefused,
    CaseAccepted,
    CaseApprovalRevoked,
    CaseConcluded,
    CaseExtensionApproved,
    CaseExtensionRefused,
    CaseExtensionRequested,
    CaseHandedOff,
    CaseHandoffAccepted,
    CaseHandoffRefused,
    CaseLicenceIssued,
    CaseMailed,
    CaseMaterialsRequested,
    CaseMaterialsSupplemented,
    CasePaperArchived,
    CasePaperPosted,
    CasePartnerDecided,
    CasePartnerProgressed,
    CasePartnerRequestedMaterials,
    CasePickedUp,
    CasePreReviewPassed,
    CaseReadyForPickup,
    CaseReceivedFromPartner,
    CaseRef,
    CaseResumed,
    CaseRouted,
    CaseSubmitted,
    CaseSupervisionRaised,
    CaseSuspended,
    CaseTripRecorded,
    ChildOut,
    IntegrationEvent,
    IssueOut,
    PartyOut,
    TaskApproved,
    TaskClaimed,
    TaskRejected,
    TaskReturned,
    TaskStepApproved,
)

_EVENT_IDS = uuid5(NAMESPACE_URL, "https://citypass.example/integration-events")


def event_id(originator_id: UUID, version: int) -> UUID:
    """Stable across rebuilds and deliveries: the receiver's dedupe key."""
    return uuid5(_EVENT_IDS, f"{originator_id}/{version}")


class _View:
    """Masks personal values and scrubs free text, unless revealing."""

    def __init__(self, reveal: bool) -> None:
        self.reveal = reveal

    def value(self, value: Any) -> str:
        return plain(value) if self.reveal else mask(value)

    def text(self, text: str) -> str:
        return text if self.reveal else scrub(text)

    def applicant(self, a: Applicant) -> PartyOut:
        name = self.value(a.name) if isinstance(a, Person) else a.name
        return PartyOut(
            kind=a.kind.value, name=name, id_type=a.id_type.value, id_number=self.value(a.identity),
            phone=self.value(a.phone), address=self.value(a.address),
        )  # fmt: skip

    def agent(self, a: Agent | None) -> AgentOut | None:
        if a is None:
            return None
        return AgentOut(
            name=self.value(a.name), id_type=a.id_type.value, id_number=self.value(a.identity),
            phone=self.value(a.phone),
        )  # fmt: skip

    def issues(self, issues: Any) -> list[IssueOut]:
        return [IssueOut(material_id=i.material_id, reason=self.text(i.reason)) for i in issues]


def _accepted(e: Any, v: _View) -> dict[str, Any]:
    a = e.acceptance
    out = AcceptanceOut(
        mode=a.mode.value, accepted_on=a.accepted_on, accepted_at=a.accepted_at, deemed=a.deemed,
        supplement_due=a.supplement_due, rule_id=a.rule_id,
    )  # fmt: skip
    return {"acceptance": out, "missing": list(getattr(e, "missing", ()))}


def _task(e: Any) -> dict[str, Any]:
    return {"department": e.department, "step": e.step.value}


# Each case event class: its integration type, and the fields its data adds.
_Data = Callable[[Any, _View], dict[str, Any]]
_MAPPINGS: Mapping[type[Any], tuple[type[Any], _Data]] = {
    Case.Submitted: (CaseSubmitted, lambda e, v: {
        "applicant": v.applicant(e.applicant), "agent": v.agent(e.agent),
        "catalogue_version": e.catalogue_version,
        "children": [ChildOut(item_code=c.item_code, department=c.department) for c in e.children],
        "materials": sorted(e.materials),
    }),
    Case.PreReviewPassed: (CasePreReviewPassed, lambda e, v: {}),
    Case.MaterialsRequested: (CaseMaterialsRequested, lambda e, v: {"issues": v.issues(e.issues)}),
    Case.AcceptanceRefused: (CaseAcceptanceRefused, lambda e, v: {
        "reason": v.text(e.reason), "path_forward": v.text(e.path_forward),
    }),
    Case.MaterialsSupplemented: (CaseMaterialsSupplemented, lambda e, v: {
        "materials": sorted(e.materials), "attempt": e.attempt, "outstanding": list(e.outstanding),
    }),
    Case.Accepted: (CaseAccepted, _accepted),
    Case.AcceptedWithMissingMaterials: (CaseAccepted, _accepted),
    Case.AcceptedOnCommitment: (CaseAccepted, _accepted),
    Case.InstantlyApproved: (CaseAccepted, _accepted),
    Case.Routed: (CaseRouted, lambda e, v: {"assignments": [
        AssignmentOut(department=a.department, item_codes=list(a.item_codes)) for a in e.assignments
    ]}),
    Case.TaskClaimed: (TaskClaimed, lambda e, v: _task(e)),
    Case.TaskStepApproved: (TaskStepApproved, lambda e, v: {**_task(e), "opinion": v.text(e.opinion)}),
    Case.TaskApproved: (TaskApproved, lambda e, v: {**_task(e), "opinion": v.text(e.opinion)}),
    Case.TaskRejected: (TaskRejected, lambda e, v: {**_task(e), "reason": v.text(e.reason)}),
    Case.TaskReturned: (TaskReturned, lambda e, v: {
        **_task(e), "to": e.to.value, "reason": v.text(e.reason),
    }),
    Case.Suspended: (CaseSuspended, lambda e, v: {
        "kind": e.kind.value, "reason": v.text(e.reason), "expected_end": e.expected_end,
        "issues": v.issues(e.issues),
    }),
    Case.Resumed: (CaseResumed, lambda e, v: {}),
    Case.ExtensionRequested: (CaseExtensionRequested, lambda e, v: {
        "kind": e.kind.value, "reason": v.text(e.reason),
    }),
    Case.ExtensionApproved: (CaseExtensionApproved, lambda e, v: {"kind": e.kind.value}),
    Case.ExtensionRefused: (CaseExtensionRefused, lambda e, v: {"reason": v.text(e.reason)}),
    Case.Concluded: (CaseConcluded, lambda e, v: {
        "result": e.result.value, "reason": None if e.reason is None else v.text(e.reason),
        "forwarded_to": e.forwarded_to,
    }),
    Case.CommitmentApprovalRevoked: (CaseApprovalRevoked, lambda e, v: {"reason": v.text(e.reason)}),
    Case.ELicenceIssued: (CaseLicenceIssued, lambda e, v: {
        "licence_number": e.licence_number, "item_code": e.item_code,
    }),
    Case.ReadyForPickup: (CaseReadyForPickup, lambda e, v: {"hall": e.hall}),
    Case.PickedUp: (CasePickedUp, lambda e, v: {"hall": e.hall}),
    Case.Mailed: (CaseMailed, lambda e, v: {"waybill_number": e.waybill_number, "carrier": e.carrier}),
    Case.TripRecorded: (CaseTripRecorded, lambda e, v: {"purpose": e.purpose, "hall": e.hall}),
    Case.SupervisionRaised: (CaseSupervisionRaised, lambda e, v: {
        "light": e.light.value, "deadline": e.deadline,
    }),
    Case.HandedOff: (CaseHandedOff, lambda e, v: {
        "partner": e.partner, "mode": e.mode, "handoff": e.handoff,
    }),
    Case.HandoffAccepted: (CaseHandoffAccepted, lambda e, v: {"partner_number": e.partner_number}),
    Case.HandoffRefused: (CaseHandoffRefused, lambda e, v: {
        "reason": v.text(e.reason),
        "path_forward": None if e.path_forward is None else v.text(e.path_forward),
    }),
    Case.PartnerProgressed: (CasePartnerProgressed, lambda e, v: {"step": e.step, "label": v.text(e.label)}),
    Case.ReceivedFromPartner: (CaseReceivedFromPartner, lambda e, v: {
        "partner": e.partner, "origin_case_id": e.origin_case_id, "origin_number": e.origin_number,
        "mode": e.mode, "handoff": e.handoff,
    }),
    Case.PaperMaterialsPosted: (CasePaperPosted, lambda e, v: {
        "waybill_number": e.waybill_number, "carrier": e.carrier,
    }),
    Case.PaperMaterialsArchived: (CasePaperArchived, lambda e, v: {}),
    Case.PartnerRequestedMaterials: (CasePartnerRequestedMaterials, lambda e, v: {
        "issues": v.issues(e.issues),
    }),
    Case.PartnerDecided: (CasePartnerDecided, lambda e, v: {
        "result": e.result.value, "reason": None if e.reason is None else v.text(e.reason),
    }),
}  # fmt: skip

PUBLISHED_EVENTS = tuple(_MAPPINGS)


def integration_type(event: object) -> str | None:
    """The public type of a case event ("task.approved"), as publish tags it; None if unpublished."""
    mapped = _MAPPINGS.get(type(event))
    return None if mapped is None else str(mapped[0].__struct_config__.tag)


def task_department(event: object) -> str | None:
    """The department a task event belongs to: only that department sees it."""
    return getattr(event, "department", None) if isinstance(event, _TASK_EVENTS) else None


_TASK_EVENTS = (
    Case.TaskClaimed,
    Case.TaskStepApproved,
    Case.TaskApproved,
    Case.TaskRejected,
    Case.TaskReturned,
)


def publish(
    event: Any, *, position: int, case: CaseRef, recorded_at: datetime, reveal: bool
) -> IntegrationEvent:
    """The integration event of one stored case event."""
    kind, data = _MAPPINGS[type(event)]
    view = _View(reveal)
    actor = event.actor
    citizen = actor.role in (Role.CITIZEN, Role.AGENT)
    return kind(  # type: ignore[no-any-return]
        id=event_id(event.originator_id, event.originator_version),
        position=position,
        version=SCHEMA_VERSION,
        occurred_at=event.timestamp,
        recorded_at=recorded_at,
        case=case,
        actor=ActorRef(
            role=actor.role.value,
            id=None if citizen and not reveal else actor.id,
            name=None if citizen and not reveal else actor.name,
            department=actor.department,
            hall=actor.hall,
        ),
        channel=event.channel.value,
        **data(event, view),
    )
