"""Case numbers (办件编号): `{region}{yyyymmdd}{sequence}`, unique under any concurrency, never reused."""

from __future__ import annotations

from datetime import date

import asyncpg

DEFAULT_PATTERN = "{region}{yyyymmdd}{seq:06d}"


class CaseNumberError(ValueError):
    """The pattern or the region cannot make a case number."""


def format_case_number(region: str, day: date, seq: int, pattern: str = DEFAULT_PATTERN) -> str:
    if not (len(region) == 6 and region.isdigit()):
        raise CaseNumberError(f"region must be a 6-digit code, not {region!r}")
    try:
        return pattern.format(region=region, yyyymmdd=day.strftime("%Y%m%d"), seq=seq)
    except (KeyError, ValueError, IndexError) as exc:
        raise CaseNumberError(f"bad case number pattern {pattern!r}: {exc}") from exc


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
