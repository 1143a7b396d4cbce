"""The service catalogue read model: current items and bundles, their version history, and the queries.

Rows keep the whole spec as jsonb for the 办事指南, plus the columns the filters
need. Times come from the events, never from now(), so a rebuild gives identical rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Hashable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import partial
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, TypeVar

import asyncpg
import msgspec
from eventsourcing.utils import get_topic

from domain.catalogue import Bundle, BundleSpec, ItemKind, Mode, ServiceItem, ServiceItemSpec, TimeLimit

_ITEM_EVENTS = (ServiceItem.Published, ServiceItem.Revised, ServiceItem.Reinstated, ServiceItem.Withdrawn)
_BUNDLE_EVENTS = (Bundle.Published, Bundle.Revised, Bundle.Reinstated, Bundle.Withdrawn)
CATALOGUE_TOPICS = frozenset(get_topic(e) for e in (*_ITEM_EVENTS, *_BUNDLE_EVENTS))

Status = Literal["active", "withdrawn"]
_encode = msgspec.json.Encoder().encode


class CatalogueProjection:
    """Consumer of the catalogue events (the Consumer protocol of the runner, by shape)."""

    name: str = "catalogue"
    topics: frozenset[str] | None = CATALOGUE_TOPICS
    tables: Sequence[str] = ("catalogue_items", "catalogue_bundles", "catalogue_versions", "catalogue_stamp")
    schema_version: int = 2  # 2: catalogue_stamp, which readers keeping entries check

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        for entry in ("items", "bundles"):
            await conn.execute(
                f"""
                CREATE TABLE IF NOT EXISTS catalogue_{entry}{suffix} (
                    code            text        PRIMARY KEY,
                    entry_id        uuid        NOT NULL UNIQUE,
                    version         integer     NOT NULL,
                    status          text        NOT NULL,
                    name            text        NOT NULL,
                    department_code text        NOT NULL,
                    kind            text        NOT NULL,
                    modes           text[]      NOT NULL,
                    tongban_regions text[]      NOT NULL,
                    children        text[]      NOT NULL,
                    -- name, department, materials, keywords and code, lower-cased, for substring search
                    search_text     text        NOT NULL,
                    spec            jsonb       NOT NULL,
                    updated_at      timestamptz NOT NULL
                )
                """
            )
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS catalogue_versions{suffix} (
                entry_id    uuid        NOT NULL,
                code        text        NOT NULL,
                entry       text        NOT NULL,
                version     integer     NOT NULL,
                change      text        NOT NULL,
                spec        jsonb,
                reason      text,
                recorded_at timestamptz NOT NULL,
                PRIMARY KEY (entry_id, version)
            )
            """
        )
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS catalogue_versions_code{suffix} ON catalogue_versions{suffix} (code)"
        )
        # One row: how many catalogue events this generation applied, so a reader can tell in one
        # cheap read whether anything changed. The suffix makes a swap to a rebuilt one a change too.
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS catalogue_stamp{suffix} (
                generation text   NOT NULL,
                changes    bigint NOT NULL
            )
            """
        )
        await conn.execute(
            f"INSERT INTO catalogue_stamp{suffix} SELECT $1::text, 0 "
            f"WHERE NOT EXISTS (SELECT FROM catalogue_stamp{suffix})",
            suffix,
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        for envelope in envelopes:
            event, at = envelope.event, envelope.recorded_at
            entry = "items" if isinstance(event, _ITEM_EVENTS) else "bundles"
            table = f"catalogue_{entry}{suffix}"
            if isinstance(event, ServiceItem.Withdrawn | Bundle.Withdrawn):
                code = await conn.fetchval(
                    f"UPDATE {table} SET status = 'withdrawn', version = $2, updated_at = $3 "
                    "WHERE entry_id = $1 RETURNING code",
                    envelope.originator_id,
                    envelope.originator_version,
                    at,
                )
                spec_json, reason = None, event.reason
            else:
                spec = event.spec
                spec_json, reason, code = _encode(spec).decode(), None, spec.code
                await conn.execute(
                    f"""
                    INSERT INTO {table}
                    VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12)
                    ON CONFLICT (code) DO UPDATE SET version = EXCLUDED.version, status = 'active',
                        name = EXCLUDED.name, department_code = EXCLUDED.department_code,
                        kind = EXCLUDED.kind, modes = EXCLUDED.modes,
                        tongban_regions = EXCLUDED.tongban_regions, children = EXCLUDED.children,
                        search_text = EXCLUDED.search_text, spec = EXCLUDED.spec,
                        updated_at = EXCLUDED.updated_at
                    """,
                    code,
                    envelope.originator_id,
                    envelope.originator_version,
                    *_columns(spec),
                    spec_json,
                    at,
                )
            change = type(event).__name__.lower()
            await conn.execute(
                f"INSERT INTO catalogue_versions{suffix} VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)",
                envelope.originator_id,
                code,
                entry[:-1],
                envelope.originator_version,
                change,
                spec_json,
                reason,
                at,
            )
        if envelopes:
            await conn.execute(f"UPDATE catalogue_stamp{suffix} SET changes = changes + $1", len(envelopes))


def _columns(spec: ServiceItemSpec | BundleSpec) -> tuple[Any, ...]:
    """name, department_code, kind, modes, tongban_regions, children, search_text."""
    children: list[str] = []
    kind: str
    if isinstance(spec, ServiceItemSpec):
        department, kind = spec.department, spec.kind
    else:
        department, kind, children = spec.lead_department, "bundle", list(spec.children)
    words = [spec.name, department.name, spec.code, *spec.keywords, *(m.name for m in spec.materials)]
    return (
        spec.name,
        department.code,
        kind,
        list(spec.modes),
        [p.region for p in spec.tongban],
        children,
        "\n".join(words).lower(),
    )


# The query side: what the API may import.


class ServiceSummary(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    department_code: str
    department_name: str
    kind: ItemKind
    modes: tuple[Mode, ...]
    tongban_regions: tuple[str, ...]
    promised_limit: TimeLimit
    trips: int
    fee: Decimal
    version: int
    status: Status


class ServicePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ServiceSummary]
    total: int
    page: int
    size: int


class BundleRef(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str


class ServiceGuide(msgspec.Struct, frozen=True, kw_only=True):
    """One item's 办事指南 as of its current version."""

    spec: ServiceItemSpec
    version: int
    status: Status
    updated_at: datetime
    part_of: list[BundleRef]  # the active bundles that include this item


