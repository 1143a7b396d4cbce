"""The 08:00 rush over real HTTP: 2,000 citizens race for 50 slots of 4 seats on a freshly released day.

Two server workers take the requests, so the two processes' holds on one slot meet
only in the event store's version check. Exactly 200 seats end confirmed, no slot
holds more than 4 in its own events, every loser is told "full", and the read model
agrees with the log.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from tests.dbutil import database_url
from tests.e2e.booking_support import FOOD, hall_config, seats_in_the_read_model, seats_in_the_store, visitor
from tests.e2e.conftest import LiveServer, server_at

pytestmark = pytest.mark.e2e

HALL = "RUSH"
RELEASED = "2026-12-14"  # Monday 7 December's 08:00 release: the fifth working day ahead
CITIZENS, SLOTS, SEATS = 2000, 50, 4
# 延时服务 hours cut into 15-minute slots: 14 + 20 + 16 = 50.
SESSIONS = [("08:30", "12:00"), ("13:00", "18:00"), ("18:30", "22:30")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with server_at(
        tmp_path_factory.mktemp("rush"), "2026-12-07T07:59:30+08:00", {"CITYPASS_WORKERS": "2"}
    ) as live:
        yield live


async def _login(client: httpx.AsyncClient, subject: str, role: str, **scope: str) -> dict[str, str]:
    response = await client.post("/api/v1/auth/dev-login", json={"subject": subject, "role": role, **scope})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


async def _released(client: httpx.AsyncClient) -> bool:
    response = await client.get(f"/api/v1/halls/{HALL}")
    return response.status_code == 200 and RELEASED in response.json()["bookableDays"]


async def test_the_rush_fills_every_seat_once_and_tells_the_rest_it_is_full(server: LiveServer) -> None:
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as client:
        manager = await _login(client, "manager-rush", "manager", hall=HALL)
        config = hall_config(sessions=SESSIONS, capacity=SEATS, slotMinutes=15)
        assert (
            await client.put(f"/api/v1/admin/halls/{HALL}", json=config, headers=manager)
        ).status_code == 200
        citizens = await asyncio.gather(*(_login(client, f"rusher-{n}", "citizen") for n in range(CITIZENS)))
        day = await client.get(f"/api/v1/halls/{HALL}/slots", params={"item": FOOD, "day": RELEASED})
        assert day.status_code == 200 and day.json()["bookable"] is False, "released before 08:00"
        deadline = time.monotonic() + 45
        while not await _released(client):
            assert time.monotonic() < deadline, "the day was not released at 08:00"
            await asyncio.sleep(0.05)
        day = (await client.get(f"/api/v1/halls/{HALL}/slots", params={"item": FOOD, "day": RELEASED})).json()
        starts = [s["start"] for s in day["slots"]]
        assert len(starts) == SLOTS and {s["left"] for s in day["slots"]} == {SEATS}

        async def rush(n: int) -> tuple[str, float]:
            who, began = citizens[n], time.perf_counter()
            body = {"hall": HALL, "itemCode": FOOD, "start": starts[n % SLOTS], "visitor": visitor(n)}
            held = await client.post("/api/v1/appointments", json=body, headers=who)
            if held.status_code != 201:
                return held.json().get("type", str(held.status_code)).rsplit("/", 1)[
                    -1
                ], time.perf_counter() - began
            done = await client.post(f"/api/v1/appointments/{held.json()['id']}/confirmation", headers=who)
            state = done.json()["state"] if done.status_code == 200 else f"confirm {done.status_code}"
            return state, time.perf_counter() - began

        outcomes = await asyncio.gather(*(rush(n) for n in range(CITIZENS)))
    told = Counter(result for result, _ in outcomes)
    assert told == {"confirmed": SLOTS * SEATS, "slot-full": CITIZENS - SLOTS * SEATS}, told

    url = database_url()
    in_store = await seats_in_the_store(url, server.schema)
    assert len(in_store) == SLOTS
    # Nothing expired or was freed, so each slot's confirmed seats are its held ones: exactly 4.
    assert {(s["held"], s["confirmed"], s["freed"]) for s in in_store.values()} == {(SEATS, SEATS, 0)}

    async def agreed() -> bool:
        return await seats_in_the_read_model(url, server.schema) == {
            k: v["confirmed"] for k, v in in_store.items()
        }

    deadline = time.monotonic() + 30
    while not await agreed():
        assert time.monotonic() < deadline, "the read model never agreed with the event store"
        await asyncio.sleep(0.2)
    latencies = sorted(seconds for _, seconds in outcomes)
    print(f"rush: {CITIZENS} citizens, p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms")  # fmt: skip
