"""Streams benchmark: SSE fan-out to departments while cases are written, and chain verification.

A dev server (`citypass serve`, `--workers` processes) runs the consumers and the
stream hubs. `--subscribers` SSE clients, officers of `--departments` departments
(D00, D01, …) in turn, connect from this process with aiohttp. Meanwhile this process
writes cases straight into the same event store at `--rate` events per second, each
case routed to one department and then handled there: submitted, accepted, routed,
three steps claimed and signed, concluded (ten events, eight of them the department's).

Delivery latency is the time from an event's commit (its `recorded_at`, stamped by
PostgreSQL in the appending transaction) to its arrival at a subscriber; the goal is
p99 < 200 ms. After the writing stops every subscriber reads on until it has its
department's last event, and is checked against the department's stream as stored:
`missed` counts expected events never received, `duplicates` events received twice.
Then the whole store's hash chain is verified, and its rate reported. The last line
printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from backend.store.aggregates import AggregateStore
from backend.store.hashchain import verify_store
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import PersonalCipher, dev_data_keys
from backend.store.recorder import EventRecorder
from bench.api_server import CpuMeter, machine_facts
from tests.dbutil import database_url, drop_schema_sync, new_schema_name
from tests.e2e.conftest import start_server, stop_server
from tests.e2e.stream_writer import Writer

GOAL_P99_MS = 200.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


class Subscriber:
    def __init__(self, department: str) -> None:
        self.department = department
        self.received: list[int] = []
        self.latencies_ms: list[float] = []
        self.dropped = 0

    async def run(self, session: aiohttp.ClientSession, token: str, start: int, stop: asyncio.Event) -> None:
        cursor = start
        while not stop.is_set():
            headers = {"authorization": f"Bearer {token}", "last-event-id": str(cursor)}
            async with session.get("/api/v1/streams/events/sse", headers=headers) as response:
                assert response.status == 200, await response.text()
                event, data = None, None
                async for raw in response.content:
                    line = raw.rstrip(b"\n")
                    if line.startswith(b"event: "):
                        event = line[7:]
                    elif line.startswith(b"data: "):
                        data = line[6:]
                    elif not line and data is not None:
                        arrived = time.time()
                        if event == b"dropped":
                            self.dropped += 1
                            break
                        body = json.loads(data)
                        recorded = datetime.fromisoformat(body["recordedAt"]).timestamp()
                        self.latencies_ms.append((arrived - recorded) * 1000)
                        self.received.append(body["position"])
                        cursor = body["position"]
                        event, data = None, None
                    if stop.is_set():
                        return


async def department_streams(pool: asyncpg.Pool, departments: list[str], after: int) -> dict[str, list[int]]:
    """The positions each department's stream holds after `after`, as published."""
    rows = await pool.fetch(
        "SELECT department, array_agg(position ORDER BY position) FROM stream_audience "
        "WHERE department = ANY($1::text[]) AND position > $2 GROUP BY department",
        departments,
        after,
    )
    found = {r[0]: list(r[1]) for r in rows}
    return {d: found.get(d, []) for d in departments}


