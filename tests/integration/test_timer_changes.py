"""TimerChanges: schedules and cancels written at once leave the rows that one by one would."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from backend.timers import TimerChanges, cancel, schedule

pytestmark = pytest.mark.integration
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)

# What the table holds for a key before the batch: nothing, an unfired row, a fired row.
STARTS = ("absent", "pending", "fired")
# Every sequence of up to three operations: a schedule (to one of two times) or a cancel.
OPS = ("due1", "due2", "cancel")
SEQUENCES = [seq for n in range(1, 4) for seq in itertools.product(OPS, repeat=n)]


async def rows(pool: asyncpg.Pool, prefix: str) -> dict[str, tuple[object, ...]]:
    found = await pool.fetch(
        "SELECT key, kind, due_at, payload, attempts, last_error, fired_at, created_at "
        "FROM due_timers WHERE key LIKE $1",
        prefix + "%",
    )
    return {r["key"].removeprefix(prefix): tuple(r)[1:] for r in found}


async def test_written_at_once_as_one_by_one_for_every_sequence_and_starting_row(pool: asyncpg.Pool) -> None:
    cases = [(start, seq) for start in STARTS for seq in SEQUENCES]
    async with pool.acquire() as conn:
        async with conn.transaction():  # the same starting rows under both prefixes, created_at too
            for prefix in ("one:", "all:"):
                for n, (start, _) in enumerate(cases):
                    if start != "absent":
                        await schedule(conn, f"{prefix}{n}", "old", T0, {"n": n})
                    if start == "fired":
                        await conn.execute(
                            "UPDATE due_timers SET fired_at = $2 WHERE key = $1", f"{prefix}{n}", T0
                        )
            await conn.execute("UPDATE due_timers SET attempts = 2, last_error = 'boom'")
        # One transaction, so created_at (now()) tells a kept row from a re-inserted one.
        async with conn.transaction():
            changes = TimerChanges()
            for n, (_, seq) in enumerate(cases):
                for op in seq:
                    if op == "cancel":
                        await cancel(conn, f"one:{n}")
                        changes.cancel(f"all:{n}")
                    else:
                        due = T0 + timedelta(days=1 if op == "due1" else 2)
                        await schedule(conn, f"one:{n}", "new", due, {"op": op})
                        changes.schedule(f"all:{n}", "new", due, {"op": op})
            await changes.write(conn)
    one_by_one, at_once = await rows(pool, "one:"), await rows(pool, "all:")
    assert at_once == one_by_one
    # The comparison means something: every outcome occurs.
    assert len(one_by_one) < len(cases)  # some rows were cancelled away
    assert {r[0] for r in one_by_one.values()} == {"old", "new"}  # fired rows stayed as they were
    assert len({r[-1] for r in one_by_one.values()}) == 2  # some rows kept, some created now


async def test_nothing_noted_writes_nothing_and_a_written_batch_starts_afresh(pool: asyncpg.Pool) -> None:
    changes = TimerChanges()
    async with pool.acquire() as conn:
        await changes.write(conn)
        changes.schedule("k", "kind", T0)
        await changes.write(conn)
        await conn.execute("DELETE FROM due_timers")
        await changes.write(conn)  # already written: nothing to repeat
    assert await pool.fetchval("SELECT count(*) FROM due_timers") == 0
