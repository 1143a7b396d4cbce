"""Concurrent loads share queries, answer each caller exactly, and never miss an acknowledged append."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from eventsourcing.persistence import StoredEvent

from backend.store.loads import LoadCoalescer, Loaded
from backend.store.recorder import EventRecorder

pytestmark = pytest.mark.integration


class CountingPool:
    """The real pool, counting the queries that reach it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool, self.queries = pool, 0

    async def fetch(self, *args: object) -> list[asyncpg.Record]:
        self.queries += 1
        return await self.pool.fetch(*args)


async def test_many_concurrent_loads_share_few_queries(pool: asyncpg.Pool, recorder: EventRecorder) -> None:
    oids = [uuid.uuid4() for _ in range(200)]
    for n, oid in enumerate(oids):
        await recorder.append([StoredEvent(oid, v, "t:E", f"{n}-{v}".encode()) for v in range(1, n % 5 + 2)])
    counting = CountingPool(pool)
    loads = LoadCoalescer(counting, max_queries=2)  # type: ignore[arg-type]

    results = await asyncio.gather(*(loads.load(oid, 0) for oid in oids), loads.load(oids[7], 2))

    for n, (oid, loaded) in enumerate(zip(oids, results, strict=False)):
        events = loaded.events
        assert loaded.snapshot is None
        assert [e.originator_version for e in events] == list(range(1, n % 5 + 2))
        assert all(e.originator_id == oid for e in events)
        assert events[0].state == f"{n}-1".encode()
    assert [e.originator_version for e in results[-1].events] == [3]  # only versions after 2
    assert counting.queries < len(oids) / 10


async def test_a_load_sees_every_append_acknowledged_before_it(recorder: EventRecorder) -> None:
    oid = uuid.uuid4()
    seen: list[int] = []

    async def write_then_read(version: int) -> None:
        await recorder.append([StoredEvent(oid, version, "t:E", b"{}")])
        events = await recorder.select_events(oid)
        assert events[-1].originator_version >= version
        seen.append(len(events))

    for version in range(1, 40):
        await asyncio.gather(write_then_read(version), recorder.select_events(uuid.uuid4()))
    assert seen == list(range(1, 40))


async def test_a_failed_query_fails_its_waiters_and_the_next_loads_work(pool: asyncpg.Pool) -> None:
    class FlakyPool(CountingPool):
        async def fetch(self, *args: object) -> list[asyncpg.Record]:
            if self.queries == 0:
                self.queries += 1
                raise asyncpg.InterfaceError("connection was closed in the middle of operation")
            return await super().fetch(*args)

    loads = LoadCoalescer(FlakyPool(pool), max_queries=1)  # type: ignore[arg-type]
    results = await asyncio.gather(*(loads.load(uuid.uuid4(), 0) for _ in range(20)), return_exceptions=True)
    assert isinstance(results[0], asyncpg.InterfaceError)  # the first query's waiters heard of it
    assert all(isinstance(r, asyncpg.InterfaceError) or r == Loaded(None, []) for r in results)
    assert (await loads.load(uuid.uuid4(), 0)).events == []  # the same coalescer serves later loads


async def test_a_load_from_a_snapshot_gets_it_and_only_the_events_after_it(
    pool: asyncpg.Pool, recorder: EventRecorder
) -> None:
    with_snapshots, without = uuid.uuid4(), uuid.uuid4()
    for oid in (with_snapshots, without):
        await recorder.append([StoredEvent(oid, v, "t:E", f"{v}".encode()) for v in range(1, 8)])
    for version in (3, 5):
        await recorder.insert_snapshot(StoredEvent(with_snapshots, version, "t:S", f"s{version}".encode()))
    counting = CountingPool(pool)
    loads = LoadCoalescer(counting)  # type: ignore[arg-type]

    snapped, plain, whole = await asyncio.gather(
        loads.load(with_snapshots, 0, from_snapshot=True),
        loads.load(without, 0, from_snapshot=True),
        loads.load(with_snapshots, 0),  # not asked to start from a snapshot
    )

    assert snapped.snapshot is not None and snapped.snapshot.state == b"s5"  # the latest one
    assert [e.originator_version for e in snapped.events] == [6, 7]
    assert plain.snapshot is None and [e.originator_version for e in plain.events] == list(range(1, 8))
    assert whole.snapshot is None and [e.originator_version for e in whole.events] == list(range(1, 8))
    assert counting.queries == 1
