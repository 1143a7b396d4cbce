"""Our sessions run without JIT; timer cancellation and the dispatcher's grant lookup stay index probes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from backend.database import connect
from backend.timers import _CANCEL, cancel_many
from notifications.address_book import RESERVED_BEFORE

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


async def test_a_claim_finds_the_grants_it_reserved_before_without_reading_the_open_ones(
    pool: asyncpg.Pool,
) -> None:
    # Open grants pile up (a user may accept a subscription no notification ever uses); a claim
    # reads the few its notifications had reserved, whatever their number.
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO wechat_grants (subject, openid, template_id, granted_at, reserved_by) "
            "SELECT 'citizen-' || n, 'openid-' || n, 'tmpl', now(), "
            "       CASE WHEN n % 1000 = 0 THEN 'key-' || n END "
            "FROM generate_series(1, 20000) AS n"
        )
        await conn.execute("ANALYZE wechat_grants")
        keys = ["key-1000", "key-7000", "key-missing"]
        found = {r["reserved_by"] for r in await conn.fetch(RESERVED_BEFORE, keys)}
        plan = json.loads(await conn.fetchval("EXPLAIN (FORMAT JSON, ANALYZE) " + RESERVED_BEFORE, keys))

    assert found == {"key-1000", "key-7000"}
    scanned = _rows_read(plan[0]["Plan"], "wechat_grants")
    assert scanned < 50, f"finding 3 reservations read {scanned} rows: {json.dumps(plan)[:2000]}"


def _rows_read(node: dict, table: str = "due_timers") -> int:
    """Rows the plan's scans of `table` produced, before filters, over all their loops."""
    own = 0
    if node.get("Relation Name") == table:
        produced = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
        own = produced * node.get("Actual Loops", 1)
    return own + sum(_rows_read(child, table) for child in node.get("Plans", []))
