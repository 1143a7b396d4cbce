"""Read a catalogue data file into checked domain specs, before anything touches the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from domain.catalogue import (
    BundleSpec,
    CatalogueError,
    Department,
    ServiceItemSpec,
    check_bundle,
    check_catalogue,
    check_item,
)

S = TypeVar("S", ServiceItemSpec, BundleSpec)

DEFAULT_CATALOGUE = Path(__file__).with_name("changsha_430100.json")


class CatalogueSourceError(CatalogueError):
    """The data file cannot be read as a catalogue (bad JSON, unknown field, unknown department)."""


class _File(msgspec.Struct, forbid_unknown_fields=True):
    region: str
    city: str
    departments: list[Department]
    # Entries name their department by its short code; they become specs once it is resolved.
    items: list[dict[str, Any]]
    bundles: list[dict[str, Any]]
    about: str = ""


@dataclass(frozen=True, slots=True)
class CatalogueSource:
    region: str
    city: str
    items: tuple[ServiceItemSpec, ...]
    bundles: tuple[BundleSpec, ...]


def read_catalogue(path: Path | str = DEFAULT_CATALOGUE) -> CatalogueSource:
    """Parse and check the whole file; raise a CatalogueError naming the first bad entry."""
    try:
        raw = msgspec.json.decode(Path(path).read_bytes(), type=_File)
    except (OSError, msgspec.DecodeError) as exc:
        raise CatalogueSourceError(f"{path}: {exc}") from exc
    departments = {d.code: d for d in raw.departments}
    if len(departments) != len(raw.departments):
        raise CatalogueSourceError(f"{path}: a department code is listed twice")
    items = tuple(_entry(e, "department", departments, ServiceItemSpec, path) for e in raw.items)
    bundles = tuple(_entry(e, "lead_department", departments, BundleSpec, path) for e in raw.bundles)
    for item in items:
        check_item(item)
    for bundle in bundles:
        check_bundle(bundle)
    check_catalogue(items, bundles)
    return CatalogueSource(raw.region, raw.city, items, bundles)


def _entry(
    entry: dict[str, Any], field: str, departments: dict[str, Department], spec: type[S], path: Path | str
) -> S:
    name = entry.get("code", "?")
    ref = entry.get(field)
    if ref not in departments:
        raise CatalogueSourceError(f"{path}: entry {name} names unknown {field} {ref!r}")
    try:
        return msgspec.convert({**entry, field: departments[ref]}, spec, from_attributes=True)
    except msgspec.ValidationError as exc:
        raise CatalogueSourceError(f"{path}: entry {name}: {exc}") from exc
