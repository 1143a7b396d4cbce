"""Rules a catalogue entry must meet before it is published, and the catalogue's errors.

Each check collects every problem it finds and raises once, so whoever edits
the data file sees the whole list at a time (一次性告知, for administrators).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal

from domain.catalogue_spec import (
    TONGBAN_MODES,
    BundleSpec,
    Department,
    ItemKind,
    Location,
    Material,
    Mode,
    ServiceItemSpec,
    TimeLimit,
    TongbanPartner,
)


class CatalogueError(Exception):
    """Base of the catalogue's errors."""


class InvalidEntryError(CatalogueError):
    """A spec breaks the rules; `problems` lists every rule it breaks."""

    def __init__(self, code: str, problems: Sequence[str]) -> None:
        self.code = code
        self.problems = tuple(problems)
        super().__init__(f"{code}: " + "; ".join(self.problems))


class InvalidServiceItemError(InvalidEntryError):
    """A service item's spec breaks the rules."""


class InvalidBundleError(InvalidEntryError):
    """A bundle's spec, or its relation to its children, breaks the rules."""


class DuplicateCodeError(CatalogueError):
    """Two entries of one catalogue share a code."""


class UnknownChildItemError(InvalidBundleError):
    """A bundle names a child item the catalogue does not have."""


class EntryWithdrawnError(CatalogueError):
    """The entry was withdrawn: reinstate it rather than revise it."""


class EntryNotWithdrawnError(CatalogueError):
    """Only a withdrawn entry can be reinstated."""


# Kinds whose items may need no materials (a 查询 or booking can need nothing but the login).
KINDS_WITHOUT_MATERIALS: frozenset[ItemKind] = frozenset({"public_service"})

_CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_BASIC_CODE = re.compile(r"^\d{12}$")
_DEPARTMENT_CODE = re.compile(r"^[A-Z]{2,12}$")
_REGION = re.compile(r"^\d{6}$")
_CENT = Decimal("0.01")


def is_valid_credit_code(code: str) -> bool:
    """GB 32100 统一社会信用代码: 18 characters whose last is a weighted mod-31 check character."""
    if not _CREDIT_CODE.match(code):
        return False
    total = sum(_CREDIT_CHARS.index(c) * w for c, w in zip(code, _CREDIT_WEIGHTS, strict=False))
    return code[17] == _CREDIT_CHARS[(31 - total % 31) % 31]


def is_valid_entry_code(code: str) -> bool:
    """实施编码: the 实施机构's credit code followed by a 12-digit 基本编码."""
    return len(code) == 30 and is_valid_credit_code(code[:18]) and bool(_BASIC_CODE.match(code[18:]))


def check_item(spec: ServiceItemSpec) -> None:
    """Raise InvalidServiceItemError listing every rule the item breaks."""
    problems = [*_common(spec.code, spec.name, spec.basis, spec.trips, spec.modes, spec.where)]
    problems += _department(spec.department, "department")
    if not spec.materials and spec.kind not in KINDS_WITHOUT_MATERIALS:
        problems.append(f"a {spec.kind} item needs at least one material")
    problems += _materials(spec.materials)
    problems += _limits(spec.statutory_limit, spec.promised_limit)
    if not spec.audience or len(set(spec.audience)) != len(spec.audience):
        problems.append("audience must be non-empty and without repeats")
    if not spec.fee.is_finite() or spec.fee < 0 or spec.fee != spec.fee.quantize(_CENT):
        problems.append(f"fee must be a non-negative amount in fen at most: {spec.fee}")
    problems += _tongban(spec.tongban, spec.modes, spec.department.credit_code[2:8])
    if problems:
        raise InvalidServiceItemError(spec.code, problems)


def check_bundle(spec: BundleSpec) -> None:
    """Raise InvalidBundleError listing every rule the bundle breaks on its own."""
    problems = [*_common(spec.code, spec.name, spec.basis, spec.trips, spec.modes, spec.where)]
    problems += _department(spec.lead_department, "lead department")
    if len(spec.children) < 2:
        problems.append("a bundle joins at least two items")
    if len(set(spec.children)) != len(spec.children):
        problems.append(f"child codes repeat: {sorted(_repeats(spec.children))}")
    if spec.code in spec.children:
        problems.append("a bundle cannot contain itself")
    if not spec.materials:
        problems.append("a bundle needs its one set of materials")
    problems += _materials(spec.materials)
    if spec.target.amount < 0:
        problems.append("target must not be negative")
    problems += _tongban(spec.tongban, spec.modes, spec.lead_department.credit_code[2:8])
    if problems:
        raise InvalidBundleError(spec.code, problems)


