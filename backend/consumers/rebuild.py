"""Blue/green rebuild: replay the whole log into fresh tables while the old ones serve, then swap."""

from __future__ import annotations

import logging
import time

import asyncpg

from backend.consumers.base import (
    Consumer,
    Decode,
    checked_tables,
    schema_version,
    table_suffix,
    tracking_name,
)
from backend.consumers.batch import process_batch
from backend.consumers.generations import (
    active_generation,
    drop_tables,
    install,
    point_views,
    reset_position,
)
from backend.consumers.leadership import advisory_key
from backend.store.reader import EventReader

log = logging.getLogger(__name__)

_REPORT_SECONDS = 5.0  # how often a long replay logs how far it got


class RebuildInProgressError(RuntimeError):
    """Another session is already rebuilding this consumer."""


async def rebuild(reader: EventReader, consumer: Consumer, decode: Decode, *, batch_size: int = 500) -> int:
    """Build generation N+1 from position 0, swap the views to it, drop N; return N+1."""
    require_tables(consumer)
    async with reader.pool.acquire() as conn:
        key = await rebuild_lock_key(conn, consumer.name)
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            raise RebuildInProgressError(f"consumer {consumer.name} is already being rebuilt")
        try:
            return await rebuild_locked(conn, reader, consumer, decode, batch_size)
        finally:
            await unlock(conn, key, consumer.name)


def require_tables(consumer: Consumer) -> None:
    if not checked_tables(consumer):
        # Its effects live in shared tables (timers, outboxes): replaying would repeat them.
        raise ValueError(f"consumer {consumer.name} owns no tables; there is nothing to rebuild")


async def rebuild_lock_key(conn: asyncpg.Connection, name: str) -> int:
    """The session advisory lock that lets one rebuild of a consumer run at a time, across processes."""
    schema: str = await conn.fetchval("SELECT current_schema()")
    return advisory_key(schema, name, "rebuild")


async def rebuild_locked(
    conn: asyncpg.Connection, reader: EventReader, consumer: Consumer, decode: Decode, batch_size: int
) -> int:
    """The rebuild itself; the caller holds the rebuild lock on conn."""
    await install(conn, consumer)
    old = await active_generation(conn, consumer.name)
    new = old + 1
    await _prepare(conn, consumer, new)
    log.info("rebuilding %s into generation %d while %d serves", consumer.name, new, old)
    reported = time.monotonic()
    # The long part, batch by batch, each its own transaction: nothing is blocked.
    while True:
        async with conn.transaction():
            result = await process_batch(conn, consumer, decode, new, batch_size)
        if result.caught_up:
            break
        if time.monotonic() - reported >= _REPORT_SECONDS:
            reported = time.monotonic()
            log.info(
                "rebuilding %s: generation %d at %d of %d", consumer.name, new, result.position, result.head
            )
    old_tables = await _swap(conn, reader, consumer, decode, old, new, batch_size)
    async with conn.transaction():
        await drop_tables(conn, old_tables, table_suffix(old))
        await conn.execute(
            "DELETE FROM tracking WHERE application_name = $1", tracking_name(consumer.name, old)
        )
    log.info("consumer %s now serves generation %d; generation %d dropped", consumer.name, new, old)
    return new


async def _prepare(conn: asyncpg.Connection, consumer: Consumer, new: int) -> None:
    suffix = table_suffix(new)
    async with conn.transaction():
        await drop_tables(conn, checked_tables(consumer), suffix)  # leftovers of a failed rebuild
        await consumer.create_tables(conn, suffix)
        await reset_position(conn, tracking_name(consumer.name, new))
        await conn.execute(
            "UPDATE consumer_generations SET building_generation = $2 WHERE consumer_name = $1",
            consumer.name,
            new,
        )


async def _swap(
    conn: asyncpg.Connection,
    reader: EventReader,
    consumer: Consumer,
    decode: Decode,
    old: int,
    new: int,
    batch_size: int,
) -> list[str]:
    """Catch up the last events and point the views at `new`, in one short transaction."""
    tables = checked_tables(consumer)
    async with conn.transaction():
        # FOR UPDATE waits for the live runner's batch (it holds FOR SHARE) and holds off its next one.
        row = await conn.fetchrow(
            "SELECT generation, tables FROM consumer_generations WHERE consumer_name = $1 FOR UPDATE",
            consumer.name,
        )
        if row is None or row["generation"] != old:
            raise RebuildInProgressError(f"consumer {consumer.name} changed generation during the rebuild")
        while not (await process_batch(conn, consumer, decode, new, batch_size)).caught_up:
            pass
        # The batches turned the WAL flush off for this transaction; a swap, unlike a batch,
        # cannot be replayed from a position, so it commits durably.
        await conn.execute("SET LOCAL synchronous_commit = on")
        old_tables = list(row["tables"])
        for base in set(old_tables) - set(tables):
            await conn.execute(f"DROP VIEW IF EXISTS {base}")
        await point_views(conn, tables, table_suffix(new))
        await conn.execute(
            "UPDATE consumer_generations SET generation = $2, tables = $3, schema_version = $4, "
            "building_generation = NULL, swapped_at = now() WHERE consumer_name = $1",
            consumer.name,
            new,
            tables,
            schema_version(consumer),
        )
    return old_tables


async def unlock(conn: asyncpg.Connection, key: int, name: str) -> None:
    try:
        await conn.execute("SELECT pg_advisory_unlock($1)", key)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        # The session is gone, and the lock with it.
        log.warning("could not release the rebuild lock of %s", name, exc_info=True)
