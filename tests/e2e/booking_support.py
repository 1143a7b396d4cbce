"""A hall to book at, citizens to book with, and reading the slots' seats back from the event store."""

from __future__ import annotations

from typing import Any

import asyncpg

from domain.personal import id_check_char

FOOD = "11430100006182474N010100300000"  # 食品经营许可
KAIBAN = "11430100MB1C55389F201200100000"  # 设立登记


def hall_config(
    *, sessions: list[tuple[str, str]] | None = None, capacity: int | None = None, **rules: Any
) -> dict[str, Any]:
    """A 市民之家 with two windows for 市场准入 (group A) and one for 设立登记 (group B)."""
    return {
        "name": "长沙市民之家",
        "kind": "市民之家",
        "address": "长沙市岳麓区金星中路428号",
        "windows": [
            {"code": "W1", "groups": ["A"]},
            {"code": "W2", "groups": ["A"]},
            {"code": "W3", "groups": ["B"]},
        ],
        "groups": [
            {"code": "A", "name": "市场准入", "items": [FOOD], "prefix": "A", "capacity": capacity},
            {"code": "B", "name": "企业开办", "items": [KAIBAN], "prefix": "B"},
        ],
        "sessions": [
            {"start": start, "end": end}
            for start, end in (sessions or [("09:00", "12:00"), ("13:30", "17:00")])
        ],
        "rules": rules,
        "location": {"lat": 28.2282, "lon": 112.9388},
    }


def resident_id(serial: int) -> str:
    """A valid 居民身份证号码, unique per serial below a million."""
    first17 = f"430102{1950 + serial // 1000 % 70:04d}0101{serial % 1000:03d}"
    return first17 + id_check_char(first17)


def visitor(serial: int, name: str = "张三") -> dict[str, str]:
    return {"name": name, "idNumber": resident_id(serial), "phone": "13812341234"}


# Straight from the log, not the read model: what each slot's own events say.
SEAT_EVENTS = """
SELECT originator_id AS slot,
       count(*) FILTER (WHERE topic LIKE '%:Slot.SeatHeld') AS held,
       count(*) FILTER (WHERE topic LIKE '%:Slot.SeatConfirmed') AS confirmed,
       count(*) FILTER (WHERE topic LIKE '%:Slot.SeatFreed') AS freed
FROM stored_events
WHERE topic LIKE 'domain.booking.slot:Slot.%'
GROUP BY originator_id
"""


async def seats_in_the_store(url: str, schema: str) -> dict[Any, dict[str, int]]:
    """Per slot: seats held, confirmed and freed as the event store records them."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        return {r["slot"]: dict(r) for r in await conn.fetch(SEAT_EVENTS)}
    finally:
        await conn.close()


async def seats_in_the_read_model(url: str, schema: str) -> dict[Any, int]:
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        rows = await conn.fetch(
            "SELECT slot_id, count(*) FILTER (WHERE confirmed) AS n FROM booking_seats GROUP BY 1"
        )
        return {r["slot_id"]: r["n"] for r in rows}
    finally:
        await conn.close()
