"""The generation registry: which physical tables ({base}_g{N}) the stable views of a consumer show."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg

from backend.consumers.base import Consumer, checked_tables, table_suffix, tracking_name
from backend.consumers.leadership import advisory_key

log = logging.getLogger(__name__)


async def ensure_installed(pool: asyncpg.Pool, consumer: Consumer) -> int:
    """Create generation 1 (tables, views, position 0) on first start; return the active generation."""
    async with pool.acquire() as conn:
        return await install(conn, consumer)


async def install(conn: asyncpg.Connection, consumer: Consumer) -> int:
    tables = checked_tables(consumer)
    async with conn.transaction():
        schema: str = await conn.fetchval("SELECT current_schema()")
        # Two processes starting together must not both create generation 1.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(schema, consumer.name, "install"))
        row = await conn.fetchrow(
            "SELECT generation, tables FROM consumer_generations WHERE consumer_name = $1",
            consumer.name,
        )
        if row is not None:
            if sorted(row["tables"]) != sorted(tables):
                # New code declares other tables than the served generation has: only a
                # rebuild can create them, and readers keep seeing the old ones until then.
                log.warning(
                    "consumer %s serves tables %s but declares %s; rebuild it to switch",
                    consumer.name,
                    list(row["tables"]),
                    tables,
                )
            return int(row["generation"])
        suffix = table_suffix(1)
        await consumer.create_tables(conn, suffix)
        await point_views(conn, tables, suffix)
        await conn.execute(
            "INSERT INTO consumer_generations (consumer_name, generation, tables) VALUES ($1, 1, $2)",
            consumer.name,
            tables,
        )
        await reset_position(conn, tracking_name(consumer.name, 1))
        log.info("installed consumer %s (generation 1, tables %s)", consumer.name, tables)
        return 1


async def active_generation(conn: asyncpg.Connection, name: str, *, share: bool = False) -> int:
    """The served generation; with share=True, hold it until commit so no swap happens mid-batch."""
    sql = "SELECT generation FROM consumer_generations WHERE consumer_name = $1"
    generation: int | None = await conn.fetchval(sql + (" FOR SHARE" if share else ""), name)
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
