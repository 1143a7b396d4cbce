"""Commands as table rows: each takes the case and a request id (this module holds no tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.case import Assignment, Case, CaseStatus, MaterialIssue, ResultCode, SuspensionKind, UploadedFile
from tests.unit.case_builders import (
    CITIZEN,
    CLERK,
    COMMITMENT,
    DEADLINE,
    DEPT,
    DUE,
    MINIAPP,
    NOW,
    PASSWORD_HASH,
    SYS,
    SYSTEM,
    WINDOW,
    officer,
    sha,
)

Command = Callable[[Case, "str | None"], None]
S = CaseStatus


def accept(actor: Any = CLERK, password_hash: str = PASSWORD_HASH, at: datetime = NOW) -> Command:
    return lambda c, r: c.accept(
        actor, WINDOW, at, receipt_number="SL-1", query_password_hash=password_hash, request_id=r
    )


def accept_missing(
    missing: tuple[str, ...] = ("fire-check",),
    minor: tuple[str, ...] = ("fire-check",),
    blacklisted: bool = False,
    due: Any = DUE,
    commitment: str = COMMITMENT,
) -> Command:
    return lambda c, r: c.accept_with_missing_materials(
        CLERK,
        WINDOW,
        NOW,
        receipt_number="SL-2",
        query_password_hash=PASSWORD_HASH,
        missing=missing,
        minor=minor,
        commitment_sha256=commitment,
        supplement_due=due,
        on_credit_blacklist=blacklisted,
        request_id=r,
    )


def accept_commitment(blacklisted: bool = False, proofs: tuple[str, ...] = ("no-crime-proof",)) -> Command:
    return lambda c, r: c.accept_on_commitment(
        CLERK,
        WINDOW,
        NOW,
        receipt_number="SL-3",
        query_password_hash=PASSWORD_HASH,
        commitment_sha256=COMMITMENT,
        replaced_proofs=proofs,
        on_credit_blacklist=blacklisted,
        request_id=r,
    )


def instant(actor: Any = SYSTEM) -> Command:
    return lambda c, r: c.approve_instantly(
        actor,
        SYS,
        NOW,
        rule_id="MP-07",
        rule_version="3",
        receipt_number="SL-9",
        query_password_hash=PASSWORD_HASH,
        request_id=r,
    )


def deem(actor: Any = SYSTEM) -> Command:
    return lambda c, r: c.deem_accepted(
        actor, SYS, NOW, receipt_number="SL-D", query_password_hash=PASSWORD_HASH, request_id=r
    )


def request(*issues: tuple[str, str]) -> Command:
    listed = [MaterialIssue(material_id=m, reason=why) for m, why in issues]
    return lambda c, r: c.request_materials(CLERK, WINDOW, NOW, issues=listed, request_id=r)


def supplement(actor: Any = CITIZEN, **materials: Any) -> Command:
    return lambda c, r: c.supplement_materials(actor, MINIAPP, NOW, materials=materials, request_id=r)


def route(*assignments: tuple[str, tuple[str, ...]]) -> Command:
    listed = [Assignment(department=d, item_codes=codes) for d, codes in assignments]
    return lambda c, r: c.route(CLERK, WINDOW, NOW, assignments=listed, request_id=r)


def conclude(result: ResultCode, actor: Any = None, **kw: Any) -> Command:
    return lambda c, r: c.conclude(actor or officer(2), SYS, NOW, result=result, request_id=r, **kw)


def suspend(kind: SuspensionKind = SuspensionKind.HEARING, end: Any = DEADLINE, **kw: Any) -> Command:
    return lambda c, r: c.suspend(
        officer(0), SYS, NOW, kind=kind, reason="申请人要求听证", expected_end=end, request_id=r, **kw
    )


def claim(actor: Any = None) -> Command:
    return lambda c, r: c.claim_task(actor or officer(0), SYS, NOW, department=DEPT, request_id=r)


def sign(actor: Any) -> Command:
    return lambda c, r: c.approve_task_step(actor, SYS, NOW, department=DEPT, opinion="同意", request_id=r)


def trip() -> Command:
    return lambda c, r: c.record_trip(
        CLERK, WINDOW, NOW, purpose="窗口提交纸质材料", hall="长沙市民之家", request_id=r
    )


FILE = UploadedFile(sha(7))
HEARING_ISSUE = [MaterialIssue(material_id="survey", reason="补充测绘报告")]
