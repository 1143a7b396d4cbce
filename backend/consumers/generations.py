"""The generation registry: which physical tables ({base}_g{N}) the stable views of a consumer show."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from backend.consumers.base import Consumer, checked_tables, schema_version, table_suffix, tracking_name
from backend.consumers.leadership import advisory_key

log = logging.getLogger(__name__)


async def ensure_installed(pool: asyncpg.Pool, consumer: Consumer) -> int:
    """Create generation 1 (tables, views, position 0) on first start; return the active generation."""
    async with pool.acquire() as conn:
        return await install(conn, consumer)


async def install(conn: asyncpg.Connection, consumer: Consumer) -> int:
    tables = checked_tables(consumer)
    version = schema_version(consumer)
    async with conn.transaction():
        schema: str = await conn.fetchval("SELECT current_schema()")
        # Two processes starting together must not both create generation 1.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(schema, consumer.name, "install"))
        generation: int | None = await conn.fetchval(
            "SELECT generation FROM consumer_generations WHERE consumer_name = $1", consumer.name
        )
        if generation is not None:
            # Served as it is, even if the code now declares another shape: see shape_change().
            return generation
        suffix = table_suffix(1)
        await consumer.create_tables(conn, suffix)
        await point_views(conn, tables, suffix)
        await conn.execute(
            "INSERT INTO consumer_generations (consumer_name, generation, tables, schema_version) "
            "VALUES ($1, 1, $2, $3)",
            consumer.name,
            tables,
            version,
        )
        await reset_position(conn, tracking_name(consumer.name, 1))
        log.info(
            "installed consumer %s (generation 1, schema version %d, tables %s)",
            consumer.name,
            version,
            tables,
        )
        return 1


@dataclass(frozen=True, slots=True)
class ServedGeneration:
    """What the stable views of a consumer show now, as recorded when it was built."""

    generation: int
    schema_version: int
    tables: tuple[str, ...]


async def served_generation(conn: asyncpg.Connection, name: str) -> ServedGeneration:
    """The served generation and its shape (a runner reads and locks it with its batch: see batch.py)."""
    sql = "SELECT generation, schema_version, tables FROM consumer_generations WHERE consumer_name = $1"
    row = await conn.fetchrow(sql, name)
    if row is None:
        raise LookupError(f"consumer {name!r} is not installed")
    return ServedGeneration(row["generation"], row["schema_version"], tuple(row["tables"]))


def shape_change(consumer: Consumer, served: ServedGeneration) -> str | None:
    """How the served generation differs from what this code writes; None when it is the same.

    Either way round: a newer version must be built, and so must an older one
    after a rollback, because the code serving queries is what the tables must fit.
    """
    version, tables = schema_version(consumer), checked_tables(consumer)
    changes = []
    if served.schema_version != version:
        changes.append(f"schema version {served.schema_version} -> {version}")
    if sorted(served.tables) != sorted(tables):
        changes.append(f"tables {list(served.tables)} -> {tables}")
    return "; ".join(changes) or None


async def active_generation(conn: asyncpg.Connection, name: str) -> int:
    """The served generation."""
    sql = "SELECT generation FROM consumer_generations WHERE consumer_name = $1"
    generation: int | None = await conn.fetchval(sql, name)
    if generation is None:
        raise LookupError(f"consumer {name!r} is not installed")
    return generation


async def reset_position(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(
        "INSERT INTO tracking (application_name, notification_id) VALUES ($1, 0) "
        "ON CONFLICT (application_name) DO UPDATE SET notification_id = 0, updated_at = now()",
        name,
    )


async def point_views(conn: asyncpg.Connection, tables: Sequence[str], suffix: str) -> None:
    """Point each stable view at base + suffix; call inside a transaction."""
    for base in tables:
        try:
            async with conn.transaction():  # a savepoint, so a refusal leaves the outer one usable
                await conn.execute(f"CREATE OR REPLACE VIEW {base} AS SELECT * FROM {base}{suffix}")
        except asyncpg.InvalidTableDefinitionError as exc:
            # REPLACE keeps the view's identity, so waiting readers carry on; it refuses
            # when the new generation dropped or changed columns. Then replace it outright.
            log.info("view %s changes shape (%s); recreating it", base, exc)
            await conn.execute(f"DROP VIEW {base}")
            await conn.execute(f"CREATE VIEW {base} AS SELECT * FROM {base}{suffix}")


async def drop_tables(conn: asyncpg.Connection, tables: Sequence[str], suffix: str) -> None:
    # No CASCADE: if a view still depended on these tables, failing loudly beats losing it.
    for base in tables:
        await conn.execute(f"DROP TABLE IF EXISTS {base}{suffix}")
