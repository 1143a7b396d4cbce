"""What the applicant must do next, read from the case's state; the mini-program shows these as to-dos."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import msgspec

from domain.case.base import CaseBase
from domain.case.records import DeliveryMethod
from domain.case.status import CaseStatus
from domain.case.values import MaterialIssue


class NextAction(StrEnum):
    SUPPLEMENT_MATERIALS = "supplement_materials"
    FOLLOW_GUIDANCE = "follow_guidance"  # after 不予受理: the path forward given with the refusal
    COLLECT_RESULT = "collect_result"
    RATE = "rate"

    @property
    def label(self) -> str:
        return {
            "supplement_materials": "补正材料",
            "follow_guidance": "按指引办理",
            "collect_result": "领取证照",
            "rate": "评价",
        }[self.value]


class NextStep(msgspec.Struct, frozen=True, kw_only=True):
    action: NextAction
    materials: tuple[MaterialIssue, ...] = ()
    due: date | None = None
    detail: str | None = None


MINOR_OWED = "容缺受理后须补齐"


def next_steps(case: CaseBase) -> tuple[NextStep, ...]:
    steps: list[NextStep] = []
    owed = [MaterialIssue(material_id=m, reason=r) for m, r in sorted(case.requested.items())]
    owed += [
        MaterialIssue(material_id=m, reason=MINOR_OWED)
        for m in sorted(case.missing_minor - set(case.requested))
    ]
    if owed and case.conclusion is None and case.refusal is None:
        due = case.acceptance.supplement_due if case.acceptance is not None and case.missing_minor else None
        steps.append(NextStep(action=NextAction.SUPPLEMENT_MATERIALS, materials=tuple(owed), due=due))
    if case.refusal is not None:
        steps.append(NextStep(action=NextAction.FOLLOW_GUIDANCE, detail=case.refusal.path_forward))
    picked_up = any(d.method is DeliveryMethod.WINDOW_PICKUP for d in case.deliveries)
    if case.approved and case.pickup is not None and not picked_up:
        steps.append(
            NextStep(action=NextAction.COLLECT_RESULT, detail=f"{case.pickup.hall} 取件码 {case.pickup.code}")
        )
    # 好差评 is invited once the case has ended (but not when voided); whether the
    # applicant already rated is the ratings context's business, not the case's.
    ended = case.conclusion is not None or case.status is CaseStatus.NOT_ACCEPTED
    if ended and case.status is not CaseStatus.VOIDED:
        steps.append(NextStep(action=NextAction.RATE))
    return tuple(steps)