async def run(
    base_url: str, url: str, schema: str, args: argparse.Namespace, meter: CpuMeter
) -> dict[str, Any]:
    pool = await asyncpg.create_pool(url, min_size=2, max_size=8, server_settings={"search_path": schema})
    recorder = EventRecorder(url, schema, pool)
    await recorder.start()
    mapper = make_mapper(personal=PersonalCipher(dev_data_keys()))
    store = AggregateStore(recorder, mapper, snapshot_every=0)
    writer = Writer(store, args.departments)
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as s:
        tokens = {}
        for d in range(args.departments):
            department = f"D{d:02d}"
            async with s.post("/api/v1/auth/dev-login", json={
                "subject": f"officer-{department}", "role": "officer", "department": department,
            }) as response:  # fmt: skip
                tokens[department] = (await response.json())["token"]
        async with s.get("/health") as response:
            start = (await response.json())["headPosition"]
        subscribers = [Subscriber(f"D{n % args.departments:02d}") for n in range(args.subscribers)]
        tasks = [asyncio.create_task(sub.run(s, tokens[sub.department], start, stop)) for sub in subscribers]
        await asyncio.sleep(2)  # all connected and subscribed
        tick = 0.02
        per_tick = max(1, round(args.rate * tick))
        first, began = meter.sample(), time.perf_counter()
        while time.perf_counter() - began < args.seconds:
            due = began + (writer.written / per_tick) * tick
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await writer.step(per_tick)
        elapsed, last = time.perf_counter() - began, meter.sample()
        deadline = time.monotonic() + 60
        head = await pool.fetchval("SELECT max(notification_id) FROM stored_events")
        while time.monotonic() < deadline:  # the stream has published every event written
            published = await pool.fetchval(
                "SELECT notification_id FROM tracking WHERE application_name LIKE 'event_stream#%'"
            )
            if published is not None and published >= head:
                break
            await asyncio.sleep(0.2)
        expected = await department_streams(pool, list(tokens), start)
        while time.monotonic() < deadline:  # and each subscriber has read to its department's last event
            if all(
                not expected[sub.department]
                or (sub.received and sub.received[-1] >= expected[sub.department][-1])
                for sub in subscribers
            ):
                break
            await asyncio.sleep(0.2)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    missed = sum(len(set(expected[sub.department]) - set(sub.received)) for sub in subscribers)
    duplicates = sum(len(sub.received) - len(set(sub.received)) for sub in subscribers)
    out_of_order = sum(sub.received != sorted(sub.received) for sub in subscribers)
    async with pool.acquire() as conn:
        total = await conn.fetchval("SELECT count(*) FROM stream_events")
        began_verify = time.perf_counter()
        report = await verify_store(conn)
        verify_s = time.perf_counter() - began_verify
    await recorder.close()
    await pool.close()
    latencies = [ms for sub in subscribers for ms in sub.latencies_ms]
    return {
        "events_written": writer.written,
        "write_rate_per_s": writer.written / elapsed,
        "published_events": total,
        "deliveries": len(latencies),
        "latencies": latencies,
        "missed": missed,
        "duplicates": duplicates,
        "out_of_order_subscribers": out_of_order,
        "dropped": sum(sub.dropped for sub in subscribers),
        "verify": {"events": report.events_checked, "seconds": verify_s, "ok": report.ok},
        "cpu": CpuMeter.between(first, last),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--departments", type=int, default=10)
    parser.add_argument("--rate", type=float, default=500.0, help="events written per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="server processes (CITYPASS_WORKERS)")
    args = parser.parse_args()
    url = database_url()
    facts = machine_facts(url, ["litestar", "asyncpg", "eventsourcing", "granian"])
    schema = new_schema_name()
    env = {"CITYPASS_WORKERS": str(args.workers)}
    server = start_server(Path(tempfile.mkdtemp(prefix="bench-streams-")), schema, env)
    try:
        meter = CpuMeter(server.process.pid, facts.pop("postmaster_pid"))
        result = asyncio.run(run(server.base_url, url, schema, args, meter))
    finally:
        stop_server(server)
        drop_schema_sync(schema)
    latencies = result.pop("latencies")
    verify = result.pop("verify")
    p99 = percentile(latencies, 99)
    figures = {
        "sse_subscribers": args.subscribers,
        "departments": args.departments,
        "workers": args.workers,
        "target_rate_per_s": args.rate,
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in result.items() if k != "cpu"},
        "delivery_p50_ms": round(percentile(latencies, 50), 1),
        "delivery_p99_ms": round(p99, 1),
        "delivery_max_ms": round(max(latencies, default=float("nan")), 1),
        "verify_events": verify["events"],
        "verify_ok": verify["ok"],
        "verify_events_per_s": round(verify["events"] / verify["seconds"]),
        "cpu_cores": {k: round(v, 2) for k, v in result["cpu"].items()},
        "goals": {"delivery_p99_ms": "met" if p99 < GOAL_P99_MS else "MISSED"},
        "machine": facts,
    }
    for key, value in figures.items():
        if key != "machine":
            print(f"{key}: {value}")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
