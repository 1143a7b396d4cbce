"""Fixtures the integration tests share: the real event recorder on the test's own schema."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from backend.store.recorder import EventRecorder


@pytest.fixture
async def recorder(db_url: str, schema: str, pool: asyncpg.Pool) -> AsyncIterator[EventRecorder]:
    rec = EventRecorder(db_url, schema, pool)
    await rec.start()
    yield rec
    await rec.close()
