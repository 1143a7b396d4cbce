"""Case numbers (办件编号): a sequence per region and day, unique under any concurrency, never reused."""

from __future__ import annotations

from datetime import date

import asyncpg

from domain.case import DEFAULT_PATTERN, format_case_number


async def next_case_number(
    conn: asyncpg.Connection | asyncpg.Pool, region: str, day: date, pattern: str = DEFAULT_PATTERN
) -> str:
    """Take the next number; a number taken by a command that then fails is simply skipped."""
    # One atomic upsert: concurrent callers queue on the row lock and each get their own value.
    seq: int = await conn.fetchval(
        """
        INSERT INTO case_number_sequences (region, day, last) VALUES ($1, $2, 1)
        ON CONFLICT (region, day) DO UPDATE SET last = case_number_sequences.last + 1
        RETURNING last
        """,
        region,
        day,
    )
    return format_case_number(region, day, seq, pattern)
