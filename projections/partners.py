"""The partner cities as the messaging side and the admin pages read them: one row per partner.

A row holds only the keys valid now; a retired key is gone from it, so a message signed
with one is refused from the moment this model has the retirement. Times come from the
events, so a rebuild gives identical rows.

PartnerQueries keeps no cache: checking whether a cached partner is still current costs
one indexed read, the same as reading the partner, so a cache would only add ways to be
wrong (a key served after its retirement).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from eventsourcing.utils import get_topic

from domain.tongban import Acceptance, Partner
from projections.catalogue import PoolSource

_EVENTS = (Partner.Registered, Partner.Reconfigured, Partner.KeyAdded, Partner.KeyRetired)
PARTNER_TOPICS = frozenset(get_topic(cls) for cls in _EVENTS)
_ACCEPTS = msgspec.json.Decoder(tuple[Acceptance, ...])
_KEYS = msgspec.json.Decoder(dict[str, str])
_encode = msgspec.json.Encoder().encode


class PartnerProjection:
    """Consumer of the partner registry's events (the runner's Consumer protocol, by shape)."""

    name: str = "partners"
    topics: frozenset[str] | None = PARTNER_TOPICS
    tables: Sequence[str] = ("partners",)

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS partners{suffix} (
                region     text        PRIMARY KEY,
                id         uuid        NOT NULL UNIQUE,
                name       text        NOT NULL,
                base_url   text        NOT NULL,
                accepts    jsonb       NOT NULL,  -- a list of Acceptance: item_code, modes
                keys       jsonb       NOT NULL DEFAULT '{{}}',  -- key id -> base64 public key, valid now
                version    integer     NOT NULL,
                updated_at timestamptz NOT NULL
            )
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        for envelope in envelopes:
            origin, version = envelope.originator_id, envelope.originator_version
            await _apply(conn, f"partners{suffix}", origin, version, envelope.event)


async def _apply(conn: asyncpg.Connection, table: str, origin: UUID, version: int, event: Any) -> None:
    at = event.timestamp
    match event:
        case Partner.Registered():
            await conn.execute(
                f"INSERT INTO {table} (region, id, name, base_url, accepts, version, updated_at) "
                "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT (region) DO NOTHING",
                event.region, origin, event.name, event.base_url, _accepts(event), version, at,
            )  # fmt: skip
        case Partner.Reconfigured():
            await conn.execute(
                f"UPDATE {table} SET name = $2, base_url = $3, accepts = $4::jsonb, version = $5, "
                "updated_at = $6 WHERE id = $1",
                origin, event.name, event.base_url, _accepts(event), version, at,
            )  # fmt: skip
        case Partner.KeyAdded():
            await conn.execute(
                f"UPDATE {table} SET keys = keys || jsonb_build_object($2::text, $3::text), version = $4, "
                "updated_at = $5 WHERE id = $1",
                origin, event.kid, event.public_key, version, at,
            )  # fmt: skip
        case Partner.KeyRetired():
            await conn.execute(
                f"UPDATE {table} SET keys = keys - $2::text, version = $3, updated_at = $4 WHERE id = $1",
                origin, event.kid, version, at,
            )  # fmt: skip


def _accepts(event: Partner.Registered | Partner.Reconfigured) -> str:
    return _encode(event.accepts).decode()


# Queries: what the messaging side and the API read.


class PartnerInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A partner city as configured now; satisfies backend.federation.directory.Partner by shape."""

    region: str
    name: str
    base_url: str
    keys: dict[str, str]  # key id -> base64 of the 32-byte Ed25519 public key; only the valid ones
    accepts: tuple[Acceptance, ...]
    version: int
    updated_at: datetime


_COLUMNS = "region, name, base_url, keys, accepts, version, updated_at"


class PartnerQueries:
    """Reads the `partners` view; a PartnerDirectory (backend.federation.directory) by shape."""

    def __init__(self, pool: PoolSource) -> None:
        self._pool = pool

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    async def find(self, region: str) -> PartnerInfo | None:
        row = await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM partners WHERE region = $1", region)
        return None if row is None else _info(row)

    async def accepting(self, item_code: str) -> list[PartnerInfo]:
        """The partners that take this item of theirs from us (in any mode), by region."""
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM partners WHERE accepts @> $1::jsonb ORDER BY region",
            _encode([{"item_code": item_code}]).decode(),
        )
        return [_info(r) for r in rows]

    async def all(self) -> list[PartnerInfo]:
        """Every partner, by region."""
        return [_info(r) for r in await self.pool.fetch(f"SELECT {_COLUMNS} FROM partners ORDER BY region")]


def _info(row: asyncpg.Record) -> PartnerInfo:
    return PartnerInfo(
        region=row["region"],
        name=row["name"],
        base_url=row["base_url"],
        keys=dict(sorted(_KEYS.decode(row["keys"]).items())),
        accepts=_ACCEPTS.decode(row["accepts"]),
        version=row["version"],
        updated_at=row["updated_at"],
    )
