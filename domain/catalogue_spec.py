"""The service catalogue's value objects (事项清单): what one item or bundle promises the applicant.

Events carry these whole, so a case can say which published version it was filed
under. They are frozen, and sequences are tuples, so two specs compare by value.
Unknown fields are refused so that a typo in the data file fails loudly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

# 事项类型. Values are stable identifiers; the labels are what people read.
ItemKind = Literal["licensing", "confirmation", "benefit", "levy", "other_power", "public_service"]
KIND_LABELS: dict[ItemKind, str] = {
    "licensing": "行政许可",
    "confirmation": "行政确认",
    "benefit": "行政给付",
    "levy": "行政征收",
    "other_power": "其他行政权力",
    "public_service": "公共服务",
}

# 办理方式. instant_approval (秒批) and commitment (告知承诺) say the item is eligible for them.
Mode = Literal["full_online", "window", "remote_collect", "multi_city", "instant_approval", "commitment"]
MODE_LABELS: dict[Mode, str] = {
    "full_online": "全程网办",
    "window": "窗口办理",
    "remote_collect": "异地代收代办",
    "multi_city": "多地联办",
    "instant_approval": "秒批",
    "commitment": "告知承诺",
}
# The modes a partner city can serve an item in (跨城通办).
TongbanMode = Literal["full_online", "remote_collect", "multi_city"]
TONGBAN_MODES: frozenset[str] = frozenset({"full_online", "remote_collect", "multi_city"})

TimeUnit = Literal["working_day", "natural_day"]
UNIT_LABELS: dict[TimeUnit, str] = {"working_day": "工作日", "natural_day": "自然日"}

# required: must be there to accept; minor: may be missing at 容缺受理 and supplied later.
Requirement = Literal["required", "minor"]
Audience = Literal["person", "enterprise"]


class Department(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The handling department (实施机构)."""

    code: str  # short, stable, ours: "SCJGJ"
    name: str
    credit_code: str  # 统一社会信用代码 (GB 32100)


class Material(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One 申请材料."""

    id: str
    name: str
    requirement: Requirement = "required"
    # The 电子证照 type that can stand in for it ("居民身份证"), or None.
    replaceable_by_elicence: str | None = None
    originals: int = 1  # 原件份数
    copies: int = 0  # 复印件份数
    note: str = ""


class TimeLimit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A 时限; amount 0 means 即办 (done on the spot)."""

    amount: int
    unit: TimeUnit


class Location(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where to go in person: a hall and its window (办理地点)."""

    hall: str
    window: str


class TongbanPartner(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A partner city that serves this item for us (跨城通办), and how."""

    region: str  # GB/T 2260 code, "430200"
    city: str
    mode: TongbanMode


class ServiceItemSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything the 办事指南 of one 事项 says."""

    code: str  # 实施编码, GB/T 39554.1 style: 实施机构 credit code + 12-digit 基本编码
    name: str
    department: Department
    kind: ItemKind
    summary: str
    conditions: str  # 受理条件
    audience: tuple[Audience, ...]
    materials: tuple[Material, ...]
    statutory_limit: TimeLimit  # 法定时限
    promised_limit: TimeLimit  # 承诺时限
    trips: int  # 跑动次数: 0 零跑动, 1 最多跑一次
    modes: tuple[Mode, ...]
    where: tuple[Location, ...]
    basis: str  # 设定依据
    appointment_required: bool = False
    fee: Decimal = Decimal("0")  # yuan
    fee_basis: str = ""
    tongban: tuple[TongbanPartner, ...] = ()
    keywords: tuple[str, ...] = ()  # what citizens type: "开公司", "上户口"


class BundleSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """一件事一次办: child items across departments, one form, one set of materials, one result window."""

    code: str
    name: str
    lead_department: Department  # 牵头部门
    summary: str
    children: tuple[str, ...]  # 事项编码 of the child items
    target: TimeLimit  # the bundle's promise; it follows the slowest child
    trips: int
    modes: tuple[Mode, ...]
    materials: tuple[Material, ...]  # the one shared set (一套材料)
    where: tuple[Location, ...]
    basis: str
    tongban: tuple[TongbanPartner, ...] = ()
    keywords: tuple[str, ...] = ()
