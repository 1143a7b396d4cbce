"""Our sessions run without JIT, and timer cancellation stays an index probe when statistics lag."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from backend.database import connect
from backend.timers import _CANCEL, cancel_many

pytestmark = pytest.mark.integration


async def test_pooled_and_dedicated_connections_run_without_jit(
    db_url: str, schema: str, pool: asyncpg.Pool
) -> None:
    # Compiling a plan costs some 20 ms of CPU; our statements run in well under one.
    assert await pool.fetchval("SHOW jit") == "off"
    conn = await connect(db_url, schema)
    try:
        assert await conn.fetchval("SHOW jit") == "off"
        assert await conn.fetchval("SELECT current_schema()") == schema
    finally:
        await conn.close()


async def test_cancelling_timers_probes_their_keys_even_when_the_statistics_are_stale(
    pool: asyncpg.Pool,
) -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    async with pool.acquire() as conn:
        # Statistics taken when almost every timer had fired...
        await conn.execute(
            "INSERT INTO due_timers (key, kind, due_at, fired_at) "
            "SELECT 'old:' || n, 'case.due_soon', $1, $1 FROM generate_series(1, 3000) AS n",
            now - timedelta(days=1),
        )
        await conn.execute("ANALYZE due_timers")
        # ...then a burst of pending ones that no ANALYZE has seen yet.
        await conn.execute(
            "INSERT INTO due_timers (key, kind, due_at) "
            "SELECT 'new:' || n, 'case.due_soon', $1 FROM generate_series(1, 3000) AS n",
            now + timedelta(days=1),
        )
        doomed = ["new:7", "new:2999", "old:5", "missing"]
        explain = conn.transaction()
        await explain.start()
        plan = json.loads(await conn.fetchval("EXPLAIN (FORMAT JSON, ANALYZE) " + _CANCEL, doomed))
        await explain.rollback()  # only the plan was wanted; the real cancel follows
        await cancel_many(conn, doomed)
        left = {r["key"] for r in await conn.fetch("SELECT key FROM due_timers WHERE key = ANY($1)", doomed)}

    assert left == {"old:5"}  # the pending ones went; a fired one stays as the record that it fired
    scanned = _rows_read(plan[0]["Plan"])
    assert scanned < 50, f"cancelling 4 timers read {scanned} rows: {json.dumps(plan)[:2000]}"


def _rows_read(node: dict) -> int:
    """Rows the plan's scans of due_timers produced, before filters, over all their loops."""
    own = 0
    if node.get("Relation Name") == "due_timers":
        produced = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
        own = produced * node.get("Actual Loops", 1)
    return own + sum(_rows_read(child) for child in node.get("Plans", []))
