"""Every transition a case refuses: the kind of error, nothing appended, nothing changed."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from domain.case import (
    Assignment,
    Case,
    Channel,
    ExtensionKind,
    IllegalTransitionError,
    InvalidCommandError,
    MaterialsMissingError,
    NotAuthorisedActorError,
    NotEligibleError,
    ResultCode,
    ReturnTarget,
    SuspensionKind,
    UploadedFile,
)
from tests.unit.case_builders import (
    AGENT,
    CITIZEN,
    CLERK,
    DEADLINE,
    DEPT,
    ITEM,
    LATE,
    MINIAPP,
    NOW,
    PARTNER,
    STRANGER,
    SYS,
    SYSTEM,
    T0,
    WINDOW,
    build,
    officer,
)
from tests.unit.case_commands import (
    FILE,
    HEARING_ISSUE,
    Command,
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
)

pytestmark = pytest.mark.unit


def blank_reason(c: Case, r: str | None) -> None:
    c.refuse_acceptance(CLERK, WINDOW, NOW, reason="  ", path_forward="向省局申请", request_id=r)


# (start state, command, the error it must raise)
REFUSED: list[Any] = [
    # Who may act.
    ("submitted", accept(actor=CITIZEN), NotAuthorisedActorError),
    ("submitted", accept(actor=SYSTEM), NotAuthorisedActorError),
    ("submitted", deem(actor=CLERK), NotAuthorisedActorError),
    ("submitted", instant(actor=CLERK), NotAuthorisedActorError),
    ("submitted", lambda c, r: c.pass_pre_review(AGENT, MINIAPP, NOW, request_id=r), NotAuthorisedActorError),
    ("submitted", lambda c, r: c.withdraw(STRANGER, MINIAPP, NOW, request_id=r), NotAuthorisedActorError),
    ("submitted", lambda c, r: c.withdraw(officer(0), SYS, NOW, request_id=r), NotAuthorisedActorError),
    ("awaiting_correction", supplement(STRANGER, lease=FILE), NotAuthorisedActorError),
    (
        "accepted",
        lambda c, r: c.route(
            officer(0), SYS, NOW, assignments=[Assignment(department=DEPT, item_codes=(ITEM,))], request_id=r
        ),
        NotAuthorisedActorError,
    ),
    ("in_handling", claim(officer(0, "长沙市公安局")), NotAuthorisedActorError),
    ("in_handling", claim(CLERK), NotAuthorisedActorError),
    ("claimed", sign(officer(1)), NotAuthorisedActorError),
    (
        "accepted",
        lambda c, r: c.request_extension(
            CLERK, WINDOW, NOW, kind=ExtensionKind.STANDARD, reason="复杂", request_id=r
        ),
        NotAuthorisedActorError,
    ),
    (
        "extension_requested",
        lambda c, r: c.approve_extension(officer(0), SYS, NOW, request_id=r),
        NotAuthorisedActorError,
    ),
    (
        "accepted",
        lambda c, r: c.mark_overdue(CLERK, WINDOW, LATE, deadline=DEADLINE, request_id=r),
        NotAuthorisedActorError,
    ),
    (
        "missing_materials",
        lambda c, r: c.reject_for_missing_supplement(CLERK, WINDOW, LATE, request_id=r),
        NotAuthorisedActorError,
    ),
    (
        "concluded",
        lambda c, r: c.issue_e_licence(CITIZEN, MINIAPP, NOW, licence_number="L-9", request_id=r),
        NotAuthorisedActorError,
    ),
    (
        "concluded",
        lambda c, r: c.record_trip(PARTNER, Channel.PARTNER_CITY, NOW, purpose="x", hall="y", request_id=r),
        NotAuthorisedActorError,
    ),
    # The state does not allow it.
    ("submitted", route((DEPT, (ITEM,))), IllegalTransitionError),
    ("submitted", claim(), IllegalTransitionError),
    ("submitted", conclude(ResultCode.APPROVED), IllegalTransitionError),
    ("submitted", conclude(ResultCode.DENIED, reason="x"), IllegalTransitionError),
    ("submitted", conclude(ResultCode.FORWARDED, reason="x", forwarded_to="省局"), IllegalTransitionError),
    ("submitted", suspend(), IllegalTransitionError),
    ("submitted", lambda c, r: c.resume(officer(0), SYS, NOW, request_id=r), IllegalTransitionError),
    ("submitted", supplement(lease=FILE), IllegalTransitionError),
    (
        "submitted",
        lambda c, r: c.issue_e_licence(SYSTEM, SYS, NOW, licence_number="L", request_id=r),
        IllegalTransitionError,
    ),
    (
        "submitted",
        lambda c, r: c.mark_overdue(SYSTEM, SYS, LATE, deadline=DEADLINE, request_id=r),
        IllegalTransitionError,
    ),
    (
        "submitted",
        lambda c, r: c.reject_for_missing_supplement(SYSTEM, SYS, LATE, request_id=r),
        IllegalTransitionError,
    ),
    (
        "submitted",
        lambda c, r: c.request_extension(
            officer(0), SYS, NOW, kind=ExtensionKind.STANDARD, reason="x", request_id=r
        ),
        IllegalTransitionError,
    ),
    (
        "pre_review_passed",
        lambda c, r: c.pass_pre_review(CLERK, WINDOW, NOW, request_id=r),
        IllegalTransitionError,
    ),
    (
        "awaiting_correction",
        lambda c, r: c.pass_pre_review(CLERK, WINDOW, NOW, request_id=r),
        IllegalTransitionError,
    ),
    ("awaiting_correction", deem(), IllegalTransitionError),
    ("awaiting_correction", request(("lease", "again")), IllegalTransitionError),
    ("not_accepted", accept(), IllegalTransitionError),
    ("not_accepted", lambda c, r: c.withdraw(CITIZEN, MINIAPP, NOW, request_id=r), IllegalTransitionError),
    ("not_accepted", conclude(ResultCode.VOIDED, CLERK, reason="x"), IllegalTransitionError),
    ("accepted", accept(), IllegalTransitionError),
    ("accepted", accept_missing(), IllegalTransitionError),
    ("accepted", instant(), IllegalTransitionError),
    ("accepted", deem(), IllegalTransitionError),
    ("accepted", request(("lease", "x")), IllegalTransitionError),
    ("accepted", claim(), IllegalTransitionError),
    ("accepted", lambda c, r: c.resume(officer(0), SYS, NOW, request_id=r), IllegalTransitionError),
    ("accepted", conclude(ResultCode.APPROVED), IllegalTransitionError),
    ("accepted", conclude(ResultCode.DENIED, reason="x"), IllegalTransitionError),
    (
        "accepted",
        lambda c, r: c.approve_extension(officer(1), SYS, NOW, request_id=r),
        IllegalTransitionError,
    ),
    (
        "accepted",
        lambda c, r: c.issue_e_licence(SYSTEM, SYS, NOW, licence_number="L", request_id=r),
        IllegalTransitionError,
    ),
    (
        "accepted",
        lambda c, r: c.reject_for_missing_supplement(SYSTEM, SYS, LATE, request_id=r),
        IllegalTransitionError,
    ),
    (
        "missing_materials",
        lambda c, r: c.reject_for_missing_supplement(SYSTEM, SYS, NOW, request_id=r),
        IllegalTransitionError,
    ),
    ("in_handling", route((DEPT, (ITEM,))), IllegalTransitionError),
    ("in_handling", sign(officer(0)), IllegalTransitionError),
    ("in_handling", conclude(ResultCode.APPROVED), IllegalTransitionError),
    ("claimed", claim(officer(1)), IllegalTransitionError),
    ("claimed", conclude(ResultCode.DENIED, reason="x"), IllegalTransitionError),
    ("returned_to_window", conclude(ResultCode.APPROVED), IllegalTransitionError),
    ("returned_to_window", claim(), IllegalTransitionError),
    ("task_rejected", conclude(ResultCode.APPROVED), IllegalTransitionError),
    ("all_approved", conclude(ResultCode.DENIED, reason="x"), IllegalTransitionError),
    ("suspended", suspend(), IllegalTransitionError),
    ("suspended", claim(officer(1)), IllegalTransitionError),
    ("suspended", route((DEPT, (ITEM,))), IllegalTransitionError),
    ("suspended", conclude(ResultCode.APPROVED), IllegalTransitionError),
    (
        "suspended",
        lambda c, r: c.mark_overdue(SYSTEM, SYS, LATE, deadline=DEADLINE, request_id=r),
        IllegalTransitionError,
    ),
    (
        "extension_requested",
        lambda c, r: c.request_extension(
            officer(0), SYS, NOW, kind=ExtensionKind.STANDARD, reason="x", request_id=r
        ),
        IllegalTransitionError,
    ),
    (
        "extended",
        lambda c, r: c.request_extension(
            officer(0), SYS, NOW, kind=ExtensionKind.JOINT, reason="x", request_id=r
        ),
        IllegalTransitionError,
    ),
    ("concluded", conclude(ResultCode.APPROVED), IllegalTransitionError),
    ("concluded", conclude(ResultCode.VOIDED, reason="x"), IllegalTransitionError),
    ("concluded", lambda c, r: c.withdraw(CITIZEN, MINIAPP, NOW, request_id=r), IllegalTransitionError),
    ("concluded", suspend(), IllegalTransitionError),
    ("concluded", accept(), IllegalTransitionError),
    (
        "concluded",
        lambda c, r: c.record_pickup(CLERK, WINDOW, NOW, pickup_code="8421", request_id=r),
        IllegalTransitionError,
    ),
    (
        "concluded",
        lambda c, r: c.revoke_commitment_approval(officer(0), SYS, NOW, reason="x", request_id=r),
        IllegalTransitionError,
    ),
    (
        "concluded",
        lambda c, r: c.reject_for_missing_supplement(SYSTEM, SYS, LATE, request_id=r),
        IllegalTransitionError,
    ),
    (
        "ready_for_pickup",
        lambda c, r: c.prepare_pickup(CLERK, WINDOW, NOW, pickup_code="1", hall="h", request_id=r),
        IllegalTransitionError,
    ),
    (
        "denied",
        lambda c, r: c.issue_e_licence(SYSTEM, SYS, NOW, licence_number="L", request_id=r),
        IllegalTransitionError,
    ),
    (
        "denied",
        lambda c, r: c.mail_result(CLERK, WINDOW, NOW, waybill_number="EMS1", request_id=r),
        IllegalTransitionError,
    ),
    (
        "withdrawn",
        lambda c, r: c.issue_e_licence(SYSTEM, SYS, NOW, licence_number="L", request_id=r),
        IllegalTransitionError,
    ),
    ("withdrawn", lambda c, r: c.withdraw(CITIZEN, MINIAPP, NOW, request_id=r), IllegalTransitionError),
    ("voided", accept(), IllegalTransitionError),
    (
        "revoked",
        lambda c, r: c.issue_e_licence(SYSTEM, SYS, NOW, licence_number="L", request_id=r),
        IllegalTransitionError,
    ),
    (
        "revoked",
        lambda c, r: c.revoke_commitment_approval(officer(0), SYS, NOW, reason="x", request_id=r),
        IllegalTransitionError,
    ),
    ("instantly_approved", conclude(ResultCode.APPROVED), IllegalTransitionError),
    (
        "instantly_approved",
        lambda c, r: c.withdraw(CITIZEN, MINIAPP, NOW, request_id=r),
        IllegalTransitionError,
    ),
    # Materials missing.
    ("awaiting_correction", accept(), MaterialsMissingError),
    ("awaiting_correction", accept_missing(), MaterialsMissingError),
    ("submitted", accept_missing(missing=("lease",), minor=("photo",)), MaterialsMissingError),
    ("missing_all_approved", conclude(ResultCode.APPROVED), MaterialsMissingError),
    # Not eligible.
    ("submitted", accept_missing(blacklisted=True), NotEligibleError),
    ("submitted", accept_commitment(blacklisted=True), NotEligibleError),
    # The command itself is malformed.
    ("submitted", request(), InvalidCommandError),
    ("submitted", request(("lease", "a"), ("lease", "b")), InvalidCommandError),
    ("submitted", request(("lease", " ")), InvalidCommandError),
    ("submitted", blank_reason, InvalidCommandError),
    (
        "submitted",
        lambda c, r: c.refuse_acceptance(
            CLERK, WINDOW, NOW, reason="非本机关职权", path_forward="", request_id=r
        ),
        InvalidCommandError,
    ),
    ("submitted", accept(password_hash="123456"), InvalidCommandError),
    ("submitted", accept(at=NOW.replace(tzinfo=None)), InvalidCommandError),
    ("submitted", accept_missing(missing=()), InvalidCommandError),
    ("submitted", accept_missing(due=T0.date() - timedelta(days=1)), InvalidCommandError),
    ("submitted", accept_missing(commitment="signed"), InvalidCommandError),
    ("submitted", accept_commitment(proofs=()), InvalidCommandError),
    ("submitted", conclude(ResultCode.WITHDRAWN, reason="x"), InvalidCommandError),
    ("submitted", conclude(ResultCode.SUPPLEMENT_OVERDUE, reason="x"), InvalidCommandError),
    ("submitted", conclude(ResultCode.VOIDED, CLERK), InvalidCommandError),
    ("pre_review", request(("id-card", "复印件不清")), InvalidCommandError),  # 一次性告知
    ("awaiting_correction", supplement(), InvalidCommandError),
    ("awaiting_correction", supplement(lease=UploadedFile("not-a-hash")), InvalidCommandError),
    ("accepted", route(), InvalidCommandError),
    ("accepted", route((DEPT, ("other-item",))), InvalidCommandError),
    ("accepted", route((DEPT, ())), InvalidCommandError),
    ("accepted", route((DEPT, (ITEM,)), ("长沙市公安局", (ITEM,))), InvalidCommandError),
    ("accepted", conclude(ResultCode.FORWARDED, reason="超出权限"), InvalidCommandError),
    ("accepted", conclude(ResultCode.VOIDED, reason="x", forwarded_to="省局"), InvalidCommandError),
    ("accepted", suspend(end=T0.date()), InvalidCommandError),
    ("accepted", suspend(SuspensionKind.AWAITING_SUPPLEMENT), InvalidCommandError),
    ("accepted", suspend(issues=HEARING_ISSUE), InvalidCommandError),
    (
        "accepted",
        lambda c, r: c.mark_overdue(SYSTEM, SYS, NOW, deadline=DEADLINE, request_id=r),
        InvalidCommandError,
    ),
    (
        "accepted",
        lambda c, r: c.warn_due_soon(SYSTEM, SYS, NOW, deadline=DEADLINE, working_days_left=5, request_id=r),
        InvalidCommandError,
    ),
    (
        "in_handling",
        lambda c, r: c.claim_task(officer(0), SYS, NOW, department="长沙市公安局", request_id=r),
        InvalidCommandError,
    ),
    (
        "claimed",
        lambda c, r: c.reject_task(officer(0), SYS, NOW, department=DEPT, reason="", request_id=r),
        InvalidCommandError,
    ),
    (
        "claimed",
        lambda c, r: c.return_task(
            officer(0), SYS, NOW, department=DEPT, to=ReturnTarget.PREVIOUS_STEP, reason="x", request_id=r
        ),
        InvalidCommandError,
    ),
    (
        "ready_for_pickup",
        lambda c, r: c.record_pickup(CLERK, WINDOW, NOW, pickup_code="0000", request_id=r),
        InvalidCommandError,
    ),
    (
        "delivered",
        lambda c, r: c.issue_e_licence(SYSTEM, SYS, NOW, licence_number="L-1", request_id=r),
        InvalidCommandError,
    ),
    (
        "delivered",
        lambda c, r: c.issue_e_licence(SYSTEM, SYS, NOW, licence_number="L-2", item_code="x", request_id=r),
        InvalidCommandError,
    ),
]


@pytest.mark.parametrize(("start", "command", "error"), REFUSED)
def test_refused_transition(start: str, command: Command, error: type[Exception]) -> None:
    case = build(start)
    before = copy.deepcopy(vars(case))
    with pytest.raises(error):
        command(case, "request-1")
    assert case.collect_events() == []
    assert vars(case) == before  # same state, same version, request id not remembered
