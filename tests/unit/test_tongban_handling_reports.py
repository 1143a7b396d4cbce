"""办理地 → 收件地: what each event of a case received from a partner city is reported as."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from backend.federation.kinds import (
    DecisionReported,
    HandoffAccepted,
    HandoffRefused,
    MaterialsArchived,
    ResultDelivered,
    StatusReported,
)
from backend.federation.report_mapping import departments_in, kind_of, rendered, report, seq_of
from domain.case import Actor, Case, Channel, ExtensionKind, ResultCode, Role, SuspensionKind
from projections.case_facts import CaseFacts
from tests.unit.case_builders import (
    CLERK,
    DEADLINE,
    DEPT,
    PARTNER,
    PASSWORD_HASH,
    STEP,
    SYS,
    T0,
    WINDOW,
    _route,
    _sign_all,
    officer,
    submission,
)

NUMBER = "430100202605060000042"
INSTANT = Actor(id="system:秒批", role=Role.SYSTEM, name="秒批规则")


def received() -> Case:
    case = Case.submit(PARTNER, Channel.PARTNER_CITY, T0, **submission())
    case.received_from_partner(
        PARTNER, Channel.PARTNER_CITY, T0, origin_case_id=uuid4(), origin_number="430200202605060000001",
        mode="remote_collect", handoff=uuid4(),
    )  # fmt: skip
    return case


def reports(case: Case) -> list[tuple[int, Any]]:
    """(seq, payload) for each event from ReceivedFromPartner on, as the consumer folds them."""
    events = case.collect_events()
    base = next(e.originator_version for e in events if isinstance(e, Case.ReceivedFromPartner))
    facts = CaseFacts()
    return [
        (seq_of(e.originator_version, base), report(e, facts, NUMBER))
        for e in events
        if e.originator_version >= base
    ]


def test_a_case_walked_to_approval_reports_acceptance_each_step_and_the_decision() -> None:
    case = received()
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
    _route(case)
    _sign_all(case)
    case.conclude(officer(2), SYS, STEP, result=ResultCode.APPROVED)
    sent = reports(case)
    assert [seq for seq, _ in sent] == list(range(1, len(sent) + 1))
    assert sent[0][1] == HandoffAccepted(case_number=NUMBER)
    assert sent[-1][1] == DecisionReported(result="approved", reason=None)
    steps = [(p.step, p.internal) for _, p in sent[1:-1]]
    assert steps == [
        ("case.accepted", False), ("case.routed", False),
        *[("task.claimed", True), ("task.step_approved", False)] * 2,
        ("task.claimed", True), ("task.approved", False),
    ]  # fmt: skip
    assert [kind_of(p) for _, p in sent] == [
        "handoff.accepted", *["status.reported"] * len(steps), "decision.reported",
    ]  # fmt: skip
    routed = sent[2][1]
    assert routed.occurred_at == STEP and departments_in(routed) == {DEPT}
    assert (
        rendered(routed, {DEPT: "长沙市市场监督管理局（市场监管）"}).label
        == "转长沙市市场监督管理局（市场监管）办理"
    )
    assert rendered(sent[0][1], {}) == sent[0][1]  # nothing to name outside a status label


@pytest.mark.parametrize(
    ("conclude", "expected"),
    [
        (
            lambda c: c.conclude(officer(0), SYS, STEP, result=ResultCode.DENIED, reason="不符合条件"),
            DecisionReported(result="denied", reason="不符合条件"),
        ),
        (
            lambda c: c.conclude(CLERK, WINDOW, STEP, result=ResultCode.VOIDED, reason="重复申请"),
            StatusReported(step="case.concluded", label="办结：作废", occurred_at=STEP),
        ),
        (
            lambda c: c.withdraw(PARTNER, Channel.PARTNER_CITY, STEP, reason="申请人撤回"),
            StatusReported(step="case.concluded", label="办结：撤回", occurred_at=STEP),
        ),
    ],
)
def test_only_approved_or_denied_is_a_decision_the_other_city_mirrors(conclude: Any, expected: Any) -> None:
    case = received()
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
    if isinstance(expected, DecisionReported):
        _route(case)
        case.claim_task(officer(0), SYS, STEP, department=DEPT)
        case.reject_task(officer(0), SYS, STEP, department=DEPT, reason="经营场所不符合要求")
    conclude(case)
    assert reports(case)[-1][1] == expected


def test_staff_only_steps_are_flagged_and_suspension_words_follow_the_timeline() -> None:
    case = received()
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
    _route(case)
    case.suspend(
        officer(0), SYS, STEP, kind=SuspensionKind.SITE_SURVEY, reason="需现场勘查", expected_end=DEADLINE
    )
    case.resume(officer(0), SYS, STEP)
    case.request_extension(officer(0), SYS, STEP, kind=ExtensionKind.STANDARD, reason="情况复杂")
    labels = [(p.step, p.label, p.internal) for _, p in reports(case)[3:]]
    assert labels == [
        ("case.suspended", "挂起：现场勘查", False),
        ("case.resumed", "恢复办理", False),
        ("case.extension_requested", "申请延期", True),
    ]


def test_an_instant_approval_here_is_the_decision_the_other_city_mirrors() -> None:
    case = received()
    case.approve_instantly(
        INSTANT, SYS, STEP, rule_id="materials-complete", rule_version="1", receipt_number="SL-2",
        query_password_hash=PASSWORD_HASH,
    )  # fmt: skip
    assert reports(case)[-1] == (2, DecisionReported(result="approved", reason=None))


def test_our_refusal_mailing_and_archiving_go_back_as_their_own_kinds() -> None:
    case = received()
    case.refuse_acceptance(CLERK, WINDOW, STEP, reason="经营场所不在本市", path_forward="向所在地申请")
    assert reports(case)[-1][1] == HandoffRefused(reason="经营场所不在本市", path_forward="向所在地申请")
    mailed = received()
    mailed.record_paper_posted(PARTNER, Channel.PARTNER_CITY, STEP, waybill_number="EMS1", carrier="EMS")
    mailed.accept(CLERK, WINDOW, STEP, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
    _route(mailed)
    _sign_all(mailed)
    mailed.conclude(officer(2), SYS, STEP, result=ResultCode.APPROVED)
    mailed.mail_result(CLERK, WINDOW, STEP, waybill_number="EMS2")
    mailed.archive_paper_materials(CLERK, WINDOW, STEP)
    sent = reports(mailed)
    assert sent[1][1] == StatusReported(
        step="case.paper_posted", label="收件地已寄出纸质材料（EMS EMS1）", occurred_at=STEP, internal=True
    )  # the receiving city's own news: counted in the sequence, not shown there again
    assert sent[-2][1] == ResultDelivered(method="mail", reference="EMS2", carrier="EMS", delivered_at=STEP)
    assert sent[-1][1] == MaterialsArchived(archived_at=STEP)
