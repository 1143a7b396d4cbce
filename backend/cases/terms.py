"""What the catalogue says about a case's item: its version, departments, materials, modes and limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from backend.cases.access import UnknownServiceItemError
from domain.calendar import WorkingCalendar
from domain.calendar_deadline import Duration, deadline
from domain.case import BundleChild
from domain.case.instant_rules import InstantTerms
from domain.catalogue import TimeLimit
from domain.catalogue_spec import Material
from projections.catalogue import BundleGuide, ServiceGuide


class Catalogue(Protocol):
    """projections.catalogue.CatalogueQueries is the real one; it keeps entries till the catalogue changes."""

    async def service(self, code: str) -> ServiceGuide | None: ...

    async def bundle(self, code: str) -> BundleGuide | None: ...

    async def item_departments(self) -> Mapping[str, str]:
        """The department code of every active single item."""
        ...


@dataclass(frozen=True, slots=True)
class ItemTerms:
    code: str
    version: int
    departments: tuple[str, ...]  # the item's department, or every bundle child's
    children: tuple[BundleChild, ...]  # empty for a single item
    minor_materials: frozenset[str]  # may be missing at 容缺受理
    promised: TimeLimit  # 承诺时限; a bundle's target
    modes: frozenset[str]
    materials: tuple[Material, ...]  # every 申请材料; a bundle's one shared set
    audience: frozenset[str] | None  # 服务对象; None for a bundle, whose entry names none

    @property
    def instant(self) -> InstantTerms:
        """What a 秒批 rule reads of the entry."""
        return InstantTerms(
            version=self.version, modes=self.modes, materials=self.materials, audience=self.audience
        )


async def item_terms(catalogue: Catalogue, code: str) -> ItemTerms:
    """The active entry for `code`, an item or a bundle; UnknownServiceItemError otherwise."""
    guide = await catalogue.service(code)
    if guide is not None and guide.status == "active":
        spec = guide.spec
        return ItemTerms(
            code=code,
            version=guide.version,
            departments=(spec.department.code,),
            children=(),
            minor_materials=frozenset(m.id for m in spec.materials if m.requirement == "minor"),
            promised=spec.promised_limit,
            modes=frozenset(spec.modes),
            materials=spec.materials,
            audience=frozenset(spec.audience),
        )
    bundle = await catalogue.bundle(code)
    if bundle is not None and bundle.status == "active":
        by_code = {c.code: c for c in bundle.children}
        if missing := [c for c in bundle.spec.children if c not in by_code or by_code[c].status != "active"]:
            raise UnknownServiceItemError(f"bundle {code} has withdrawn children: {', '.join(missing)}")
        children = tuple(
            BundleChild(item_code=c, department=by_code[c].department_code) for c in bundle.spec.children
        )
        return ItemTerms(
            code=code,
            version=bundle.version,
            departments=tuple(dict.fromkeys(c.department for c in children)),
            children=children,
            minor_materials=frozenset(m.id for m in bundle.spec.materials if m.requirement == "minor"),
            promised=bundle.spec.target,
            modes=frozenset(bundle.spec.modes),
            materials=bundle.spec.materials,
            audience=None,
        )
    raise UnknownServiceItemError(f"no active service item or bundle {code!r} in the catalogue")


def promised_due(terms: ItemTerms, accepted_on: date, calendar: WorkingCalendar) -> date:
    """The last day of the 承诺时限 counted from acceptance: the latest a 容缺 supplement may be due."""
    working = terms.promised.unit == "working_day"
    limit = Duration(terms.promised.amount, "working" if working else "natural")
    return deadline(accepted_on, limit, calendar, today=accepted_on).due
