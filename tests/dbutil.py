"""Find the test database once per run, and give each test a schema of its own."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import asyncpg

from backend.database import embedded_url
from backend.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
_url: str | None = None


def database_url() -> str:
    """CITYPASS_DATABASE_URL if set, else the embedded server under ./var (started if needed)."""
    global _url
    if _url is None:
        _url = os.environ.get("CITYPASS_DATABASE_URL") or embedded_url(
            Path(os.environ.get("CITYPASS_DATA_DIR", ROOT / "var"))
        )
    return _url


def new_schema_name() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


async def create_schema(url: str | None = None) -> str:
    name = new_schema_name()
    conn = await asyncpg.connect(url or database_url())
    try:
        await migrate(conn, name)
    finally:
        await conn.close()
    return name


async def drop_schema(name: str, url: str | None = None) -> None:
    conn = await asyncpg.connect(url or database_url())
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


def create_schema_sync() -> str:
    return asyncio.run(create_schema())


def drop_schema_sync(name: str) -> None:
    asyncio.run(drop_schema(name))
