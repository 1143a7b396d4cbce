"""The rules behind single transitions: dates, 一次性告知, 容缺, tasks, procedures, 督办, next steps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.case import (
    AcceptanceMode,
    Actor,
    Assignment,
    BundleChild,
    CaseStatus,
    DayUnit,
    Duration,
    ExtensionKind,
    IllegalTransitionError,
    InvalidCommandError,
    Light,
    MaterialIssue,
    NextAction,
    NotAuthorisedActorError,
    ResultCode,
    ReturnTarget,
    Role,
    SuspensionKind,
    TaskState,
    TaskStep,
    UploadedFile,
)
from domain.case.base import REMEMBERED_REQUESTS
from tests.unit.case_builders import (
    CITIZEN,
    CLERK,
    COMPANY_SETUP,
    DEADLINE,
    DEPT,
    ENTERPRISE,
    ENTERPRISE_AGENT,
    ITEM,
    LATE,
    MINIAPP,
    NOW,
    PASSWORD_HASH,
    SYS,
    SYSTEM,
    T0,
    WINDOW,
    build,
    officer,
    sha,
    submit,
)

pytestmark = pytest.mark.unit


def test_times_are_kept_in_beijing_time_and_dates_are_beijing_dates() -> None:
    case = submit()
    late_evening_utc = datetime(2026, 5, 6, 17, 30, tzinfo=UTC)  # 01:30 on the 7th in 长沙
    case.accept(CLERK, WINDOW, late_evening_utc, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
    (accepted,) = case.collect_events()
    assert accepted.timestamp == late_evening_utc
    assert accepted.timestamp.utcoffset() == timedelta(hours=8)
    assert case.acceptance is not None and case.acceptance.accepted_on.isoformat() == "2026-05-07"


def test_deemed_acceptance_counts_from_the_day_of_submission() -> None:
    case = submit()
    case.deem_accepted(
        SYSTEM, SYS, T0 + timedelta(days=8), receipt_number="SL-D", query_password_hash=PASSWORD_HASH
    )
    assert case.acceptance is not None
    assert case.acceptance.deemed and case.acceptance.accepted_on == T0.date()
    assert case.acceptance.accepted_at == T0 + timedelta(days=8)


def test_after_a_notice_a_deemed_acceptance_counts_from_the_completing_supplement() -> None:
    case = build("awaiting_correction")
    supplied = {"lease": UploadedFile(sha(60)), "plan": UploadedFile(sha(61))}
    case.supplement_materials(CITIZEN, MINIAPP, T0 + timedelta(days=3), materials=supplied)
    case.deem_accepted(
        SYSTEM, SYS, T0 + timedelta(days=9), receipt_number="SL-D", query_password_hash=PASSWORD_HASH
    )
    assert case.acceptance is not None and case.acceptance.accepted_on == (T0 + timedelta(days=3)).date()


def test_a_one_time_notice_may_be_followed_only_about_what_was_resupplied() -> None:
    case = build("pre_review")  # lease and plan were requested, then supplied
    case.request_materials(
        CLERK, WINDOW, NOW, issues=[MaterialIssue(material_id="plan", reason="平面图缺少尺寸标注")]
    )
    assert case.status is CaseStatus.AWAITING_CORRECTION and case.requested == {"plan": "平面图缺少尺寸标注"}
    assert case.notices == 2


def test_supplements_are_counted_and_the_notice_is_worked_off_item_by_item() -> None:
    case = build("awaiting_correction")
    case.supplement_materials(CITIZEN, MINIAPP, NOW, materials={"lease": UploadedFile(sha(30))})
    (first,) = case.collect_events()
    assert first.attempt == 1 and first.outstanding == ("plan",)
    steps = case.applicant_next_steps()
    assert [(s.action, [m.material_id for m in s.materials]) for s in steps] == [
        (NextAction.SUPPLEMENT_MATERIALS, ["plan"])
    ]
    case.supplement_materials(CITIZEN, MINIAPP, NOW, materials={"plan": UploadedFile(sha(31))})
    (second,) = case.collect_events()
    assert second.attempt == 2 and second.outstanding == ()
    assert case.status is CaseStatus.PRE_REVIEW and case.supplement_attempts == 2
    assert case.materials["lease"] == UploadedFile(sha(30))
    assert case.applicant_next_steps() == ()


def test_supplying_the_missing_minor_material_clears_the_rongque() -> None:
    case = build("missing_materials")
    assert case.acceptance is not None and case.acceptance.mode is AcceptanceMode.MISSING_MATERIALS
    assert [s.action for s in case.applicant_next_steps()] == [NextAction.SUPPLEMENT_MATERIALS]
    case.supplement_materials(CITIZEN, MINIAPP, NOW, materials={"fire-check": UploadedFile(sha(40))})
    assert case.missing_minor == frozenset() and case.status is CaseStatus.ACCEPTED
    with pytest.raises(IllegalTransitionError):
        case.reject_for_missing_supplement(SYSTEM, SYS, LATE)


def test_rongque_not_supplied_in_time_is_rejected_by_the_system() -> None:
    case = build("missing_materials")
    case.reject_for_missing_supplement(SYSTEM, SYS, LATE)
    assert case.conclusion is not None and case.conclusion.result is ResultCode.SUPPLEMENT_OVERDUE
    assert "fire-check" in (case.conclusion.reason or "")
    assert case.status is CaseStatus.CONCLUDED


def test_instant_approval_records_its_rule() -> None:
    case = build("instantly_approved")
    assert case.acceptance is not None and (case.acceptance.rule_id, case.acceptance.rule_version) == (
        "MP-07",
        "3",
    )
    assert case.acceptance.mode is AcceptanceMode.INSTANT and case.approved


def test_a_task_returned_to_the_previous_step_is_claimed_again_there() -> None:
    case = build("claimed_review")
    case.return_task(officer(1), SYS, NOW, department=DEPT, to=ReturnTarget.PREVIOUS_STEP, reason="意见不全")
    task = case.tasks[DEPT]
    assert (task.step, task.state, task.claimed_by, task.reason) == (
        TaskStep.UNDERTAKE,
        TaskState.WAITING,
        None,
        "意见不全",
    )
    case.claim_task(officer(0), SYS, NOW, department=DEPT)
    assert case.tasks[DEPT].claimed_by == officer(0).id


def test_a_task_returned_to_the_window_is_reopened_by_routing_it_again() -> None:
    case = build("returned_to_window")
    assert case.tasks[DEPT].state is TaskState.RETURNED
    case.route(CLERK, WINDOW, NOW, assignments=[Assignment(department=DEPT, item_codes=(ITEM,))])
    task = case.tasks[DEPT]
    assert (task.step, task.state, task.routed_at) == (TaskStep.UNDERTAKE, TaskState.WAITING, NOW)


def test_every_step_is_signed_by_the_officer_who_claimed_it() -> None:
    case = build("all_approved")
    task = case.tasks[DEPT]
    assert [(s.step, s.officer_id) for s in task.signatures] == [
        (TaskStep.UNDERTAKE, officer(0).id),
        (TaskStep.REVIEW, officer(1).id),
        (TaskStep.APPROVE, officer(2).id),
    ]
    assert task.state is TaskState.APPROVED and task.decided_at is not None


def test_suspension_periods_are_recorded_one_open_at_a_time() -> None:
    case = build("in_handling")
    for n, kind in enumerate((SuspensionKind.EXPERT_REVIEW, SuspensionKind.INSPECTION)):
        start = NOW + timedelta(days=2 * n)
        case.suspend(
            officer(0), SYS, start, kind=kind, reason="需专业意见", expected_end=DEADLINE + timedelta(days=9)
        )
        assert case.status is CaseStatus.SUSPENDED and case.open_suspension is not None
        case.resume(officer(0), SYS, start + timedelta(days=1))
        assert case.status is CaseStatus.IN_HANDLING and case.open_suspension is None
    assert [(s.kind, s.ended_at - s.started_at) for s in case.suspensions if s.ended_at] == [
        (SuspensionKind.EXPERT_REVIEW, timedelta(days=1)),
        (SuspensionKind.INSPECTION, timedelta(days=1)),
    ]


def test_a_waiting_for_supplement_suspension_carries_its_list() -> None:
    case = build("awaiting_supplement")
    steps = case.applicant_next_steps()
    assert [m.material_id for m in steps[0].materials] == ["survey"]
    case.supplement_materials(CITIZEN, MINIAPP, NOW, materials={"survey": UploadedFile(sha(50))})
    assert case.requested == {} and case.status is CaseStatus.SUSPENDED  # the officer resumes


@pytest.mark.parametrize(
    ("kind", "days"),
    [(ExtensionKind.STANDARD, 10), (ExtensionKind.JOINT, 15)],
)
def test_an_approved_extension_is_recorded_with_its_length(kind: ExtensionKind, days: int) -> None:
    case = build("in_handling")
    case.request_extension(officer(0), SYS, NOW, kind=kind, reason="需多部门会商")
    case.approve_extension(officer(1), SYS, NOW)
    (granted,) = case.extensions
    assert granted.kind.duration == Duration(days, DayUnit.WORKING_DAY)
    assert (granted.requested_by, granted.approved_by) == (officer(0).id, officer(1).id)
    assert case.extension_request is None


def test_overdue_supervision_is_raised_once_a_day_and_a_yellow_light_once_a_deadline() -> None:
    case = build("in_handling")
    for _ in range(3):
        case.warn_due_soon(SYSTEM, SYS, NOW, deadline=DEADLINE, working_days_left=1)
        case.mark_overdue(SYSTEM, SYS, LATE, deadline=DEADLINE)
        case.mark_overdue(SYSTEM, SYS, LATE + timedelta(hours=3), deadline=DEADLINE)
    case.mark_overdue(SYSTEM, SYS, LATE + timedelta(days=1), deadline=DEADLINE)
    case.warn_due_soon(SYSTEM, SYS, NOW, deadline=DEADLINE + timedelta(days=14), working_days_left=2)
    raised = case.collect_events()
    assert [(e.light, e.deadline) for e in raised] == [
        (Light.YELLOW, DEADLINE),
        (Light.RED, DEADLINE),
        (Light.RED, DEADLINE),
        (Light.YELLOW, DEADLINE + timedelta(days=14)),
    ]
    assert [type(e).__name__ for e in raised] == ["SupervisionRaised"] * 4


def test_the_case_remembers_the_last_hundred_request_ids() -> None:
    case = build("in_handling")
    for n in range(REMEMBERED_REQUESTS + 5):
        case.record_trip(CLERK, WINDOW, NOW, purpose="咨询", hall="长沙市民之家", request_id=f"trip-{n}")
    assert len(case.processed_requests) == REMEMBERED_REQUESTS
    assert (
        case.processed_requests[-1] == f"trip-{REMEMBERED_REQUESTS + 4}"
        and "trip-4" not in case.processed_requests
    )
    version = case.version
    case.record_trip(CLERK, WINDOW, NOW, purpose="咨询", hall="长沙市民之家", request_id="trip-50")
    assert case.version == version
    case.record_trip(CLERK, WINDOW, NOW, purpose="咨询", hall="长沙市民之家", request_id="trip-0")
    assert case.version == version + 1  # forgotten, so done again: the bound is the price of small snapshots


def test_the_submission_request_id_makes_a_retry_a_no_op() -> None:
    case = submit(request_id="client-9")
    assert case.processed_requests == ["client-9"]


def test_the_form_is_the_case_own_copy() -> None:
    form: dict[str, Any] = {"股东": [{"姓名": "张三"}]}
    case = submit(form=form)
    form["股东"].append({"姓名": "李四"})
    assert case.form == {"股东": [{"姓名": "张三"}]}


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"applicant": ENTERPRISE}, InvalidCommandError),  # an enterprise acts through a 经办人
        ({"children": COMPANY_SETUP[:1]}, InvalidCommandError),
        ({"children": (COMPANY_SETUP[0], COMPANY_SETUP[0])}, InvalidCommandError),
        (
            {"children": (COMPANY_SETUP[0], BundleChild(item_code="430100-QY-09", department=" "))},
            InvalidCommandError,
        ),
        ({"form": {"tags": {"a", "b"}}}, InvalidCommandError),
        ({"form": {"ratio": float("nan")}}, InvalidCommandError),
        ({"form": {"nested": {1: "x"}}}, InvalidCommandError),
        ({"materials": {"id-card": UploadedFile("ABC")}}, InvalidCommandError),
        ({"number": ""}, InvalidCommandError),
        ({"catalogue_version": " "}, InvalidCommandError),
    ],
)
def test_a_malformed_submission_is_refused(overrides: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        submit(**overrides)


@pytest.mark.parametrize("role", [Role.OFFICER, Role.SYSTEM])
def test_only_applicants_windows_and_partner_cities_submit(role: Role) -> None:
    from domain.case import Case

    with pytest.raises(NotAuthorisedActorError):
        Case.submit(
            Actor(id="x", role=role),
            SYS,
            T0,
            case_id=UUID(int=2),
            number="43010020260506000002",
            applicant=ENTERPRISE,
            agent=ENTERPRISE_AGENT,
            item_code=ITEM,
            catalogue_version="2026.05",
        )


def test_a_bundle_child_is_routed_only_to_its_own_department() -> None:
    case = submit(applicant=ENTERPRISE, agent=ENTERPRISE_AGENT, item_code="430100-QY", children=COMPANY_SETUP)
    case.accept(CLERK, WINDOW, NOW, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
    case.collect_events()
    wrong = Assignment(department="长沙市公安局", item_codes=(COMPANY_SETUP[0].item_code,))
    with pytest.raises(InvalidCommandError):
        case.route(CLERK, WINDOW, NOW, assignments=[wrong])
    assert case.collect_events() == []
    assert len(case.bundle_assignments()) == 5


@pytest.mark.parametrize(
    ("state", "actions"),
    [
        ("submitted", []),
        ("awaiting_correction", [NextAction.SUPPLEMENT_MATERIALS]),
        ("not_accepted", [NextAction.FOLLOW_GUIDANCE, NextAction.RATE]),
        ("in_handling", []),
        ("ready_for_pickup", [NextAction.COLLECT_RESULT, NextAction.RATE]),
        ("delivered", [NextAction.RATE]),
        ("withdrawn", [NextAction.RATE]),
        ("voided", []),
    ],
)
def test_what_the_applicant_must_do_next(state: str, actions: list[NextAction]) -> None:
    steps = build(state).applicant_next_steps()
    assert [s.action for s in steps] == actions
    assert all(s.action.label for s in steps)


def test_every_status_and_result_reads_in_chinese() -> None:
    assert [s.label for s in CaseStatus][:5] == ["已提交", "预审中", "预审通过", "待补正", "不予受理"]
    assert {r: r.label for r in ResultCode}[ResultCode.SUPPLEMENT_OVERDUE] == "补正超时驳回"
    assert TaskStep.REVIEW.label == "审核"
