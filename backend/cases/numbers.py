"""Case numbers (办件编号) and other daily counters: a sequence per key and day, never reused."""

from __future__ import annotations

from datetime import date

import asyncpg

from domain.case import DEFAULT_PATTERN, format_case_number


async def next_case_number(pool: asyncpg.Pool, region: str, day: date, pattern: str = DEFAULT_PATTERN) -> str:
    """Take the next number; a number taken by a command that then fails is simply skipped."""
    return format_case_number(region, day, await next_in_day(pool, region, day), pattern)


async def next_in_day(pool: asyncpg.Pool, counter: str, day: date) -> int:
    """The next value of a counter that starts again at 1 each day (case numbers, complaint numbers)."""
    seq: int = await pool.fetchval(_TAKE, counter, day)  # one statement, its own transaction
    return seq


# One atomic upsert: concurrent callers queue on the row lock and each get their own value.
# The lock lasts until COMMIT, so a COMMIT that waited for its WAL flush would let one
# submission per flush through (~300/s on a plain disk). This transaction's COMMIT does not
# wait (synchronous_commit off for it alone), and that is safe: WAL is flushed in order, so
# the durable append of the case that uses a number flushes the counter's increment too.
# A crash can lose only increments whose numbers no durable case holds, and reusing those
# breaks no uniqueness. set_config(…, true) lasts until the end of this transaction only,
# which is the statement's own: its COMMIT runs before the setting is undone, in one round
# trip instead of BEGIN, the upsert and COMMIT.
_TAKE = """
INSERT INTO case_number_sequences (region, day, last) VALUES ($1, $2, 1)
ON CONFLICT (region, day) DO UPDATE SET last = case_number_sequences.last + 1
RETURNING last, set_config('synchronous_commit', 'off', true)
"""
