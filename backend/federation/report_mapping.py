"""办理地 → 收件地: the message one event of a case received from a partner city becomes.

Pure: the same events give the same payloads, so a rebuild enqueues the same messages
(and the outbox drops them by their ids). The ReceivedFromPartner event is the taking
on (`handoff.accepted`, message 1); a decision the partner city can mirror (approved or
denied, or 秒批 by our rule) is `decision.reported`; 不予受理 by our window is
`handoff.refused`, with the path forward; its 一次性告知 is `materials.requested`; the
result mailed or issued is `result.delivered`, and the paper originals archived
`materials.archived`; every other step is `status.reported`, in the words of this
city's own timeline, its staff-only steps flagged so the other side can leave them out
of the applicant's view while still counting them in the sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from backend.federation.kinds import (
    KINDS,
    DecisionReported,
    HandoffAccepted,
    HandoffRefused,
    Issue,
    MaterialsArchived,
    Payload,
    ResultDelivered,
    StatusReported,
    SupplementRequested,
)
from domain.case import Case, ResultCode, Role
from projections.case_facts import INTERNAL_EVENTS, CaseFacts, fold, marked_departments, render_label
from projections.integration_mapping import integration_type

CONCLUDED_STEP = "case.concluded"
_KIND_OF = {cls: kind for kind, cls in KINDS.items()}


def seq_of(version: int, base_version: int) -> int:
    """ReceivedFromPartner (at base_version) is message 1; each later event of the case the next."""
    return version - base_version + 1


def report(event: Any, facts: CaseFacts, number: str) -> Payload:
    """The payload for one case event, from ReceivedFromPartner on; folds the event into `facts`.

    A status label still marks its departments ({部门:SCJGJ}): `rendered` names them.
    """
    label = fold(facts, event)
    match event:
        case Case.ReceivedFromPartner():
            return HandoffAccepted(case_number=number)
        case Case.Concluded(result=ResultCode.APPROVED, reason=reason):
            return DecisionReported(result="approved", reason=reason or None)
        case Case.InstantlyApproved():  # 秒批: accepted and approved in one step by our rule
            return DecisionReported(result="approved", reason=None)
        case Case.Concluded(result=ResultCode.DENIED, reason=reason):  # the same two as PARTNER_RESULTS
            return DecisionReported(result="denied", reason=reason)
        case Case.Concluded():
            step = CONCLUDED_STEP  # voided, forwarded, withdrawn …: the other side cannot decide so
        case Case.AcceptanceRefused(reason=reason, path_forward=path):  # 不予受理 by our window
            return HandoffRefused(reason=reason, path_forward=path)
        case Case.ELicenceIssued(licence_number=number):
            return ResultDelivered(method="e_licence", reference=number, delivered_at=event.timestamp)
        case Case.Mailed(waybill_number=waybill, carrier=carrier):
            return ResultDelivered(
                method="mail", reference=waybill, carrier=carrier, delivered_at=event.timestamp
            )
        case Case.PaperMaterialsArchived():
            return MaterialsArchived(archived_at=event.timestamp)
        case Case.MaterialsRequested(issues=issues):  # our window's 一次性告知: the applicant is there
            listed = [Issue(material_id=i.material_id, reason=i.reason) for i in issues]
            return SupplementRequested(issues=listed, occurred_at=event.timestamp)
        case _:
            step = integration_type(event) or f"case.{type(event).__name__}"
    # The receiving city posted the paper, or sent the supplement, itself: nothing new to tell it.
    theirs = isinstance(event, Case.MaterialsSupplemented) and event.actor.role is Role.PARTNER
    internal = theirs or isinstance(event, (*INTERNAL_EVENTS, Case.PaperMaterialsPosted))
    return StatusReported(step=step, label=label, occurred_at=event.timestamp, internal=internal)


def departments_in(payload: Payload) -> set[str]:
    return marked_departments(payload.label) if isinstance(payload, StatusReported) else set()


def rendered(payload: Payload, names: Mapping[str, str]) -> Payload:
    """The payload as the other city shows it: departments by their catalogue names."""
    if isinstance(payload, StatusReported):
        return msgspec.structs.replace(payload, label=render_label(payload.label, names))
    return payload


def kind_of(payload: Payload) -> str:
    return _KIND_OF[type(payload)]
