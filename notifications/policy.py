"""The case notification policy: which intents each case event gives rise to.

Pure: the consumer passes the event, its position and a `CaseNotice` (what the
policy needs of the case beyond the event, read from the read models), and stores
the intents it gets back in the outbox in the same transaction as its position.

Other policies:
- Ratings: `RATING_INVITATION` goes out here, on conclusion, as DOMAIN.md says
  ("invitation after conclusion"); the reminder after 3 days, `BAD_RATING_FOLLOW_UP`
  and `RATING_OUTCOME` come from notifications.rating_notices.
- Appointments: APPOINTMENT_REMINDER and TURN_NEAR come from
  notifications.appointment_notices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from domain.case import AcceptanceMode, Applicant, Case, DayUnit, Light, Person, ResultCode, SuspensionKind
from domain.case.checks import BEIJING
from domain.personal import mask, scrub
from notifications.intents import PURPOSE_VARIABLES, Intent, OfficerRole, Purpose, Recipient, intent_key


@dataclass(frozen=True, slots=True)
class CaseNotice:
    """What the policy knows of a case beyond the event; every personal value already masked."""

    number: str  # 办件编号
    item_name: str
    applicant_subject: str  # the account that submitted the case, and is told about it
    applicant_name: str  # masked: 张*
    departments: tuple[str, ...] = ()  # departments with an open task: lights go to them
    deadline: date | None = None  # 办结时限, on the events whose notices state it (受理, routing, 延期)
    material_names: Mapping[str, str] = field(default_factory=dict)  # material id -> its name
    extension_reason: str | None = None  # why the last extension was asked for (行政许可法 Art. 42)

    @classmethod
    def of(cls, *, applicant: Applicant, **facts: Any) -> CaseNotice:
        """The notice for an applicant as the case holds them: their name is masked here."""
        return cls(applicant_name=display_name(applicant), **facts)


def display_name(applicant: Applicant) -> str:
    """A person's name masked (张*); an enterprise's name is public (公示) and shown whole."""
    return mask(applicant.name) if isinstance(applicant, Person) else applicant.name


def day(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def moment(at: datetime) -> str:
    at = at.astimezone(BEIJING)
    return f"{day(at.date())} {at:%H:%M}"


_ACCEPTANCE_KINDS = {
    AcceptanceMode.STANDARD: "受理",
    AcceptanceMode.MISSING_MATERIALS: "容缺受理",
    AcceptanceMode.COMMITMENT: "告知承诺受理",
    AcceptanceMode.INSTANT: "秒批",
}

_PROCEDURES = {
    SuspensionKind.HEARING: "听证",
    SuspensionKind.INSPECTION: "检验检测",
    SuspensionKind.APPRAISAL: "鉴定",
    SuspensionKind.EXPERT_REVIEW: "专家评审",
    SuspensionKind.SITE_SURVEY: "现场勘查",
    SuspensionKind.EXTENDED_REVIEW: "延长审批",
    SuspensionKind.AWAITING_SUPPLEMENT: "待补正",
}

# Each result in plain words, and what the applicant can do next.
_RESULTS = {
    ResultCode.APPROVED: ("准予办理", "办理结果将以电子证照或纸质证照送达，领取方式请留意后续通知。"),
    ResultCode.DENIED: ("不予批准", "如有异议，可依法申请行政复议或者提起行政诉讼。"),
    ResultCode.VOIDED: ("办件已作废", "如有疑问，请联系办理窗口。"),
    ResultCode.FORWARDED: ("已转报上级机关办理", "后续进展将另行通知。"),
    ResultCode.SUPPLEMENT_OVERDUE: ("容缺材料逾期未补齐，已驳回", "如需继续办理，请重新提交申请。"),
    ResultCode.WITHDRAWN: ("申请已撤回", "如需办理，可重新提交申请。"),
}
# Ratings follow a service occasion that ended here; a voided or forwarded case did not end one.
_RATED = frozenset(ResultCode) - {ResultCode.VOIDED, ResultCode.FORWARDED}

_UNKNOWN_DEADLINE = "以办件详情为准"

# 告知承诺 revoked: the remedies, and whom to ask. No promise of applying again: after an approval won
# by an untrue commitment, some items bar a new application for years (行政许可法 Art. 79).
_REVOKED_NEXT_STEP = "如对撤销决定有异议，可依法申请行政复议或者提起行政诉讼；如有疑问，请联系办理部门。"
# 跨城通办 refused by the handling city: the case is back with our window, which decides what comes next.
_HANDOFF_REFUSED_NEXT_STEP = "您的申请已退回受理窗口，窗口工作人员将与您联系后续办理方式。"
_DAY_UNITS = {DayUnit.WORKING_DAY: "个工作日", DayUnit.NATURAL_DAY: "个自然日"}
# After an extension the notice may not know the new 办结时限 (it moves with suspensions too).
_EXTENDED_DEADLINE_UNKNOWN = "以办理进度为准"


def intents_for(notice: CaseNotice, case_id: UUID, version: int, event: Any) -> list[Intent]:
    """The intents one case event gives rise to, at its position (case id, version); [] for most."""

    def citizen(purpose: Purpose, facts: Mapping[str, str] | None = None, urgent: bool = False) -> Intent:
        variables = {**common, "applicant_name": notice.applicant_name, **(facts or {})}
        return make(purpose, Recipient.citizen(notice.applicant_subject), variables, urgent)

    def officers(purpose: Purpose, department: str, role: OfficerRole, deadline: str) -> Intent:
        variables = {**common, "department": scrub(department), "deadline": deadline}
        urgent = purpose is Purpose.LIGHT_RED
        return make(purpose, Recipient.department(department, role), variables, urgent)

    def make(purpose: Purpose, recipient: Recipient, variables: dict[str, str], urgent: bool) -> Intent:
        if set(variables) != PURPOSE_VARIABLES[purpose]:
            raise AssertionError(f"{purpose}: variables {sorted(variables)} break the purpose's contract")
        key = intent_key((case_id, version), recipient, purpose)
        return Intent(key, purpose, recipient, variables, urgent, event.timestamp, case_id)

    common = {
        "case_number": notice.number,
        "item_name": scrub(notice.item_name),
        "occurred_at": moment(event.timestamp),
    }
    deadline = day(notice.deadline) if notice.deadline is not None else _UNKNOWN_DEADLINE
    match event:
        case Case.Submitted():
            return [citizen(Purpose.SUBMITTED)]
        case Case.MaterialsRequested(issues=issues) | Case.PartnerRequestedMaterials(issues=issues):
            # The handling city's 一次性告知 (跨城通办) is answered here, as our own would be.
            return [citizen(Purpose.MATERIALS_REQUESTED, _materials(notice, issues, "尽快"))]
        case Case.Suspended(kind=SuspensionKind.AWAITING_SUPPLEMENT, issues=issues, expected_end=end):
            # 待补正: the list is what the applicant must act on, by a date: one urgent notice.
            listed = _materials(notice, issues, f"于{day(end)}前")
            return [citizen(Purpose.MATERIALS_REQUESTED, listed, urgent=True)]
        case Case.Suspended(kind=procedure, reason=reason, expected_end=end):
            facts = {"procedure": _PROCEDURES[procedure], "reason": scrub(reason), "expected_end": day(end)}
            return [citizen(Purpose.SUSPENDED, facts)]
        case Case.Resumed():
            return [citizen(Purpose.RESUMED)]
        case Case.ExtensionApproved(kind=extension):
            # The notice is as of just after the event, so a deadline it knows already counts the extension.
            extended = day(notice.deadline) if notice.deadline is not None else _EXTENDED_DEADLINE_UNKNOWN
            by = f"{extension.duration.amount}{_DAY_UNITS[extension.duration.unit]}"
            # Art. 42: the applicant is told why, in the words the department gave when it asked.
            why = f"延期原因：{scrub(notice.extension_reason)}。" if notice.extension_reason else ""
            told = {"extended_by": by, "deadline": extended, "reason": why}
            return [citizen(Purpose.EXTENSION_APPROVED, told)]
        case Case.Accepted() | Case.AcceptedWithMissingMaterials() | Case.AcceptedOnCommitment():
            terms = event.acceptance
            kind = "视为受理" if terms.deemed else _ACCEPTANCE_KINDS[terms.mode]
            note = ""
            if isinstance(event, Case.AcceptedWithMissingMaterials) and terms.supplement_due is not None:
                owed = "、".join(scrub(notice.material_names.get(m, m)) for m in event.missing)
                note = f"容缺材料：{owed}，请于{day(terms.supplement_due)}前补齐。"
            return [citizen(Purpose.ACCEPTED, _accepted(terms.receipt_number, kind, deadline, note))]
        case Case.InstantlyApproved(acceptance=terms):
            # 秒批 accepts and concludes in one event: the applicant hears both, as for any other case.
            accepted = _accepted(terms.receipt_number, _ACCEPTANCE_KINDS[terms.mode], "即时办结", "")
            return [
                citizen(Purpose.ACCEPTED, accepted),
                citizen(Purpose.CONCLUDED, _concluded(ResultCode.APPROVED, None)),
                citizen(Purpose.RATING_INVITATION),
            ]
        case Case.Concluded(result=result, reason=reason, forwarded_to=authority):
            concluded = [citizen(Purpose.CONCLUDED, _concluded(result, reason, authority))]
            return [*concluded, citizen(Purpose.RATING_INVITATION)] if result in _RATED else concluded
        case Case.CommitmentApprovalRevoked(reason=reason):
            # Urgent: the applicant may be acting on the approval right now (a shop open on its licence),
            # and the time to seek 复议 runs from when they learn of it; quiet hours must not hold it back.
            revoked = {"reason": scrub(reason), "next_step": _REVOKED_NEXT_STEP}
            return [citizen(Purpose.COMMITMENT_REVOKED, revoked, urgent=True)]
        case Case.HandoffRefused(reason=reason, path_forward=path):
            # The handling city's 不予受理 gives its own path forward; otherwise the window will call.
            next_step = scrub(path) if path is not None else _HANDOFF_REFUSED_NEXT_STEP
            refused = {"reason": scrub(reason), "next_step": next_step}
            return [citizen(Purpose.HANDOFF_REFUSED, refused)]
        case Case.AcceptanceRefused(reason=reason, path_forward=path):
            # 不予受理 ends the application, never as a bare no: the path forward is the next step.
            refused = {"result": "不予受理", "reason": f"原因：{scrub(reason)}。", "next_step": scrub(path)}
            return [citizen(Purpose.CONCLUDED, refused)]
        case Case.ReadyForPickup(pickup_code=code, hall=hall):
            instruction = f"请携带有效身份证件，凭取件码到{scrub(hall)}领取。"
            ready = {"method": "窗口领取", "reference": code, "instruction": instruction}
            return [citizen(Purpose.CERTIFICATE_READY, ready)]
        case Case.ELicenceIssued(licence_number=number):
            instruction = "可在小程序“我的证照”中查看和使用。"
            issued = {"method": "电子证照", "reference": number, "instruction": instruction}
            return [citizen(Purpose.CERTIFICATE_READY, issued)]
        case Case.Mailed(waybill_number=waybill, carrier=carrier):
            return [citizen(Purpose.MAILED, {"carrier": scrub(carrier), "waybill_number": waybill})]
        case Case.Routed(assignments=assignments):
            return [
                officers(Purpose.NEW_TASK, a.department, OfficerRole.HANDLER, deadline) for a in assignments
            ]
        case Case.SupervisionRaised(light=light, deadline=light_deadline):
            # TODO: a light on a case accepted but not yet routed has no department; the hall should hear.
            if light is Light.YELLOW:
                roles: tuple[OfficerRole, ...] = (OfficerRole.HANDLER,)
                purpose = Purpose.LIGHT_YELLOW
            else:
                roles, purpose = (OfficerRole.HANDLER, OfficerRole.HEAD), Purpose.LIGHT_RED
            return [officers(purpose, d, r, day(light_deadline)) for d in notice.departments for r in roles]
    # Not told: intake and task steps, extension requests and refusals, trips, pickups done at the window.
    return []


def _materials(notice: CaseNotice, issues: Any, due: str) -> dict[str, str]:
    """一次性告知: every issue listed, by the material's name when the catalogue gives one."""
    listed = [
        f"{scrub(notice.material_names.get(i.material_id, i.material_id))}：{scrub(i.reason)}" for i in issues
    ]
    return {"materials": "；".join(listed), "material_count": str(len(listed)), "due": due}


def _accepted(receipt_number: str, kind: str, deadline: str, note: str) -> dict[str, str]:
    return {"receipt_number": receipt_number, "acceptance_kind": kind, "deadline": deadline, "note": note}


def _concluded(result: ResultCode, reason: str | None, forwarded_to: str | None = None) -> dict[str, str]:
    words, next_step = _RESULTS[result]
    if forwarded_to:
        words = f"已转报{scrub(forwarded_to)}办理"
    said = f"原因：{scrub(reason)}。" if reason else ""
    return {"result": words, "reason": said, "next_step": next_step}
