"""Every transition a case allows: the event it records, the status after, and a retry that does nothing."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from domain.case import (
    Actor,
    CaseStatus,
    Channel,
    ELicenceRef,
    ExtensionKind,
    ResultCode,
    ReturnTarget,
    SuspensionKind,
)
from tests.unit.case_builders import (
    CITIZEN,
    CLERK,
    DEADLINE,
    DEPT,
    ITEM,
    LATE,
    MINIAPP,
    NOW,
    PARTNER,
    SYS,
    SYSTEM,
    WINDOW,
    build,
    officer,
)
from tests.unit.case_commands import (
    FILE,
    HEARING_ISSUE,
    Command,
    S,
    accept,
    accept_commitment,
    accept_missing,
    claim,
    conclude,
    deem,
    instant,
    request,
    route,
    sign,
    supplement,
    suspend,
    trip,
)

pytestmark = pytest.mark.unit

# (start state, command, status afterwards, the one event recorded)
ALLOWED: list[Any] = [
    (
        "submitted",
        lambda c, r: c.pass_pre_review(CLERK, WINDOW, NOW, request_id=r),
        S.PRE_REVIEW_PASSED,
        "PreReviewPassed",
    ),
    ("submitted", request(("lease", "未盖章")), S.AWAITING_CORRECTION, "MaterialsRequested"),
    (
        "submitted",
        lambda c, r: c.refuse_acceptance(
            CLERK, WINDOW, NOW, reason="非本机关职权", path_forward="向省局申请", request_id=r
        ),
        S.NOT_ACCEPTED,
        "AcceptanceRefused",
    ),
    ("submitted", accept(), S.ACCEPTED, "Accepted"),
    ("submitted", accept(actor=officer(0)), S.ACCEPTED, "Accepted"),
    ("submitted", accept_missing(), S.ACCEPTED, "AcceptedWithMissingMaterials"),
    ("submitted", accept_commitment(), S.ACCEPTED, "AcceptedOnCommitment"),
    ("submitted", deem(), S.ACCEPTED, "Accepted"),
    ("submitted", instant(), S.CONCLUDED, "InstantlyApproved"),
    ("submitted", lambda c, r: c.withdraw(CITIZEN, MINIAPP, NOW, request_id=r), S.WITHDRAWN, "Concluded"),
    ("submitted", conclude(ResultCode.VOIDED, CLERK, reason="重复申报"), S.VOIDED, "Concluded"),
    ("submitted", trip(), S.SUBMITTED, "TripRecorded"),
    ("pre_review_passed", accept(), S.ACCEPTED, "Accepted"),
    ("pre_review_passed", request(("lease", "未盖章")), S.AWAITING_CORRECTION, "MaterialsRequested"),
    ("pre_review_passed", deem(), S.ACCEPTED, "Accepted"),
    ("awaiting_correction", supplement(lease=FILE, plan=FILE), S.PRE_REVIEW, "MaterialsSupplemented"),
    ("awaiting_correction", supplement(lease=FILE), S.AWAITING_CORRECTION, "MaterialsSupplemented"),
    (
        "awaiting_correction",
        supplement(CLERK, lease=FILE, plan=ELicenceRef("E-1")),
        S.PRE_REVIEW,
        "MaterialsSupplemented",
    ),
    (
        "awaiting_correction",
        supplement(PARTNER, lease=FILE, plan=FILE),
        S.PRE_REVIEW,
        "MaterialsSupplemented",
    ),
    (
        "awaiting_correction",
        lambda c, r: c.refuse_acceptance(
            CLERK, WINDOW, NOW, reason="逾期未补正", path_forward="补齐后重新申请", request_id=r
        ),
        S.NOT_ACCEPTED,
        "AcceptanceRefused",
    ),
    (
        "awaiting_correction",
        lambda c, r: c.withdraw(CITIZEN, MINIAPP, NOW, request_id=r),
        S.WITHDRAWN,
        "Concluded",
    ),
    (
        "pre_review",
        lambda c, r: c.pass_pre_review(CLERK, WINDOW, NOW, request_id=r),
        S.PRE_REVIEW_PASSED,
        "PreReviewPassed",
    ),
    ("pre_review", accept(), S.ACCEPTED, "Accepted"),
    ("pre_review", request(("plan", "平面图比例不对")), S.AWAITING_CORRECTION, "MaterialsRequested"),
    ("accepted", route((DEPT, (ITEM,))), S.IN_HANDLING, "Routed"),
    ("accepted", suspend(), S.SUSPENDED, "Suspended"),
    (
        "accepted",
        lambda c, r: c.request_extension(
            officer(0), SYS, NOW, kind=ExtensionKind.JOINT, reason="联合办理", request_id=r
        ),
        S.ACCEPTED,
        "ExtensionRequested",
    ),
    (
        "accepted",
        conclude(ResultCode.FORWARDED, reason="超出权限", forwarded_to="湖南省市场监督管理局"),
        S.CONCLUDED,
        "Concluded",
    ),
    ("accepted", lambda c, r: c.withdraw(CITIZEN, MINIAPP, NOW, request_id=r), S.WITHDRAWN, "Concluded"),
    ("accepted", lambda c, r: c.withdraw(CLERK, WINDOW, NOW, request_id=r), S.WITHDRAWN, "Concluded"),
    (
        "accepted",
        lambda c, r: c.withdraw(PARTNER, Channel.PARTNER_CITY, NOW, request_id=r),
        S.WITHDRAWN,
        "Concluded",
    ),
    (
        "accepted",
        lambda c, r: c.warn_due_soon(SYSTEM, SYS, NOW, deadline=DEADLINE, working_days_left=2, request_id=r),
        S.ACCEPTED,
        "SupervisionRaised",
    ),
    (
        "accepted",
        lambda c, r: c.mark_overdue(SYSTEM, SYS, LATE, deadline=DEADLINE, request_id=r),
        S.ACCEPTED,
        "SupervisionRaised",
    ),
    ("missing_materials", supplement(**{"fire-check": FILE}), S.ACCEPTED, "MaterialsSupplemented"),
    (
        "missing_materials",
        lambda c, r: c.reject_for_missing_supplement(SYSTEM, SYS, LATE, request_id=r),
        S.CONCLUDED,
        "Concluded",
    ),
    ("in_handling", claim(), S.IN_HANDLING, "TaskClaimed"),
    (
        "in_handling",
        suspend(SuspensionKind.AWAITING_SUPPLEMENT, issues=HEARING_ISSUE),
        S.SUSPENDED,
        "Suspended",
    ),
    ("claimed", sign(officer(0)), S.IN_HANDLING, "TaskStepApproved"),
    (
        "claimed",
        lambda c, r: c.reject_task(officer(0), SYS, NOW, department=DEPT, reason="不符合条件", request_id=r),
        S.IN_HANDLING,
        "TaskRejected",
    ),
    (
        "claimed",
        lambda c, r: c.return_task(
            officer(0), SYS, NOW, department=DEPT, to=ReturnTarget.WINDOW, reason="材料不清", request_id=r
        ),
        S.IN_HANDLING,
        "TaskReturned",
    ),
    (
        "claimed_review",
        lambda c, r: c.return_task(
            officer(1),
            SYS,
            NOW,
            department=DEPT,
            to=ReturnTarget.PREVIOUS_STEP,
            reason="意见不全",
            request_id=r,
        ),
        S.IN_HANDLING,
        "TaskReturned",
    ),
    ("claimed_review", sign(officer(1)), S.IN_HANDLING, "TaskStepApproved"),
    ("claimed_approve", sign(officer(2)), S.IN_HANDLING, "TaskApproved"),
    ("returned_to_window", route((DEPT, (ITEM,))), S.IN_HANDLING, "Routed"),
    ("all_approved", conclude(ResultCode.APPROVED), S.CONCLUDED, "Concluded"),
    ("all_approved", conclude(ResultCode.APPROVED, CLERK), S.CONCLUDED, "Concluded"),
    ("missing_all_approved", supplement(**{"fire-check": FILE}), S.IN_HANDLING, "MaterialsSupplemented"),
    ("task_rejected", conclude(ResultCode.DENIED, reason="经营场所不符合要求"), S.CONCLUDED, "Concluded"),
    ("suspended", lambda c, r: c.resume(officer(0), SYS, NOW, request_id=r), S.IN_HANDLING, "Resumed"),
    ("suspended", lambda c, r: c.resume(SYSTEM, SYS, NOW, request_id=r), S.IN_HANDLING, "Resumed"),
    ("suspended", lambda c, r: c.withdraw(CITIZEN, MINIAPP, NOW, request_id=r), S.WITHDRAWN, "Concluded"),
    (
        "suspended",
        conclude(ResultCode.FORWARDED, reason="超出权限", forwarded_to="省局"),
        S.CONCLUDED,
        "Concluded",
    ),
    ("awaiting_supplement", supplement(survey=FILE), S.SUSPENDED, "MaterialsSupplemented"),
    (
        "extension_requested",
        lambda c, r: c.approve_extension(officer(1), SYS, NOW, request_id=r),
        S.IN_HANDLING,
        "ExtensionApproved",
    ),
    (
        "extension_requested",
        lambda c, r: c.refuse_extension(officer(1), SYS, NOW, reason="理由不足", request_id=r),
        S.IN_HANDLING,
        "ExtensionRefused",
    ),
    (
        "concluded",
        lambda c, r: c.issue_e_licence(SYSTEM, SYS, NOW, licence_number="L-9", request_id=r),
        S.DELIVERED,
        "ELicenceIssued",
    ),
    (
        "concluded",
        lambda c, r: c.prepare_pickup(
            CLERK, WINDOW, NOW, pickup_code="1234", hall="长沙市民之家", request_id=r
        ),
        S.CONCLUDED,
        "ReadyForPickup",
    ),
    (
        "concluded",
        lambda c, r: c.mail_result(CLERK, WINDOW, NOW, waybill_number="EMS123", request_id=r),
        S.DELIVERED,
        "Mailed",
    ),
    ("concluded", trip(), S.CONCLUDED, "TripRecorded"),
    (
        "ready_for_pickup",
        lambda c, r: c.record_pickup(CLERK, WINDOW, NOW, pickup_code="8421", request_id=r),
        S.DELIVERED,
        "PickedUp",
    ),
    (
        "delivered",
        lambda c, r: c.mail_result(SYSTEM, SYS, NOW, waybill_number="EMS9", request_id=r),
        S.DELIVERED,
        "Mailed",
    ),
    (
        "instantly_approved",
        lambda c, r: c.issue_e_licence(SYSTEM, SYS, NOW, licence_number="L-2", request_id=r),
        S.DELIVERED,
        "ELicenceIssued",
    ),
    (
        "commitment_approved",
        lambda c, r: c.revoke_commitment_approval(
            officer(0), SYS, NOW, reason="核查发现承诺不实", request_id=r
        ),
        S.REVOKED,
        "CommitmentApprovalRevoked",
    ),
]


@pytest.mark.parametrize(("start", "command", "status", "event"), ALLOWED)
def test_allowed_transition(start: str, command: Command, status: CaseStatus, event: str) -> None:
    case = build(start)
    version = case.version
    command(case, "request-1")
    recorded = case.collect_events()
    assert [type(e).__name__ for e in recorded] == [event]
    assert case.status is status and case.status_label == status.label
    (e,) = recorded
    assert e.originator_version == version + 1 == case.version
    assert e.timestamp in (NOW, LATE) and e.timestamp.utcoffset() == timedelta(hours=8)
    assert isinstance(e.actor, Actor) and isinstance(e.channel, Channel)
    assert e.request_id == "request-1"
    # The client retries: recognised, ignored, nothing changes.
    before = copy.deepcopy(vars(case))
    command(case, "request-1")
    assert case.collect_events() == [] and vars(case) == before
