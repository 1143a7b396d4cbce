"""Who is calling: the role and the scopes a bearer token carries."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated

from litestar.exceptions import PermissionDeniedException
from msgspec import Meta

from domain.case import Actor
from domain.case import Role as DomainRole
from miniapp_api.schemas import ApiStruct


class Role(StrEnum):
    """The kinds of caller the API knows."""

    CITIZEN = "citizen"
    CLERK = "clerk"  # 窗口人员 at a service hall
    OFFICER = "officer"  # department approver
    AUDITOR = "auditor"
    PARTNER = "partner"  # another city's platform (通办)
    MANAGER = "manager"  # 大厅管理员: one hall's windows, slots and queue
    SUPERVISOR = "supervisor"  # 好差评 administration: decides appeals against 差评
    ADMIN = "admin"


Subject = Annotated[str, Meta(min_length=1, max_length=128)]
DisplayName = Annotated[str, Meta(min_length=1, max_length=64)]
DepartmentCode = Annotated[
    str,
    Meta(
        pattern=r"^[0-9A-Za-z_-]{2,32}$",
        description="统一社会信用代码 (18 characters) or an internal department code",
    ),
]
HallCode = Annotated[str, Meta(pattern=r"^[0-9A-Za-z_-]{1,32}$")]
RegionCode = Annotated[str, Meta(pattern=r"^\d{6}$", description="GB/T 2260 administrative division code")]


# msgspec allows a frozen subclass of a mutable Struct; mypy applies dataclass rules instead.
class Principal(ApiStruct, frozen=True):  # type: ignore[misc]
    """The authenticated caller; scopes are None when the role is not limited by them."""

    subject: Subject
    role: Role
    name: DisplayName | None = None
    department: DepartmentCode | None = None
    hall: HallCode | None = None
    region: RegionCode | None = None
    # Granted by the identity provider to callers whose duties need personal data in the clear (a
    # department's stream, say); without it every personal value reaches them masked.
    personal_data: bool = False


def region_covers(scope: str, region: str) -> bool:
    """True when `region` lies inside `scope`: 430000 covers 4301xx, 430100 covers 430102."""
    # GB/T 2260 pads the levels below a province or prefecture with "00".
    prefix = scope
    while prefix.endswith("00"):
        prefix = prefix[:-2]
    return region.startswith(prefix)


def in_department(principal: Principal, department: str) -> bool:
    """True only for a principal scoped to exactly this department."""
    return principal.department is not None and principal.department == department


def in_hall(principal: Principal, hall: str) -> bool:
    """True only for a principal scoped to exactly this hall."""
    return principal.hall is not None and principal.hall == hall


def in_region(principal: Principal, region: str) -> bool:
    """True only for a principal whose region contains this one."""
    return principal.region is not None and region_covers(principal.region, region)


def domain_actor(principal: Principal, roles: Mapping[Role, DomainRole], activity: str) -> Actor:
    """The actor events record, in the roles an activity knows; a citizen's name stays out of the log."""
    role = roles.get(principal.role)
    if role is None:
        raise PermissionDeniedException(f"a {principal.role} takes no part in {activity}")
    name = None if role in (DomainRole.CITIZEN, DomainRole.AGENT) else principal.name
    hall = None if principal.role is Role.ADMIN else principal.hall  # an admin acts for every hall
    return Actor(id=principal.subject, role=role, name=name, department=principal.department, hall=hall)
