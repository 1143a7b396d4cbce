"""Shared fixtures. The database must be reachable: an unreachable one fails the run, never skips."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from backend.database import create_pool
from tests.dbutil import create_schema, database_url, drop_schema


def pytest_collection_finish(session: pytest.Session) -> None:
    """Probe only when a collected test needs the database, so pure unit runs need none."""
    if not any("tests/unit/" not in item.nodeid for item in session.items):
        return

    async def probe() -> None:
        conn = await asyncpg.connect(database_url(), timeout=10)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure here must stop the run loudly
        pytest.exit(f"test database unreachable: {exc}", returncode=3)


@pytest.fixture
def db_url() -> str:
    return database_url()


@pytest.fixture
async def schema(db_url: str) -> AsyncIterator[str]:
    """A freshly migrated schema, dropped after the test."""
    name = await create_schema(db_url)
    yield name
    await drop_schema(name, db_url)


@pytest.fixture
async def pool(db_url: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(db_url, schema, min_size=1, max_size=10)
    yield p
    await p.close()
