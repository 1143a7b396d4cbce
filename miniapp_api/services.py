"""Public routes of the service catalogue: /api/v1/services (办事指南) and /api/v1/bundles (一件事)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol, TypeVar

import msgspec
from litestar import Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter

from domain.catalogue import (
    KIND_LABELS,
    MODE_LABELS,
    UNIT_LABELS,
    BundleSpec,
    ItemKind,
    Mode,
    ServiceItemSpec,
    TimeLimit,
)
from miniapp_api.auth import EXCLUDE_FROM_AUTH
from miniapp_api.schemas import ApiStruct
from projections.catalogue import (
    BundleGuide,
    BundleSummary,
    EntryVersion,
    ServiceGuide,
    ServicePage,
    ServiceSummary,
)

MAX_PAGE_SIZE = 100
T = TypeVar("T")


class CatalogueReader(Protocol):
    """The queries these routes need; projections.catalogue.CatalogueQueries is the real one."""

    async def list_services(
        self,
        *,
        q: str | None = None,
        department: str | None = None,
        mode: str | None = None,
        kind: str | None = None,
        tongban: str | None = None,
        page: int = 1,
        size: int = 20,
    ) -> ServicePage: ...

    async def service(self, code: str) -> ServiceGuide | None: ...

    async def service_versions(self, code: str) -> list[EntryVersion]: ...

    async def list_bundles(self) -> list[BundleSummary]: ...

    async def bundle(self, code: str) -> BundleGuide | None: ...

    async def bundle_versions(self, code: str) -> list[EntryVersion]: ...


# Wire shapes. Nested value objects keep the domain's field names, camelCased by ApiStruct.


class TimeLimitOut(ApiStruct):
    amount: int
    unit: Literal["working_day", "natural_day"]
    label: str  # "3个工作日", or "即办" for 0


class MaterialOut(ApiStruct):
    id: str
    name: str
    requirement: Literal["required", "minor"]  # minor: may be missing at 容缺受理
    replaceable_by_elicence: str | None
    originals: int
    copies: int
    note: str


class LocationOut(ApiStruct):
    hall: str
    window: str


class TongbanOut(ApiStruct):
    region: str
    city: str
    mode: str


class DepartmentOut(ApiStruct):
    code: str
    name: str
    credit_code: str | None = None


class ModeOut(ApiStruct):
    mode: str
    label: str


class ServiceSummaryOut(ApiStruct):
    code: str
    name: str
    department: DepartmentOut
    kind: str
    kind_label: str
    modes: list[ModeOut]
    tongban_regions: list[str]
    promised_limit: TimeLimitOut
    trips: int
    fee: Decimal
    version: int
    status: str


class ServicePageOut(ApiStruct):
    items: list[ServiceSummaryOut]
    total: int
    page: int
    size: int


class ServiceSpecOut(ApiStruct):
    """The 办事指南 of one version."""

    code: str
    name: str
    department: DepartmentOut
    kind: str
    kind_label: str
    summary: str
    conditions: str
    audience: list[str]
    materials: list[MaterialOut]
    statutory_limit: TimeLimitOut
    promised_limit: TimeLimitOut
    trips: int
    modes: list[ModeOut]
    appointment_required: bool
    fee: Decimal
    fee_basis: str
    where: list[LocationOut]
    basis: str
    tongban: list[TongbanOut]


class BundleRefOut(ApiStruct):
    code: str
    name: str


class ServiceGuideOut(ServiceSpecOut):
    version: int  # what a case filed now records as "filed under version N"
    status: str
    updated_at: datetime
    part_of: list[BundleRefOut]


class VersionOut(ApiStruct):
    version: int
    change: str
    recorded_at: datetime
    reason: str | None = None
    name: str | None = None  # None for a withdrawal
    promised_limit: TimeLimitOut | None = None


class BundleSummaryOut(ApiStruct):
    code: str
    name: str
    lead_department: DepartmentOut
    target: TimeLimitOut
    children: list[str]
    version: int
    status: str


class BundleGuideOut(ApiStruct):
    code: str
    name: str
    lead_department: DepartmentOut
    summary: str
    target: TimeLimitOut  # the bundle follows its slowest child
    trips: int
    modes: list[ModeOut]
    materials: list[MaterialOut]
    where: list[LocationOut]
    basis: str
    tongban: list[TongbanOut]
    children: list[ServiceSummaryOut]
    version: int
    status: str
    updated_at: datetime


# Query parameters, checked by litestar before a handler runs (failures are 400 problems).
Page = Annotated[int, QueryParameter(ge=1, le=10_000, description="1-based page")]
Size = Annotated[
    int, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description=f"items per page, ≤ {MAX_PAGE_SIZE}")
]
Keyword = Annotated[str | None, QueryParameter(max_length=50, description="in name, department or materials")]
DepartmentCode = Annotated[str | None, QueryParameter(pattern=r"^[A-Z]{2,12}$", description="e.g. SCJGJ")]
Region = Annotated[
    str | None, QueryParameter(pattern=r"^\d{6}$", description="通办 partner region, e.g. 430200")
]

_PUBLIC = {EXCLUDE_FROM_AUTH: True}
# The catalogue changes at deployments, not by the minute.
_CACHE = CacheControlHeader(max_age=60, public=True)


def catalogue_router(queries: CatalogueReader) -> Router:
    """GET routes for the catalogue; public, since the 办事指南 is published information."""

    @get("/services", opt=_PUBLIC, security=[{}], cache_control=_CACHE, summary="List and search items")
    async def list_services(
        q: Keyword = None,
        department: DepartmentCode = None,
        mode: FromQuery[Mode | None] = None,
        kind: FromQuery[ItemKind | None] = None,
        tongban: Region = None,
        page: Page = 1,
        size: Size = 20,
    ) -> ServicePageOut:
        found = await queries.list_services(
            q=q, department=department, mode=mode, kind=kind, tongban=tongban, page=page, size=size
        )
        return ServicePageOut(
            items=[_summary(s) for s in found.items], total=found.total, page=found.page, size=found.size
        )

    @get("/services/{code:str}", opt=_PUBLIC, security=[{}], cache_control=_CACHE, summary="One item's guide")
    async def service(code: FromPath[str]) -> ServiceGuideOut:
        guide = await queries.service(code)
        if guide is None:
            raise NotFoundException(f"no service item {code}")
        return ServiceGuideOut(
            **_spec_fields(guide.spec),
            version=guide.version,
            status=guide.status,
            updated_at=guide.updated_at,
            part_of=[BundleRefOut(code=b.code, name=b.name) for b in guide.part_of],
        )

    @get("/services/{code:str}/versions", opt=_PUBLIC, security=[{}], summary="An item's version history")
    async def service_versions(code: FromPath[str]) -> list[VersionOut]:
        return _versions(await queries.service_versions(code), f"no service item {code}")

    @get("/bundles", opt=_PUBLIC, security=[{}], cache_control=_CACHE, summary="一件事一次办 bundles")
    async def list_bundles() -> list[BundleSummaryOut]:
        return [
            BundleSummaryOut(
                code=b.code,
                name=b.name,
                lead_department=DepartmentOut(code=b.lead_department_code, name=b.lead_department_name),
                target=_limit(b.target),
                children=list(b.children),
                version=b.version,
                status=b.status,
            )
            for b in await queries.list_bundles()
        ]

    @get("/bundles/{code:str}", opt=_PUBLIC, security=[{}], cache_control=_CACHE, summary="One bundle")
    async def bundle(code: FromPath[str]) -> BundleGuideOut:
        guide = await queries.bundle(code)
        if guide is None:
            raise NotFoundException(f"no bundle {code}")
        spec = guide.spec
        return BundleGuideOut(
            code=spec.code,
            name=spec.name,
            lead_department=_convert(spec.lead_department, DepartmentOut),
            summary=spec.summary,
            target=_limit(spec.target),
            trips=spec.trips,
            modes=_modes(spec.modes),
            materials=_convert(spec.materials, list[MaterialOut]),
            where=_convert(spec.where, list[LocationOut]),
            basis=spec.basis,
            tongban=_convert(spec.tongban, list[TongbanOut]),
            children=[_summary(c) for c in guide.children],
            version=guide.version,
            status=guide.status,
            updated_at=guide.updated_at,
        )

    @get("/bundles/{code:str}/versions", opt=_PUBLIC, security=[{}], summary="A bundle's version history")
    async def bundle_versions(code: FromPath[str]) -> list[VersionOut]:
        return _versions(await queries.bundle_versions(code), f"no bundle {code}")

    return Router(
        path="/api/v1",
        route_handlers=[list_services, service, service_versions, list_bundles, bundle, bundle_versions],
        tags=["catalogue"],
    )


def _convert(value: object, kind: type[T]) -> T:
    # Same field names on both sides: only the wire spelling differs.
    return msgspec.convert(value, kind, from_attributes=True)


def _limit(limit: TimeLimit) -> TimeLimitOut:
    label = "即办" if limit.amount == 0 else f"{limit.amount}个{UNIT_LABELS[limit.unit]}"
    return TimeLimitOut(amount=limit.amount, unit=limit.unit, label=label)


def _modes(modes: Sequence[Mode]) -> list[ModeOut]:
    return [ModeOut(mode=m, label=MODE_LABELS[m]) for m in modes]


def _summary(s: ServiceSummary) -> ServiceSummaryOut:
    return ServiceSummaryOut(
        code=s.code,
        name=s.name,
        department=DepartmentOut(code=s.department_code, name=s.department_name),
        kind=s.kind,
        kind_label=KIND_LABELS[s.kind],
        modes=_modes(s.modes),
        tongban_regions=list(s.tongban_regions),
        promised_limit=_limit(s.promised_limit),
        trips=s.trips,
        fee=s.fee,
        version=s.version,
        status=s.status,
    )


def _spec_fields(spec: ServiceItemSpec) -> dict[str, Any]:
    return {
        "code": spec.code,
        "name": spec.name,
        "department": _convert(spec.department, DepartmentOut),
        "kind": spec.kind,
        "kind_label": KIND_LABELS[spec.kind],
        "summary": spec.summary,
        "conditions": spec.conditions,
        "audience": list(spec.audience),
        "materials": _convert(spec.materials, list[MaterialOut]),
        "statutory_limit": _limit(spec.statutory_limit),
        "promised_limit": _limit(spec.promised_limit),
        "trips": spec.trips,
        "modes": _modes(spec.modes),
        "appointment_required": spec.appointment_required,
        "fee": spec.fee,
        "fee_basis": spec.fee_basis,
        "where": _convert(spec.where, list[LocationOut]),
        "basis": spec.basis,
        "tongban": _convert(spec.tongban, list[TongbanOut]),
    }


def _versions(history: list[EntryVersion], missing: str) -> list[VersionOut]:
    if not history:
        raise NotFoundException(missing)
    return [
        VersionOut(
            version=v.version,
            change=v.change,
            recorded_at=v.recorded_at,
            reason=v.reason,
            name=None if v.spec is None else v.spec.name,
            promised_limit=None if v.spec is None else _limit(_promise(v.spec)),
        )
        for v in history
    ]


def _promise(spec: ServiceItemSpec | BundleSpec) -> TimeLimit:
    return spec.promised_limit if isinstance(spec, ServiceItemSpec) else spec.target
