"""Migrations apply once, in order, even when several processes start together."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from backend.migrations import applied_versions, discover, migrate
from tests.dbutil import drop_schema, new_schema_name

pytestmark = pytest.mark.integration


async def test_concurrent_starts_apply_each_version_once(db_url: str) -> None:
    schema = new_schema_name()
    conns = [await asyncpg.connect(db_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, schema) for c in conns))
        expected = [m.version for m in discover()]
        # Exactly one starter applied everything; the others found nothing to do.
        assert sorted(map(tuple, results)) == [(), (), (), tuple(expected)]
        assert await applied_versions(conns[0], schema) == expected
        assert await migrate(conns[0], schema) == []  # idempotent on a later start
        tables = {
            r[0]
            for r in await conns[0].fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
            )
        }
        assert {"stored_events", "tracking", "snapshots", "schema_migrations"} <= tables
    finally:
        for c in conns:
            await c.close()
        await drop_schema(schema, db_url)


def test_migration_files_are_numbered_without_gaps() -> None:
    versions = [m.version for m in discover()]
    assert versions == list(range(1, len(versions) + 1))


async def test_consumers_installed_before_schema_versions_count_as_version_1(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = new_schema_name()
    conn = await asyncpg.connect(db_url)
    try:
        everything = discover()
        monkeypatch.setattr("backend.migrations.discover", lambda: [m for m in everything if m.version < 5])
        await migrate(conn, schema)  # a database of the release before 0005
        await conn.execute(
            f"INSERT INTO {schema}.consumer_generations (consumer_name, generation, tables) "
            "VALUES ('work_queue', 3, '{work_queue,work_queue_cases}')"
        )
        monkeypatch.setattr("backend.migrations.discover", lambda: everything)

        assert 5 in await migrate(conn, schema)

        row = await conn.fetchrow(f"SELECT generation, schema_version FROM {schema}.consumer_generations")
        assert tuple(row) == (3, 1)
    finally:
        await conn.close()
        await drop_schema(schema, db_url)
