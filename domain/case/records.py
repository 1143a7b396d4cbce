"""What a case remembers of each step: the facts deadlines, metrics and notices are computed from."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

import msgspec

from domain.case.status import ResultCode
from domain.case.values import DayUnit, Duration


class AcceptanceMode(StrEnum):
    STANDARD = "standard"  # 受理, including acceptance deemed by law
    MISSING_MATERIALS = "missing_materials"  # 容缺受理
    COMMITMENT = "commitment"  # 告知承诺
    INSTANT = "instant"  # 秒批


class Acceptance(msgspec.Struct, frozen=True, kw_only=True):
    mode: AcceptanceMode
    accepted_on: date  # the deadline clock starts here; when deemed, the day the application was complete
    accepted_at: datetime
    receipt_number: str  # 受理回执号
    query_password_hash: str  # of the 查询密码; the password itself never reaches the case
    deemed: bool = False  # 行政许可法 Art. 32: the office did nothing within 5 days
    supplement_due: date | None = None  # 容缺: the missing minor materials are due by this date
    commitment_sha256: str | None = None  # the applicant's signed commitment (容缺, 告知承诺)
    replaced_proofs: tuple[str, ...] = ()  # 告知承诺: proofs the commitment stands in for
    rule_id: str | None = None  # 秒批: the rule that approved, and its version
    rule_version: str | None = None


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """不予受理: never a bare no; the path forward is part of the decision (不给否决给路径)."""

    reason: str
    path_forward: str
    refused_at: datetime


class SuspensionKind(StrEnum):
    HEARING = "hearing"  # 听证
    INSPECTION = "inspection"  # 检验检测
    APPRAISAL = "appraisal"  # 鉴定
    EXPERT_REVIEW = "expert_review"  # 专家评审
    SITE_SURVEY = "site_survey"  # 现场勘查
    EXTENDED_REVIEW = "extended_review"  # 延长审批
    AWAITING_SUPPLEMENT = "awaiting_supplement"  # 待补正


class Suspension(msgspec.Struct, frozen=True, kw_only=True):
    """One 特别程序 period; its time is excluded from the deadline elsewhere."""

    kind: SuspensionKind
    reason: str
    started_at: datetime
    expected_end: date
    ended_at: datetime | None = None


class ExtensionKind(StrEnum):
    STANDARD = "standard"  # Art. 42: +10 working days, approved by the head of the office
    JOINT = "joint"  # joint or centralised handling: +15 working days

    @property
    def duration(self) -> Duration:
        days = 10 if self is ExtensionKind.STANDARD else 15
        return Duration(days, DayUnit.WORKING_DAY)


class Extension(msgspec.Struct, frozen=True, kw_only=True):
    kind: ExtensionKind
    reason: str
    requested_by: str
    requested_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None


class Conclusion(msgspec.Struct, frozen=True, kw_only=True):
    result: ResultCode
    concluded_at: datetime
    concluded_by: str
    reason: str | None = None
    forwarded_to: str | None = None  # 转报: the authority above that takes the case


class DeliveryMethod(StrEnum):
    E_LICENCE = "e_licence"  # 电子证照 issued
    WINDOW_PICKUP = "window_pickup"  # picked up at a window
    MAIL = "mail"  # EMS


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    method: DeliveryMethod
    reference: str  # licence number, pickup code or waybill number
    delivered_at: datetime
    item_code: str | None = None  # bundles: which child's result


class Pickup(msgspec.Struct, frozen=True, kw_only=True):
    """A result waiting at a window for the applicant (待领取)."""

    code: str
    hall: str
    ready_at: datetime


class Trip(msgspec.Struct, frozen=True, kw_only=True):
    """One in-person visit (跑动); 最多跑一次 and 零跑动 are counted from these."""

    at: datetime
    purpose: str
    hall: str


class Light(StrEnum):
    YELLOW = "yellow"  # 2 working days left or less
    RED = "red"  # overdue


class Supervision(msgspec.Struct, frozen=True, kw_only=True):
    """督办: a warning light raised on the case for one deadline."""

    light: Light
    deadline: date
    raised_on: date


class HandoffState(msgspec.Struct, frozen=True, kw_only=True):
    """Where a case handed to a partner city stands."""

    partner: str  # the handling city's region code
    mode: str
    handoff: UUID
    sent_at: datetime
    partner_number: str | None = None  # the handling city's own 办件编号, once it took the case on
    refused: str | None = None  # why the partner refused it; the case is back with the window
    # 多地联办: each part is decided on its own; the case concludes once every open part is.
    result: ResultCode | None = None
    reason: str | None = None

    @property
    def open(self) -> bool:
        """Still with the partner: neither refused nor decided."""
        return self.refused is None and self.result is None


class Origin(msgspec.Struct, frozen=True, kw_only=True):
    """Where a case received from a partner city came from."""

    partner: str  # the receiving city's region code
    case_id: UUID
    number: str
    mode: str
    handoff: UUID


class PaperPosting(msgspec.Struct, frozen=True, kw_only=True):
    """异地代收代办: the paper originals, posted by the receiving city to the handling city's archive."""

    waybill_number: str
    carrier: str
    posted_at: datetime
    archived_at: datetime | None = None  # the handling city filed them
