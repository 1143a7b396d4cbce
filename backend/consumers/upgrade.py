"""Read models migrate themselves: at start, rebuild a consumer whose served shape is not its code's.

A consumer declares `schema_version`, and consumer_generations records the
version (and the tables) each served generation was built with. When they
differ, the code about to run would query or write tables of another shape, so
the consumer is rebuilt blue/green before anything uses it. Processes starting
together take turns on the rebuild lock: the first builds, the others wait for
its swap, look again, and find nothing left to do.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from backend.consumers.base import Consumer, Decode, checked_tables, schema_version, table_suffix
from backend.consumers.generations import drop_tables, install, served_generation, shape_change
from backend.consumers.rebuild import rebuild_lock_key, rebuild_locked, unlock
from backend.store.reader import EventReader

log = logging.getLogger(__name__)


async def bring_up_to_date(
    reader: EventReader,
    consumer: Consumer,
    decode: Decode,
    *,
    batch_size: int = 500,
    poll_seconds: float = 0.5,
    report_seconds: float = 10.0,
) -> int | None:
    """Install the consumer, and rebuild it if its served generation has another shape than its code.

    Return the generation built now, or None when the served one already fits
    (perhaps because another process just built it while this one waited).
    """
    async with reader.pool.acquire() as conn:
        await install(conn, consumer)
        if shape_change(consumer, await served_generation(conn, consumer.name)) is None:
            return None
        key = await rebuild_lock_key(conn, consumer.name)
        await _take_lock(conn, key, consumer.name, poll_seconds, report_seconds)
        try:
            # Again, under the lock: the process we waited for may have built this very shape.
            served = await served_generation(conn, consumer.name)
            change = shape_change(consumer, served)
            if change is None:
                log.info(
                    "consumer %s: generation %d, built elsewhere, fits", consumer.name, served.generation
                )
                return None
            if not checked_tables(consumer):
                await _record_tableless(conn, consumer, served.generation, served.tables)
                return None
            log.info(
                "consumer %s: served generation %d differs (%s); rebuilding it",
                consumer.name,
                served.generation,
                change,
            )
            started = time.monotonic()
            generation = await rebuild_locked(conn, reader, consumer, decode, batch_size)
            log.info(
                "consumer %s: generation %d built in %.1fs",
                consumer.name,
                generation,
                time.monotonic() - started,
            )
            return generation
        finally:
            await unlock(conn, key, consumer.name)


async def _take_lock(
    conn: asyncpg.Connection, key: int, name: str, poll_seconds: float, report_seconds: float
) -> None:
    """Wait for the rebuild lock, saying now and then how far the holder has got.

    Polled rather than blocking: a blocked pg_advisory_lock would run into the
    connection's command timeout on a rebuild that takes minutes.
    """
    reported: float | None = None
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
        if reported is None or time.monotonic() - reported >= report_seconds:
            reported = time.monotonic()
            log.info(
                "consumer %s: waiting for another process's rebuild (%s)", name, await _progress(conn, name)
            )
        await asyncio.sleep(poll_seconds)


async def _progress(conn: asyncpg.Connection, name: str) -> str:
    row = await conn.fetchrow(
        "SELECT g.building_generation, t.notification_id, "
        "(SELECT coalesce(max(notification_id), 0) FROM stored_events) AS head "
        "FROM consumer_generations g LEFT JOIN tracking t "
        "ON t.application_name = g.consumer_name || '#g' || g.building_generation "
        "WHERE g.consumer_name = $1",
        name,
    )
    if row is None or row["building_generation"] is None:
        return "not replaying yet"
    return f"generation {row['building_generation']} at {row['notification_id'] or 0} of {row['head']}"


async def _record_tableless(
    conn: asyncpg.Connection, consumer: Consumer, generation: int, old_tables: tuple[str, ...]
) -> None:
    """A consumer that owns no tables has nothing to rebuild: record its version, drop what it owned."""
    async with conn.transaction():
        for base in old_tables:
            await conn.execute(f"DROP VIEW IF EXISTS {base}")
        await drop_tables(conn, old_tables, table_suffix(generation))
        await conn.execute(
            "UPDATE consumer_generations SET schema_version = $2, tables = '{}' WHERE consumer_name = $1",
            consumer.name,
            schema_version(consumer),
        )
    log.info(
        "consumer %s owns no tables; recorded schema version %d", consumer.name, schema_version(consumer)
    )
