"""Where a case stands (状态) and how it ended (办结结果), with the words the applicant reads."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    SUBMITTED = "submitted"
    PRE_REVIEW = "pre_review"  # back with the office after the requested materials came in
    PRE_REVIEW_PASSED = "pre_review_passed"
    AWAITING_CORRECTION = "awaiting_correction"
    NOT_ACCEPTED = "not_accepted"
    ACCEPTED = "accepted"  # accepted, not yet routed to a department
    IN_HANDLING = "in_handling"
    SUSPENDED = "suspended"
    CONCLUDED = "concluded"
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"
    VOIDED = "voided"
    REVOKED = "revoked"  # 告知承诺 approval revoked after a failed check

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    CaseStatus.SUBMITTED: "已提交",
    CaseStatus.PRE_REVIEW: "预审中",
    CaseStatus.PRE_REVIEW_PASSED: "预审通过",
    CaseStatus.AWAITING_CORRECTION: "待补正",
    CaseStatus.NOT_ACCEPTED: "不予受理",
    CaseStatus.ACCEPTED: "已受理",
    CaseStatus.IN_HANDLING: "办理中",
    CaseStatus.SUSPENDED: "挂起",
    CaseStatus.CONCLUDED: "已办结",
    CaseStatus.DELIVERED: "已送达",
    CaseStatus.WITHDRAWN: "已撤回",
    CaseStatus.VOIDED: "已作废",
    CaseStatus.REVOKED: "已撤销",
}

# Before acceptance: the office may still pass, ask for materials, refuse, or accept.
BEFORE_ACCEPTANCE = frozenset({CaseStatus.SUBMITTED, CaseStatus.PRE_REVIEW, CaseStatus.PRE_REVIEW_PASSED})
# Accepted and not concluded; the deadline clock runs unless suspended.
UNDER_WAY = frozenset({CaseStatus.ACCEPTED, CaseStatus.IN_HANDLING})
OPEN = BEFORE_ACCEPTANCE | UNDER_WAY | {CaseStatus.AWAITING_CORRECTION, CaseStatus.SUSPENDED}


class ResultCode(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    VOIDED = "voided"
    FORWARDED = "forwarded"
    SUPPLEMENT_OVERDUE = "supplement_overdue"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return _RESULT_LABELS[self]


_RESULT_LABELS = {
    ResultCode.APPROVED: "出证办结",
    ResultCode.DENIED: "退回办结",
    ResultCode.VOIDED: "作废",
    ResultCode.FORWARDED: "转报",
    ResultCode.SUPPLEMENT_OVERDUE: "补正超时驳回",
    ResultCode.WITHDRAWN: "撤回",
}
