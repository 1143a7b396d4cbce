"""The hash chain catches edits made behind the store's back."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from eventsourcing.persistence import StoredEvent

from backend.store.hashchain import GENESIS, chain_hash, verify_aggregate, verify_store
from backend.store.recorder import EventRecorder

pytestmark = pytest.mark.integration


async def _fill(db_url: str, schema: str, pool: asyncpg.Pool) -> list[uuid.UUID]:
    rec = EventRecorder(db_url, schema, pool)
    await rec.start()
    oids = [uuid.uuid4() for _ in range(5)]
    for version in range(1, 5):
        for oid in oids:
            await rec.append([StoredEvent(oid, version, "tests:Step", f'{{"v":{version}}}'.encode())])
    await rec.close()
    return oids


async def test_an_untouched_store_verifies(db_url: str, schema: str, pool: asyncpg.Pool) -> None:
    oids = await _fill(db_url, schema, pool)
    async with pool.acquire() as conn:
        whole = await verify_store(conn, page=7)  # a small page crosses page boundaries
        one = await verify_aggregate(conn, oids[0])
        first = await conn.fetchrow("SELECT topic, state, hash FROM stored_events WHERE notification_id = 1")
    assert whole.ok and whole.events_checked == 20 and whole.aggregates_checked == 5
    assert one.ok and one.events_checked == 4
    assert first["hash"] == chain_hash(GENESIS, first["topic"], first["state"])


async def test_an_edited_state_is_named(db_url: str, schema: str, pool: asyncpg.Pool) -> None:
    oids = await _fill(db_url, schema, pool)
    async with pool.acquire() as conn:
        nid = await conn.fetchval(
            "UPDATE stored_events SET state = '{\"v\":99}' "
            "WHERE originator_id = $1 AND originator_version = 3 RETURNING notification_id",
            oids[2],
        )
        whole = await verify_store(conn)
        one = await verify_aggregate(conn, oids[2])
        other = await verify_aggregate(conn, oids[1])
    assert whole.first_broken is not None and whole.first_broken.notification_id == nid
    assert one.first_broken is not None and one.first_broken.originator_version == 3
    assert other.ok


async def test_a_rewritten_hash_breaks_the_next_link(db_url: str, schema: str, pool: asyncpg.Pool) -> None:
    # Someone edits a state and recomputes its own hash: its successor no longer links.
    oids = await _fill(db_url, schema, pool)
    async with pool.acquire() as conn:
        prev = await conn.fetchval(
            "SELECT hash FROM stored_events WHERE originator_id = $1 AND originator_version = 1", oids[0]
        )
        forged = chain_hash(prev, "tests:Step", b'{"v":42}')
        await conn.execute(
            "UPDATE stored_events SET state = $2, hash = $3 "
            "WHERE originator_id = $1 AND originator_version = 2",
            oids[0],
            b'{"v":42}',
            forged,
        )
        report = await verify_aggregate(conn, oids[0])
    assert report.first_broken is not None and report.first_broken.originator_version == 3


async def test_a_deleted_event_shows_as_a_gap(db_url: str, schema: str, pool: asyncpg.Pool) -> None:
    await _fill(db_url, schema, pool)
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM stored_events WHERE notification_id = 20")
        assert (await verify_store(conn)).ok  # deleting the very last event leaves no trace in order
        await conn.execute("DELETE FROM stored_events WHERE notification_id = 11")
        report = await verify_store(conn)
    assert report.first_broken is not None and report.first_broken.notification_id == 12
    assert "jump" in report.first_broken.reason