def check_catalogue(items: Sequence[ServiceItemSpec], bundles: Sequence[BundleSpec]) -> None:
    """Rules across entries: unique codes, bundles of existing items whose promises fit the target."""
    codes = [i.code for i in items] + [b.code for b in bundles]
    if repeats := _repeats(codes):
        raise DuplicateCodeError(f"codes used more than once: {sorted(repeats)}")
    by_code = {i.code: i for i in items}
    for bundle in bundles:
        missing = [c for c in bundle.children if c not in by_code]
        if missing:
            raise UnknownChildItemError(bundle.code, [f"no item {c}" for c in missing])
        # The bundle's deadline follows its slowest child, so no child may promise more.
        slow = [
            f"child {c} promises {by_code[c].promised_limit.amount} {by_code[c].promised_limit.unit}, "
            f"beyond the target {bundle.target.amount}"
            for c in bundle.children
            if by_code[c].promised_limit.unit == bundle.target.unit
            and by_code[c].promised_limit.amount > bundle.target.amount
        ]
        if slow:
            raise InvalidBundleError(bundle.code, slow)


def _common(
    code: str, name: str, basis: str, trips: int, modes: Sequence[Mode], where: Sequence[Location]
) -> list[str]:
    problems = []
    if not is_valid_entry_code(code):
        problems.append("code must be a valid credit code followed by a 12-digit basic code")
    if not name.strip():
        problems.append("name is empty")
    if not basis.strip():
        problems.append("the legal basis (设定依据) is empty")
    if trips not in (0, 1):
        problems.append(f"trips must be 0 or 1 (最多跑一次), not {trips}")
    if not modes or len(set(modes)) != len(modes):
        problems.append("modes must be non-empty and without repeats")
    if trips == 0 and "full_online" not in modes:
        problems.append("零跑动 needs 全程网办")
    if "instant_approval" in modes and "full_online" not in modes:
        problems.append("秒批 needs 全程网办")
    if "window" in modes and not where:
        problems.append("窗口办理 needs at least one location")
    return problems


def _department(department: Department, role: str) -> list[str]:
    problems = []
    if not _DEPARTMENT_CODE.match(department.code):
        problems.append(f"{role} code must be 2-12 capital letters: {department.code!r}")
    if not department.name.strip():
        problems.append(f"{role} name is empty")
    if not is_valid_credit_code(department.credit_code):
        problems.append(f"{role} credit code {department.credit_code!r} fails GB 32100")
    return problems


def _materials(materials: Sequence[Material]) -> list[str]:
    problems = []
    if repeats := _repeats(m.id for m in materials):
        problems.append(f"material ids repeat: {sorted(repeats)}")
    for m in materials:
        if not m.id.strip() or not m.name.strip():
            problems.append(f"material {m.id!r} needs an id and a name")
        if m.originals < 0 or m.copies < 0:
            problems.append(f"material {m.id}: counts must not be negative")
        if m.replaceable_by_elicence is not None and not m.replaceable_by_elicence.strip():
            problems.append(f"material {m.id}: name the e-licence type or use null")
    return problems


def _limits(statutory: TimeLimit, promised: TimeLimit) -> list[str]:
    if statutory.amount < 0 or promised.amount < 0:
        return ["time limits must not be negative"]
    # N working days always span at least N natural days, so a promise in working days
    # cannot exceed a statutory limit of the same number in natural days either.
    comparable = statutory.unit == promised.unit or promised.unit == "working_day"
    if comparable and promised.amount > statutory.amount:
        return [
            f"承诺时限 {promised.amount} {promised.unit} exceeds 法定时限 {statutory.amount} {statutory.unit}"
        ]
    return []


def _tongban(partners: Sequence[TongbanPartner], modes: Sequence[Mode], home: str) -> list[str]:
    problems = []
    if repeats := _repeats(p.region for p in partners):
        problems.append(f"通办 partners repeat: {sorted(repeats)}")
    for p in partners:
        if not _REGION.match(p.region) or p.region == home:
            problems.append(f"通办 partner region {p.region!r} must be another city's 6-digit code")
        if p.mode not in TONGBAN_MODES or p.mode not in modes:
            problems.append(f"通办 with {p.region} by {p.mode}, a mode the entry does not offer")
    return problems


def _repeats(values: Iterable[str]) -> set[str]:
    return {value for value, count in Counter(values).items() if count > 1}
