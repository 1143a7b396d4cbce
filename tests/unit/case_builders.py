"""Actors, applicants and cases in named states, shared by the case tests (this module holds no tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.case import (
    Actor,
    Agent,
    Assignment,
    BundleChild,
    Case,
    Channel,
    Enterprise,
    ExtensionKind,
    MaterialIssue,
    Person,
    ResultCode,
    ReturnTarget,
    Role,
    SuspensionKind,
    UploadedFile,
    format_case_number,
)
from domain.case.checks import BEIJING
from domain.personal import Address, CreditCode, IdNumber, PersonName, Phone

T0 = datetime(2026, 5, 6, 9, 0, tzinfo=BEIJING)  # a Wednesday
STEP = T0 + timedelta(hours=1)  # when the builders act
NOW = T0 + timedelta(days=1)  # when a table's command runs
DUE = T0.date() + timedelta(days=10)  # 容缺 supplement due date
LATE = T0 + timedelta(days=20)  # after DUE and after DEADLINE
DEADLINE = T0.date() + timedelta(days=5)

WINDOW, MINIAPP, SYS = Channel.HALL_WINDOW, Channel.MINIAPP, Channel.SYSTEM

CITIZEN = Actor(id="citizen-1", role=Role.CITIZEN, name="张三")
STRANGER = Actor(id="citizen-2", role=Role.CITIZEN, name="李四")
AGENT = Actor(id="agent-1", role=Role.AGENT, name="王五")
CLERK = Actor(id="clerk-1", role=Role.CLERK, name="窗口一", hall="长沙市民之家")
SYSTEM = Actor(id="system", role=Role.SYSTEM)
PARTNER = Actor(id="430200", role=Role.PARTNER, name="株洲")

DEPT = "长沙市市场监督管理局"
ITEM = "430100-XK-001"


def officer(n: int, department: str = DEPT) -> Actor:
    return Actor(id=f"officer-{department}-{n}", role=Role.OFFICER, department=department)


def sha(n: int) -> str:
    return f"{n:064x}"


PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g"
COMMITMENT = sha(999)

PERSON = Person(
    name=PersonName("张三"),
    identity=IdNumber("430102199003071234"),
    phone=Phone("13812341234"),
    address=Address.parse("长沙市岳麓区麓山南路1号"),
)
ENTERPRISE = Enterprise(
    name="长沙星城科技有限公司",
    identity=CreditCode("91430100MA4L00000F"),
    phone=Phone("0731-88880000"),
    address=Address.parse("长沙市天心区"),
)
ENTERPRISE_AGENT = Agent(
    name=PersonName("王五"), identity=IdNumber("430103198502021110"), phone=Phone("13900001111")
)

# 企业开办: 设立登记 + 印章刻制 + 发票申领 + 社保登记 + 银行预约开户.
COMPANY_SETUP = (
    BundleChild(item_code="430100-QY-01", department="长沙市市场监督管理局"),
    BundleChild(item_code="430100-QY-02", department="长沙市公安局"),
    BundleChild(item_code="430100-QY-03", department="国家税务总局长沙市税务局"),
    BundleChild(item_code="430100-QY-04", department="长沙市人力资源和社会保障局"),
    BundleChild(item_code="430100-QY-05", department="中国人民银行长沙中心支行"),
)


def submission(**overrides: Any) -> dict[str, Any]:
    """The arguments of a single-item submission, as Case.submit takes them."""
    args: dict[str, Any] = {
        "case_id": UUID(int=1),
        "number": format_case_number("430100", T0.date(), 1),
        "applicant": PERSON,
        "item_code": ITEM,
        "catalogue_version": "2026.05",
        "form": {"经营范围": "软件开发", "注册资本": 100, "股东": [{"姓名": "张三", "比例": 1.0}]},
        "materials": {"id-card": UploadedFile(sha(1)), "lease": UploadedFile(sha(2))},
        "request_id": "submit-1",
    }
    args.update(overrides)
    return args


def submit(**overrides: Any) -> Case:
    """A case just submitted by CITIZEN at T0, its events collected."""
    case = Case.submit(CITIZEN, MINIAPP, T0, **submission(**overrides))
    case.collect_events()
    return case


def _accept(case: Case) -> None:
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-0001", query_password_hash=PASSWORD_HASH)


def _route(case: Case) -> None:
    case.route(CLERK, WINDOW, STEP, assignments=[Assignment(department=DEPT, item_codes=(ITEM,))])


def _sign_all(case: Case) -> None:
    for n in range(3):
        case.claim_task(officer(n), SYS, STEP, department=DEPT)
        case.approve_task_step(officer(n), SYS, STEP, department=DEPT, opinion="同意")


def _requested(case: Case) -> None:
    issue = MaterialIssue(material_id="lease", reason="租赁合同未盖章")
    case.request_materials(
        CLERK, WINDOW, STEP, issues=[issue, MaterialIssue(material_id="plan", reason="缺平面图")]
    )


def _missing(case: Case) -> None:
    case.accept_with_missing_materials(
        CLERK,
        WINDOW,
        STEP,
        receipt_number="SL-0002",
        query_password_hash=PASSWORD_HASH,
        missing=["fire-check"],
        minor=["fire-check", "photo"],
        commitment_sha256=COMMITMENT,
        supplement_due=DUE,
        on_credit_blacklist=False,
    )


def _on_commitment(case: Case) -> None:
    case.accept_on_commitment(
        CLERK,
        WINDOW,
        STEP,
        receipt_number="SL-0003",
        query_password_hash=PASSWORD_HASH,
        commitment_sha256=COMMITMENT,
        replaced_proofs=["no-crime-proof"],
        on_credit_blacklist=False,
    )


def _conclude(case: Case) -> None:
    case.conclude(officer(2), SYS, STEP, result=ResultCode.APPROVED)


def _claimed(case: Case, step: int = 0) -> None:
    for n in range(step):
        case.claim_task(officer(n), SYS, STEP, department=DEPT)
        case.approve_task_step(officer(n), SYS, STEP, department=DEPT, opinion="同意")
    case.claim_task(officer(step), SYS, STEP, department=DEPT)


def _rejected(case: Case) -> None:
    _claimed(case)
    case.reject_task(officer(0), SYS, STEP, department=DEPT, reason="经营场所不符合要求")


def _suspended(case: Case, kind: SuspensionKind = SuspensionKind.SITE_SURVEY) -> None:
    issues = (
        [MaterialIssue(material_id="survey", reason="补充测绘报告")]
        if kind is SuspensionKind.AWAITING_SUPPLEMENT
        else []
    )
    case.suspend(officer(0), SYS, STEP, kind=kind, reason="需现场勘查", expected_end=DEADLINE, issues=issues)


def _extension_requested(case: Case) -> None:
    case.request_extension(officer(0), SYS, STEP, kind=ExtensionKind.STANDARD, reason="情况复杂")


def _then(*steps: Callable[[Case], object]) -> Callable[[], tuple[Case, list[Any]]]:
    """A builder that submits, then runs each step on the case (commands change it in place)."""

    def build() -> tuple[Case, list[Any]]:
        case = Case.submit(CITIZEN, MINIAPP, T0, **submission())
        for step in steps:
            step(case)
        return case, list(case.collect_events())

    return build


def _supplemented(case: Case) -> None:
    materials = {"lease": UploadedFile(sha(20)), "plan": UploadedFile(sha(21))}
    case.supplement_materials(CITIZEN, MINIAPP, STEP, materials=materials)


def _instant(case: Case) -> None:
    case.approve_instantly(
        SYSTEM,
        SYS,
        STEP,
        rule_id="MP-07",
        rule_version="3",
        receipt_number="SL-9",
        query_password_hash=PASSWORD_HASH,
    )


# Every named state the transition tables start from, built through the public commands.
STATES: dict[str, Callable[[], tuple[Case, list[Any]]]] = {
    "submitted": _then(),
    "pre_review_passed": _then(lambda c: c.pass_pre_review(CLERK, WINDOW, STEP)),
    "awaiting_correction": _then(_requested),
    "pre_review": _then(_requested, _supplemented),
    "not_accepted": _then(
        lambda c: c.refuse_acceptance(
            CLERK, WINDOW, STEP, reason="非本机关职权", path_forward="请向省市场监管局申请"
        )
    ),
    "accepted": _then(_accept),
    "missing_materials": _then(_missing),
    "missing_all_approved": _then(_missing, _route, _sign_all),
    "on_commitment": _then(_on_commitment),
    "in_handling": _then(_accept, _route),
    "claimed": _then(_accept, _route, _claimed),
    "claimed_review": _then(_accept, _route, lambda c: _claimed(c, 1)),
    "claimed_approve": _then(_accept, _route, lambda c: _claimed(c, 2)),
    "returned_to_window": _then(
        _accept,
        _route,
        _claimed,
        lambda c: c.return_task(
            officer(0), SYS, STEP, department=DEPT, to=ReturnTarget.WINDOW, reason="材料不清"
        ),
    ),
    "all_approved": _then(_accept, _route, _sign_all),
    "task_rejected": _then(_accept, _route, _rejected),
    "suspended": _then(_accept, _route, _suspended),
    "awaiting_supplement": _then(
        _accept, _route, lambda c: _suspended(c, SuspensionKind.AWAITING_SUPPLEMENT)
    ),
    "extension_requested": _then(_accept, _route, _extension_requested),
    "extended": _then(
        _accept, _route, _extension_requested, lambda c: c.approve_extension(officer(1), SYS, STEP)
    ),
    "concluded": _then(_accept, _route, _sign_all, _conclude),
    "denied": _then(
        _accept,
        _route,
        _rejected,
        lambda c: c.conclude(officer(0), SYS, STEP, result=ResultCode.DENIED, reason="不符合条件"),
    ),
    "ready_for_pickup": _then(
        _accept,
        _route,
        _sign_all,
        _conclude,
        lambda c: c.prepare_pickup(CLERK, WINDOW, STEP, pickup_code="8421", hall="长沙市民之家"),
    ),
    "delivered": _then(
        _accept,
        _route,
        _sign_all,
        _conclude,
        lambda c: c.issue_e_licence(SYSTEM, SYS, STEP, licence_number="L-1"),
    ),
    "commitment_approved": _then(_on_commitment, _route, _sign_all, _conclude),
    "revoked": _then(
        _on_commitment,
        _route,
        _sign_all,
        _conclude,
        lambda c: c.revoke_commitment_approval(officer(0), SYS, STEP, reason="核查不实"),
    ),
    "withdrawn": _then(lambda c: c.withdraw(CITIZEN, MINIAPP, STEP, reason="不再需要")),
    "voided": _then(lambda c: c.conclude(CLERK, WINDOW, STEP, result=ResultCode.VOIDED, reason="重复申报")),
    "instantly_approved": _then(_instant),
}


def build(state: str) -> Case:
    """A case in the named state, with its events collected."""
    return STATES[state]()[0]


def build_with_history(state: str) -> tuple[Case, list[Any]]:
    """A case in the named state, and every event that brought it there."""
    return STATES[state]()
