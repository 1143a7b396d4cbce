"""Case numbers are unique under concurrency, per region and day, and follow the configured pattern."""

from __future__ import annotations

import asyncio
from datetime import date

import asyncpg
import pytest

from backend.cases.numbers import next_case_number
from backend.database import create_pool
from domain.case import CaseNumberError, format_case_number

pytestmark = pytest.mark.integration
DAY = date(2026, 11, 23)


async def test_two_hundred_concurrent_numbers_are_all_different(pool: asyncpg.Pool) -> None:
    numbers = await asyncio.gather(*(next_case_number(pool, "430100", DAY) for _ in range(200)))
    assert len(set(numbers)) == 200
    assert sorted(numbers) == [f"43010020261123{n:06d}" for n in range(1, 201)]
    # Another day and another region start their own sequences.
    assert await next_case_number(pool, "430100", date(2026, 11, 24)) == "43010020261124000001"
    assert await next_case_number(pool, "430200", DAY) == "43020020261123000001"


async def test_taking_a_number_leaves_the_pooled_connection_committing_synchronously(
    db_url: str, schema: str
) -> None:
    pool = await create_pool(db_url, schema, min_size=1, max_size=1)
    try:
        assert await next_case_number(pool, "430100", DAY) == "43010020261123000001"
        # The one connection served the number's transaction; its own commits stay synchronous.
        assert await pool.fetchval("SHOW synchronous_commit") == "on"
        assert await pool.fetchval("SELECT last FROM case_number_sequences") == 1
    finally:
        await pool.close()


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("{region}{yyyymmdd}{seq:06d}", "43010020261123000042"),
        ("CS{region}-{yyyymmdd}-{seq:05d}", "CS430100-20261123-00042"),
    ],
)
def test_patterns(pattern: str, expected: str) -> None:
    assert format_case_number("430100", DAY, 42, pattern) == expected


@pytest.mark.parametrize(("region", "pattern"), [("4301", "{region}{seq}"), ("430100", "{nope}{seq}")])
def test_bad_region_or_pattern(region: str, pattern: str) -> None:
    with pytest.raises(CaseNumberError):
        format_case_number(region, DAY, 1, pattern)