class EntryVersion(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    change: str  # published, revised, reinstated or withdrawn
    recorded_at: datetime
    spec: ServiceItemSpec | BundleSpec | None  # None for a withdrawal: the spec before it still applies
    reason: str | None


class BundleSummary(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    lead_department_code: str
    lead_department_name: str
    target: TimeLimit
    children: tuple[str, ...]
    version: int
    status: Status


class BundleGuide(msgspec.Struct, frozen=True, kw_only=True):
    spec: BundleSpec
    version: int
    status: Status
    updated_at: datetime
    children: list[ServiceSummary]  # in the bundle's order


PoolSource: TypeAlias = asyncpg.Pool | Callable[[], asyncpg.Pool]
_ITEM = msgspec.json.Decoder(ServiceItemSpec)
_BUNDLE = msgspec.json.Decoder(BundleSpec)
T = TypeVar("T")

# Moves exactly when the catalogue read model does: each catalogue event applied, and each swap
# to a rebuilt generation. A subquery, so that other reads can carry it along.
CATALOGUE_STAMP = "(SELECT generation || ':' || changes FROM catalogue_stamp)"


class _Kept:
    """What was read from the catalogue views, kept while the stamp stays where it was read at.

    A value is read after the stamp it is filed under, so it is never older than that stamp; a
    reader that finds the stamp moved drops everything. So nothing is served that a read of the
    views at the same moment would not give, and the catalogue, which changes rarely, costs one
    small query per use instead of the entry's. Codes come from callers, so misses are kept too,
    but never more than `at_most` values: past that, everything is dropped and read again.
    """

    def __init__(self, at_most: int = 4096) -> None:
        self.at_most = at_most
        self.stamp: str | None = None
        self.values: dict[Hashable, Any] = {}

    async def get(self, pool: asyncpg.Pool, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        found: T = (await self.get_many(pool, {key: read}))[key]
        return found

    async def get_many(
        self, pool: asyncpg.Pool, reads: Mapping[Hashable, Callable[[], Awaitable[T]]]
    ) -> dict[Hashable, T]:
        """Each key's value, kept or read, on one read of the stamp for all of them."""
        stamp = await pool.fetchval("SELECT " + CATALOGUE_STAMP)
        if stamp != self.stamp:
            self.stamp, self.values = stamp, {}
        found: dict[Hashable, T] = {}
        for key, read in reads.items():
            if key in self.values:
                found[key] = self.values[key]
                continue
            value = found[key] = await read()
            if self.stamp == stamp:  # else another reader saw another stamp meanwhile: keep nothing
                if len(self.values) >= self.at_most:
                    self.values = {}
                self.values[key] = value
        return found


class CatalogueQueries:
    """Reads the views; takes a pool, or a callable giving one (the runtime creates it only at start-up).

    Entries (`service`, `bundle`, `item_departments`) are kept per instance until the catalogue
    changes; the lists and pages are read afresh each time.
    """

    def __init__(self, pool: PoolSource) -> None:
        self._pool = pool
        self._kept = _Kept()

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

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
    ) -> ServicePage:
        """Active items, filtered (all filters AND), by department then code."""
        where = (
            "status = 'active' AND ($1::text IS NULL OR strpos(search_text, lower($1)) > 0) "
            "AND ($2::text IS NULL OR department_code = $2) AND ($3::text IS NULL OR $3 = ANY(modes)) "
            "AND ($4::text IS NULL OR kind = $4) AND ($5::text IS NULL OR $5 = ANY(tongban_regions))"
        )
        args = (q or None, department, mode, kind, tongban)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            total = await conn.fetchval(f"SELECT count(*) FROM catalogue_items WHERE {where}", *args)
            rows = await conn.fetch(
                f"SELECT version, status, spec FROM catalogue_items WHERE {where} "
                "ORDER BY department_code, code LIMIT $6 OFFSET $7",
                *args,
                size,
                (page - 1) * size,
            )
        return ServicePage(items=[_summary(r) for r in rows], total=total, page=page, size=size)

    async def service(self, code: str) -> ServiceGuide | None:
        return await self._kept.get(self.pool, ("service", code), lambda: self._service(code))

    async def bundle(self, code: str) -> BundleGuide | None:
        return await self._kept.get(self.pool, ("bundle", code), lambda: self._bundle(code))

    async def guides(self, codes: Collection[str]) -> dict[str, ServiceGuide | BundleGuide | None]:
        """Each code's item guide, else its bundle's, else None; on two reads of the stamp in all.

        For a consumer's batch, which names many codes: one stamp read per code would cost a
        round trip each, every batch.
        """
        wanted = sorted(set(codes))
        services = await self._kept.get_many(
            self.pool, {("service", c): partial(self._service, c) for c in wanted}
        )
        found: dict[str, ServiceGuide | BundleGuide | None] = {c: services[("service", c)] for c in wanted}
        if missing := [c for c in wanted if found[c] is None]:
            bundles = await self._kept.get_many(
                self.pool, {("bundle", c): partial(self._bundle, c) for c in missing}
            )
            found.update({c: bundles[("bundle", c)] for c in missing})
        return found

    async def item_departments(self) -> Mapping[str, str]:
        """The department code of every active single item."""
        return await self._kept.get(self.pool, "item_departments", self._item_departments)

    async def _service(self, code: str) -> ServiceGuide | None:
        row = await self.pool.fetchrow(
            "SELECT version, status, spec, updated_at FROM catalogue_items WHERE code = $1", code
        )
        if row is None:
            return None
        bundles = await self.pool.fetch(
            "SELECT code, name FROM catalogue_bundles WHERE $1 = ANY(children) AND status = 'active' "
            "ORDER BY code",
            code,
        )
        return ServiceGuide(
            spec=_ITEM.decode(row["spec"]),
            version=row["version"],
            status=row["status"],
            updated_at=row["updated_at"],
            part_of=[BundleRef(code=b["code"], name=b["name"]) for b in bundles],
        )

    async def service_versions(self, code: str) -> list[EntryVersion]:
        """Oldest first; empty when no such item was ever published."""
        return await self._versions(code, "item", _ITEM)

    async def bundle_versions(self, code: str) -> list[EntryVersion]:
        return await self._versions(code, "bundle", _BUNDLE)

    async def list_bundles(self) -> list[BundleSummary]:
        rows = await self.pool.fetch(
            "SELECT version, status, spec FROM catalogue_bundles WHERE status = 'active' ORDER BY code"
        )
        return [_bundle_summary(r) for r in rows]

    async def _bundle(self, code: str) -> BundleGuide | None:
        row = await self.pool.fetchrow(
            "SELECT version, status, spec, updated_at, children FROM catalogue_bundles WHERE code = $1", code
        )
        if row is None:
            return None
        found = await self.pool.fetch(
            "SELECT code, version, status, spec FROM catalogue_items WHERE code = ANY($1)", row["children"]
        )
        by_code = {r["code"]: _summary(r) for r in found}
        return BundleGuide(
            spec=_BUNDLE.decode(row["spec"]),
            version=row["version"],
            status=row["status"],
            updated_at=row["updated_at"],
            children=[by_code[c] for c in row["children"] if c in by_code],
        )

    async def _item_departments(self) -> Mapping[str, str]:
        rows = await self.pool.fetch(
            "SELECT code, department_code FROM catalogue_items WHERE status = 'active'"
        )
        return MappingProxyType({r["code"]: r["department_code"] for r in rows})

    async def _versions(
        self, code: str, entry: str, decoder: msgspec.json.Decoder[Any]
    ) -> list[EntryVersion]:
        rows = await self.pool.fetch(
            "SELECT version, change, recorded_at, spec, reason FROM catalogue_versions "
            "WHERE code = $1 AND entry = $2 ORDER BY version",
            code,
            entry,
        )
        return [
            EntryVersion(
                version=r["version"],
                change=r["change"],
                recorded_at=r["recorded_at"],
                spec=None if r["spec"] is None else decoder.decode(r["spec"]),
                reason=r["reason"],
            )
            for r in rows
        ]


# Each entry carries its department whole, so the names need no table of their own. An entry
# revised later wins, so a department renamed in the catalogue reads by its new name.
_NAMED = """
    SELECT DISTINCT ON (code) code, name FROM (
        SELECT department_code AS code, spec #>> '{department,name}' AS name, updated_at FROM catalogue_items
        UNION ALL
        SELECT department_code, spec #>> '{lead_department,name}', updated_at FROM catalogue_bundles
    ) AS named WHERE $1::text[] IS NULL OR code = ANY($1::text[]) ORDER BY code, updated_at DESC, name
"""


async def department_names(pool: asyncpg.Pool, codes: Collection[str]) -> dict[str, str]:
    """The catalogue's name of each department code it knows, withdrawn entries too; others are left out."""
    if not codes:
        return {}
    return {r["code"]: r["name"] for r in await pool.fetch(_NAMED, list(codes))}


class DepartmentNames:
    """The catalogue's name of every department, kept until a reader brings another CATALOGUE_STAMP.

    The reader takes the stamp in its own query, so the names cost no round trip while the
    catalogue stands still. Names read after a stamp are never older than it.
    """

    def __init__(self) -> None:
        self._stamp: str | None = None
        self._names: Mapping[str, str] = {}

    async def of(self, pool: asyncpg.Pool, codes: Collection[str], stamp: str) -> dict[str, str]:
        """Like department_names, as of `stamp` or later."""
        if not codes:
            return {}
        if stamp != self._stamp:
            names = {r["code"]: r["name"] for r in await pool.fetch(_NAMED, None)}
            self._stamp, self._names = stamp, names
        return {c: self._names[c] for c in codes if c in self._names}


def _summary(row: asyncpg.Record) -> ServiceSummary:
    spec = _ITEM.decode(row["spec"])
    return ServiceSummary(
        code=spec.code,
        name=spec.name,
        department_code=spec.department.code,
        department_name=spec.department.name,
        kind=spec.kind,
        modes=spec.modes,
        tongban_regions=tuple(p.region for p in spec.tongban),
        promised_limit=spec.promised_limit,
        trips=spec.trips,
        fee=spec.fee,
        version=row["version"],
        status=row["status"],
    )


def _bundle_summary(row: asyncpg.Record) -> BundleSummary:
    spec = _BUNDLE.decode(row["spec"])
    return BundleSummary(
        code=spec.code,
        name=spec.name,
        lead_department_code=spec.lead_department.code,
        lead_department_name=spec.lead_department.name,
        target=spec.target,
        children=spec.children,
        version=row["version"],
        status=row["status"],
    )
