"""企业开办 end to end: five departments in parallel, 容缺受理, one result window; the history replays."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.utils import get_topic

from backend.store.mapper import make_mapper
from domain.case import (
    AcceptanceMode,
    Case,
    CaseStatus,
    Channel,
    DeliveryMethod,
    IllegalTransitionError,
    MaterialsMissingError,
    NextAction,
    ResultCode,
    TaskState,
    UploadedFile,
    case_id_for_submission,
    format_case_number,
)
from tests.unit.case_builders import (
    AGENT,
    CLERK,
    COMMITMENT,
    COMPANY_SETUP,
    ENTERPRISE,
    ENTERPRISE_AGENT,
    MINIAPP,
    PASSWORD_HASH,
    SYS,
    SYSTEM,
    T0,
    WINDOW,
    officer,
    sha,
)

pytestmark = pytest.mark.unit

BUNDLE = "430100-QY"
HALL = "长沙市民之家"


def run_company_setup() -> tuple[Case, list[object]]:
    """The whole story; returns the live case and every event it recorded, in order."""
    clock = iter(T0 + timedelta(minutes=10 * n) for n in range(1, 1000))
    history: list[object] = []
    case_id = case_id_for_submission("430100", AGENT.id, "miniapp-7f3a")
    case = Case.submit(
        AGENT,
        MINIAPP,
        T0,
        case_id=case_id,
        number=format_case_number("430100", T0.date(), 42),
        applicant=ENTERPRISE,
        agent=ENTERPRISE_AGENT,
        item_code=BUNDLE,
        catalogue_version="2026.05",
        children=COMPANY_SETUP,
        form={
            "企业名称": "长沙星城科技有限公司",
            "注册资本": 1000000,
            "经营范围": ["软件开发", "信息技术咨询"],
        },
        materials={
            "articles": UploadedFile(sha(11)),
            "lease": UploadedFile(sha(12)),
            "id-cards": UploadedFile(sha(13)),
        },
        request_id="miniapp-7f3a",
    )
    case.record_trip(CLERK, WINDOW, next(clock), purpose="现场核验身份", hall=HALL)
    case.accept_with_missing_materials(
        CLERK,
        WINDOW,
        next(clock),
        receipt_number="SL-430100-0042",
        query_password_hash=PASSWORD_HASH,
        missing=["seal-sample"],
        minor=["seal-sample", "bank-form"],
        commitment_sha256=COMMITMENT,
        supplement_due=T0.date() + timedelta(days=5),
        on_credit_blacklist=False,
    )
    history += case.collect_events()
    assert case.missing_minor == {"seal-sample"}

    case.route(CLERK, WINDOW, next(clock), assignments=case.bundle_assignments())
    assert case.status is CaseStatus.IN_HANDLING and len(case.tasks) == 5
    for child in COMPANY_SETUP:
        for n in range(3):  # 承办 → 审核 → 批准, a different officer at each step
            signer = officer(n, child.department)
            case.claim_task(signer, SYS, next(clock), department=child.department)
            case.approve_task_step(signer, SYS, next(clock), department=child.department, opinion="同意")
    history += case.collect_events()
    assert all(t.state is TaskState.APPROVED for t in case.tasks.values())

    # Every department said yes, but the 容缺 material is still owed: no 出证 yet.
    with pytest.raises(MaterialsMissingError):
        case.conclude(officer(2), SYS, next(clock), result=ResultCode.APPROVED)
    assert case.collect_events() == []
    case.supplement_materials(AGENT, MINIAPP, next(clock), materials={"seal-sample": UploadedFile(sha(14))})
    assert case.missing_minor == frozenset()

    case.conclude(CLERK, WINDOW, next(clock), result=ResultCode.APPROVED)  # 统一出件 at one window
    for child, licence in zip(COMPANY_SETUP[:3], ("营业执照", "印章备案", "发票领用"), strict=True):
        case.issue_e_licence(
            SYSTEM, SYS, next(clock), licence_number=f"{licence}-0042", item_code=child.item_code
        )
    case.prepare_pickup(CLERK, WINDOW, next(clock), pickup_code="8421", hall=HALL)
    case.record_trip(AGENT, Channel.KIOSK, next(clock), purpose="领取纸质执照和印章", hall=HALL)
    case.record_pickup(CLERK, WINDOW, next(clock), pickup_code="8421")
    history += case.collect_events()
    return case, history


def test_company_setup_from_submission_to_delivery() -> None:
    case, history = run_company_setup()
    assert case.status is CaseStatus.DELIVERED and case.status_label == "已送达"
    assert case.is_bundle and case.item_codes == tuple(c.item_code for c in COMPANY_SETUP)
    assert case.acceptance is not None and case.acceptance.mode is AcceptanceMode.MISSING_MATERIALS
    assert case.conclusion is not None and case.conclusion.result is ResultCode.APPROVED
    assert case.supplement_attempts == 1
    assert case.trips == 2  # 最多跑一次 is for the metrics to judge; the case only counts
    assert [d.method for d in case.deliveries] == [DeliveryMethod.E_LICENCE] * 3 + [
        DeliveryMethod.WINDOW_PICKUP
    ]
    assert {t.department for t in case.tasks.values()} == {c.department for c in COMPANY_SETUP}
    assert all(len(t.signatures) == 3 for t in case.tasks.values())
    assert [s.action for s in case.applicant_next_steps()] == [NextAction.RATE]
    # Versions run 1, 2, 3, … with no gap, and every event records who, how and when.
    assert [e.originator_version for e in history] == list(range(1, len(history) + 1))  # type: ignore[attr-defined]
    assert case.version == len(history)
    stamps = [e.timestamp for e in history]  # type: ignore[attr-defined]
    assert stamps == sorted(stamps)
    assert {get_topic(type(e)).split(":")[0] for e in history} == {"domain.case.aggregate"}


def test_the_case_rebuilt_from_its_events_equals_the_live_one() -> None:
    case, history = run_company_setup()
    rebuilt = None
    for e in history:
        rebuilt = e.mutate(rebuilt)  # type: ignore[attr-defined]
    assert rebuilt == case
    assert rebuilt is not None and rebuilt.status is CaseStatus.DELIVERED


def test_the_history_survives_the_event_store_encoding_and_snapshots() -> None:
    case, history = run_company_setup()
    mapper = make_mapper()
    stored = [mapper.to_stored_event(e) for e in history]  # type: ignore[arg-type]
    rebuilt = None
    for record in stored:
        rebuilt = mapper.to_domain_event(record).mutate(rebuilt)  # type: ignore[attr-defined]
    assert rebuilt == case

    snapshot = mapper.to_domain_event(mapper.to_stored_event(Snapshot.take(case)))
    assert snapshot.mutate(None) == case  # type: ignore[attr-defined]


def test_the_state_at_an_earlier_version_is_the_state_then() -> None:
    _, history = run_company_setup()
    at_acceptance = None
    for e in history[:3]:
        at_acceptance = e.mutate(at_acceptance)  # type: ignore[attr-defined]
    assert at_acceptance is not None
    assert at_acceptance.status is CaseStatus.ACCEPTED and at_acceptance.tasks == {}
    steps = at_acceptance.applicant_next_steps()
    assert [s.action for s in steps] == [NextAction.SUPPLEMENT_MATERIALS]
    assert [m.material_id for m in steps[0].materials] == ["seal-sample"]
    assert steps[0].due == T0.date() + timedelta(days=5)


def test_a_retried_submission_gets_the_same_case_id() -> None:
    first = case_id_for_submission("430100", AGENT.id, "miniapp-7f3a")
    assert first == case_id_for_submission("430100", AGENT.id, "miniapp-7f3a")
    assert first != case_id_for_submission("430100", "agent-2", "miniapp-7f3a")
    assert first != case_id_for_submission("430200", AGENT.id, "miniapp-7f3a")
    assert isinstance(first, UUID)


def test_a_bundle_waits_for_its_slowest_department() -> None:
    # Replay to just before the last department's 批准, then try to conclude.
    _, history = run_company_setup()
    last_approval = max(i for i, e in enumerate(history) if type(e).__name__ == "TaskApproved")
    partial = None
    for e in history[:last_approval]:
        partial = e.mutate(partial)  # type: ignore[attr-defined]
    assert partial is not None
    with pytest.raises(IllegalTransitionError, match="undecided"):
        partial.conclude(CLERK, WINDOW, T0 + timedelta(days=2), result=ResultCode.APPROVED)
    assert partial.collect_events() == []
