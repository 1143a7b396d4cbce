"""What the case read models remember of a case, folded event by event, and the timeline's words.

Both case consumers (progress and the departments' work queue) keep these facts as
jsonb and fold each event into them, so neither has to load the aggregate. The fold
is pure: the same events always give the same facts, which is what makes a rebuild
give identical rows.

A label names a department by a mark around its code ({部门:SCJGJ}), and the query
side puts the catalogue's name in its place (render_label). Names stay out of the
events and the rows: a department the catalogue renames reads right at once, and a
rebuild still gives identical rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import msgspec
from eventsourcing.utils import get_topic

from domain.case import (
    AcceptanceMode,
    Case,
    CaseStatus,
    MaterialIssue,
    NextAction,
    NextStep,
    ResultCode,
    Role,
    SuspensionKind,
)
from domain.case.checks import BEIJING
from domain.case.guidance import MINOR_OWED
from domain.case.status import BEFORE_ACCEPTANCE
from domain.case.values import DayUnit

# Every event class the aggregate records; the read models subscribe to all of them.
CASE_EVENTS: tuple[type[Any], ...] = tuple(
    cls
    for name, cls in vars(Case).items()
    if isinstance(cls, type) and issubclass(cls, Case.Event) and name not in ("Event", "Created")
)
CASE_TOPICS = frozenset(get_topic(cls) for cls in CASE_EVENTS)

SUSPENSION_LABELS = {
    SuspensionKind.HEARING: "听证",
    SuspensionKind.INSPECTION: "检验检测",
    SuspensionKind.APPRAISAL: "鉴定",
    SuspensionKind.EXPERT_REVIEW: "专家评审",
    SuspensionKind.SITE_SURVEY: "现场勘查",
    SuspensionKind.EXTENDED_REVIEW: "延长审批",
    SuspensionKind.AWAITING_SUPPLEMENT: "待补正",
}
_ACCEPTED_LABELS = {
    AcceptanceMode.STANDARD: "已受理",
    AcceptanceMode.MISSING_MATERIALS: "已受理（容缺受理）",
    AcceptanceMode.COMMITMENT: "已受理（告知承诺）",
    AcceptanceMode.INSTANT: "秒批通过",
}
_UNITS = {DayUnit.WORKING_DAY: "working", DayUnit.NATURAL_DAY: "natural"}
_DEPARTMENT_MARK = re.compile(r"\{部门:([^{}]+)\}")


def department_mark(code: str) -> str:
    """How a stored label names a department: by its code, for render_label to replace."""
    return f"{{部门:{code}}}"


def marked_departments(label: str) -> set[str]:
    return set(_DEPARTMENT_MARK.findall(label))


def render_label(label: str, names: Mapping[str, str]) -> str:
    """The label as people read it: each marked department by its name, or by its code if it has none."""
    return _DEPARTMENT_MARK.sub(lambda m: names.get(m[1], m[1]), label)


class CaseFacts(msgspec.Struct, kw_only=True):
    """Mutable on purpose: the fold updates one instance per case within a batch."""

    intake: CaseStatus = CaseStatus.SUBMITTED
    accepted_on: date | None = None
    supplement_due: date | None = None
    routed: bool = False
    result: ResultCode | None = None
    revoked: bool = False
    delivered: bool = False
    # Deadline facts: [start, end or None] per suspension, [amount, "working"|"natural"] per extension.
    suspensions: list[tuple[date, date | None]] = msgspec.field(default_factory=list)
    extensions: list[tuple[int, str]] = msgspec.field(default_factory=list)
    # What the applicant owes or may do (see domain.case.guidance): material id -> reason.
    requested: dict[str, str] = msgspec.field(default_factory=dict)
    missing_minor: list[str] = msgspec.field(default_factory=list)
    path_forward: str | None = None
    pickup: str | None = None  # "hall 取件码 code" while a result waits at a window
    departments: list[str] = msgspec.field(default_factory=list)
    open_parts: list[str] = msgspec.field(default_factory=list)  # 多地联办: the cities still deciding

    @property
    def suspended(self) -> bool:
        return bool(self.suspensions) and self.suspensions[-1][1] is None

    @property
    def status(self) -> CaseStatus:
        # The same derivation as CaseBase.status, over the remembered facts.
        if self.result is not None:
            if self.result is ResultCode.WITHDRAWN:
                return CaseStatus.WITHDRAWN
            if self.result is ResultCode.VOIDED:
                return CaseStatus.VOIDED
            if self.revoked:
                return CaseStatus.REVOKED
            approved = self.result is ResultCode.APPROVED  # as CaseBase.status: only an approval is delivered
            return CaseStatus.DELIVERED if self.delivered and approved else CaseStatus.CONCLUDED
        if self.accepted_on is None:
            # 全程网办: handed off before acceptance (routed there); the handling city accepts it.
            return CaseStatus.IN_HANDLING if self.routed and self.intake in BEFORE_ACCEPTANCE else self.intake
        if self.suspended:
            return CaseStatus.SUSPENDED
        return CaseStatus.IN_HANDLING if self.routed else CaseStatus.ACCEPTED

    @property
    def clock_running(self) -> bool:
        """Accepted and not concluded: the deadline matters and lights apply."""
        return self.accepted_on is not None and self.result is None


encode_facts = msgspec.json.Encoder().encode
_decode_facts = msgspec.json.Decoder(CaseFacts).decode


def decode_facts(raw: str | bytes | None) -> CaseFacts:
    return CaseFacts() if raw is None else _decode_facts(raw)


def fold(facts: CaseFacts, event: Any) -> str:
    """Apply one case event to the facts; return its timeline label in plain Chinese, departments marked."""
    day = event.timestamp.astimezone(BEIJING).date()
    match event:
        case Case.Submitted():
            return "提交申请"
        case Case.PreReviewPassed():
            facts.intake = CaseStatus.PRE_REVIEW_PASSED
            return "预审通过"
        case Case.MaterialsRequested(issues=issues):
            facts.intake = CaseStatus.AWAITING_CORRECTION
            facts.requested = {i.material_id: i.reason for i in issues}
            return "一次性告知补正材料"
        case Case.AcceptanceRefused(path_forward=path):
            facts.intake, facts.requested, facts.path_forward = CaseStatus.NOT_ACCEPTED, {}, path
            return "不予受理"
        case Case.MaterialsSupplemented(materials=given, attempt=attempt):
            facts.requested = {k: v for k, v in facts.requested.items() if k not in given}
            facts.missing_minor = [m for m in facts.missing_minor if m not in given]
            if facts.intake is CaseStatus.AWAITING_CORRECTION and not facts.requested:
                facts.intake = CaseStatus.PRE_REVIEW
            return f"补正材料（第{attempt}次）"
        case (
            Case.Accepted(acceptance=terms)
            | Case.AcceptedWithMissingMaterials(acceptance=terms)
            | Case.AcceptedOnCommitment(acceptance=terms)
            | Case.InstantlyApproved(acceptance=terms)
        ):
            facts.intake, facts.accepted_on = CaseStatus.ACCEPTED, terms.accepted_on
            facts.supplement_due = terms.supplement_due
            if isinstance(event, Case.AcceptedWithMissingMaterials):
                facts.missing_minor = list(event.missing)
            if isinstance(event, Case.InstantlyApproved):
                facts.result = ResultCode.APPROVED
            return "已受理（视为受理）" if terms.deemed else _ACCEPTED_LABELS[terms.mode]
        case Case.Routed(assignments=assignments):
            facts.routed = True
            routed = [a.department for a in assignments]
            facts.departments = [*facts.departments, *(d for d in routed if d not in facts.departments)]
            return f"转{'、'.join(department_mark(d) for d in routed)}办理"
        case Case.TaskClaimed(department=department, step=step):
            return f"{department_mark(department)}：{step.label}签收"
        case (
            Case.TaskStepApproved(department=department, step=step)
            | Case.TaskApproved(department=department, step=step)
        ):
            return f"{department_mark(department)}：{step.label}通过"
        case Case.TaskRejected(department=department, step=step):
            return f"{department_mark(department)}：{step.label}不通过"
        case Case.TaskReturned(department=department, step=step):
            return f"{department_mark(department)}：{step.label}退回"
        case Case.Suspended(kind=kind, issues=issues):
            facts.suspensions = [*facts.suspensions, (day, None)]
            facts.requested = {**facts.requested, **{i.material_id: i.reason for i in issues}}
            return f"挂起：{SUSPENSION_LABELS[kind]}"
        case Case.Resumed():
            start, _ = facts.suspensions[-1]
            facts.suspensions = [*facts.suspensions[:-1], (start, day)]
            return "恢复办理"
        case Case.ExtensionRequested():
            return "申请延期"
        case Case.ExtensionApproved(kind=kind):
            duration = kind.duration
            facts.extensions = [*facts.extensions, (duration.amount, _UNITS[duration.unit])]
            return f"延期批准（延长{duration.amount}个工作日）"
        case Case.ExtensionRefused():
            return "延期未获批准"
        case Case.Concluded(result=result):
            facts.result = result
            return f"办结：{result.label}"
        case Case.CommitmentApprovalRevoked():
            facts.revoked = True
            return "撤销审批决定（告知承诺核查不实）"
        case Case.ELicenceIssued():
            facts.delivered = True
            return "电子证照已发放"
        case Case.ReadyForPickup(pickup_code=code, hall=hall):
            facts.pickup = f"{hall} 取件码 {code}"
            return "结果待领取"
        case Case.PickedUp():
            facts.delivered, facts.pickup = True, None
            return "已领取结果"
        case Case.Mailed(carrier=carrier):
            facts.delivered = True
            return f"结果已寄出（{carrier}）"
        case Case.TripRecorded():
            return "现场办理一次"
        case Case.SupervisionRaised(light=light):
            return "督办：红灯" if light == "red" else "督办：黄灯预警"
        case Case.HandedOff(partner=partner, mode="multi_city"):
            facts.routed = True
            facts.open_parts = [*facts.open_parts, partner]
            return f"多地联办：转{partner}办理（跨城通办）"
        case Case.HandedOff(partner=partner):
            facts.routed = True  # the handling city has it: 办理中, as if routed here
            return f"转办理地（{partner}）办理（跨城通办）"
        case Case.HandoffAccepted(partner_number=number):
            return f"办理地已受理（{number}）"
        case Case.HandoffRefused(reason=reason, actor=actor) if actor.id in facts.open_parts:
            facts.open_parts = [p for p in facts.open_parts if p != actor.id]
            facts.routed = bool(facts.open_parts)  # the other cities go on; with none, back with the window
            return f"多地联办：{actor.id}未接收：{reason}"
        case Case.PartnerDecided(result=result, actor=actor):
            facts.open_parts = [p for p in facts.open_parts if p != actor.id]
            facts.routed = bool(facts.open_parts)
            return f"多地联办：{actor.id}{result.label}"
        case Case.HandoffRefused(reason=reason, path_forward=None):
            facts.routed = False  # back with the window
            return f"办理地未接收：{reason}"
        case Case.HandoffRefused(reason=reason, path_forward=path):
            facts.routed = False
            if facts.accepted_on is None:  # 全程网办: the handling city's 不予受理 is the applicant's answer
                facts.intake, facts.requested, facts.path_forward = CaseStatus.NOT_ACCEPTED, {}, path
            return f"办理地不予受理：{reason}"
        case Case.PartnerProgressed(label=label):
            return f"办理地：{label}"
        case Case.PartnerRequestedMaterials(issues=issues):
            facts.requested = {**facts.requested, **{i.material_id: i.reason for i in issues}}
            if facts.accepted_on is None:  # 全程网办: owed before the handling city accepts
                facts.intake = CaseStatus.AWAITING_CORRECTION
            return "办理地一次性告知补正材料"
        case Case.ReceivedFromPartner(partner=partner, origin_number=number):
            return f"收自收件地（{partner}，{number}）（跨城通办）"
        case Case.PaperMaterialsPosted(carrier=carrier, waybill_number=waybill, actor=actor):
            if actor.role is Role.PARTNER:  # 办理地: the receiving city posted them to us
                return f"收件地已寄出纸质材料（{carrier} {waybill}）"
            return f"纸质材料已寄往办理地归档（{carrier} {waybill}）"
        case Case.PaperMaterialsArchived():
            return "纸质材料已归档"
    return type(event).__name__  # an event added later without a label still shows, by its name


# Staff-internal steps: the applicant's timeline leaves them out.
INTERNAL_EVENTS = (Case.SupervisionRaised, Case.ExtensionRequested, Case.ExtensionRefused, Case.TaskClaimed)


def next_steps(facts: CaseFacts) -> tuple[NextStep, ...]:
    """What the applicant must do next; the same rules as domain.case.guidance, over the facts."""
    steps: list[NextStep] = []
    owed = [MaterialIssue(material_id=m, reason=r) for m, r in sorted(facts.requested.items())]
    owed += [
        MaterialIssue(material_id=m, reason=MINOR_OWED)
        for m in sorted(set(facts.missing_minor) - set(facts.requested))
    ]
    if owed and facts.result is None and facts.path_forward is None:
        due = facts.supplement_due if facts.missing_minor else None
        steps.append(NextStep(action=NextAction.SUPPLEMENT_MATERIALS, materials=tuple(owed), due=due))
    if facts.path_forward is not None:
        steps.append(NextStep(action=NextAction.FOLLOW_GUIDANCE, detail=facts.path_forward))
    status = facts.status
    if facts.pickup is not None and facts.result is ResultCode.APPROVED and not facts.revoked:
        steps.append(NextStep(action=NextAction.COLLECT_RESULT, detail=facts.pickup))
    ended = facts.result is not None or status is CaseStatus.NOT_ACCEPTED
    if ended and status is not CaseStatus.VOIDED:
        steps.append(NextStep(action=NextAction.RATE))
    return tuple(steps)
