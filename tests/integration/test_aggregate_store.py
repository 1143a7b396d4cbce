"""Aggregates load from snapshots plus later events, save atomically, and retry commands on conflict."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest
from eventsourcing.domain import Aggregate, Snapshot, event

from backend.store.aggregates import AggregateStore
from backend.store.errors import AggregateNotFoundError, ConcurrencyError
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder

pytestmark = pytest.mark.integration


class Ledger(Aggregate):
    @event("Opened")
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.entries: list[Decimal] = []

    @event("Posted")
    def post(self, amount: Decimal) -> None:
        self.entries.append(amount)


async def test_snapshots_are_taken_and_used(recorder: EventRecorder, pool: asyncpg.Pool) -> None:
    store = AggregateStore(recorder, make_mapper(), snapshot_every=5)
    ledger = Ledger(owner="市场监管局")
    await store.save(ledger)
    for n in range(1, 13):
        ledger.post(Decimal(n))
        await store.save(ledger)
    snapshots = [r[0] for r in await pool.fetch("SELECT originator_version FROM snapshots ORDER BY 1")]
    assert snapshots == [5, 10]

    loaded = await store.get(ledger.id)
    assert loaded.version == 13 and loaded.entries == [Decimal(n) for n in range(1, 13)]
    at_seven = await store.get(ledger.id, version=7)  # snapshot 5, then events 6 and 7
    assert at_seven.version == 7 and at_seven.entries == [Decimal(n) for n in range(1, 7)]
    # The snapshot really is used: with the events it covers gone, the load still works.
    await pool.execute("DELETE FROM stored_events WHERE originator_version <= 10")
    again = await store.get(ledger.id)
    assert again.version == 13 and again.entries == loaded.entries


async def test_a_snapshot_of_an_older_shape_is_passed_over_for_the_events(
    recorder: EventRecorder, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AggregateStore(recorder, make_mapper(), snapshot_every=5)
    ledger = Ledger(owner="市场监管局")
    for n in range(1, 8):
        ledger.post(Decimal(n))
    await store.save(ledger)  # version 8: one snapshot, taken in class version 1's shape
    assert [r[0] for r in await pool.fetch("SELECT originator_version FROM snapshots")] == [8]
    # What only the snapshot says: were it used, the load would show it.
    ledger.entries.append(Decimal(99))
    await pool.execute("DELETE FROM snapshots")
    await recorder.insert_snapshot(store.mapper.to_stored_event(Snapshot.take(ledger)))
    assert (await store.get(ledger.id)).entries[-1] == Decimal(99)

    # A release changes the shape (class version 2) without an upcast: the events decide.
    monkeypatch.setattr(Ledger, "class_version", 2, raising=False)
    loaded = await store.get(ledger.id)
    assert loaded.version == 8 and loaded.entries == [Decimal(n) for n in range(1, 8)]
    assert (await store.get(ledger.id, version=8)).entries == loaded.entries


async def test_history_at_a_version_without_snapshots(recorder: EventRecorder) -> None:
    store = AggregateStore(recorder, make_mapper(), snapshot_every=0)
    ledger = Ledger(owner="税务局")
    ledger.post(Decimal("1.10"))
    ledger.post(Decimal("2.20"))
    await store.save(ledger)
    assert (await store.get(ledger.id, version=2)).entries == [Decimal("1.10")]
    with pytest.raises(AggregateNotFoundError):
        await store.get(uuid.uuid4())


async def test_several_aggregates_save_atomically(recorder: EventRecorder) -> None:
    store = AggregateStore(recorder, make_mapper(), snapshot_every=0)
    first, second = Ledger(owner="a"), Ledger(owner="b")
    await store.save(first)
    stale = await store.get(first.id)
    first.post(Decimal(1))
    await store.save(first)
    stale.post(Decimal(2))  # version 2 again
    second.post(Decimal(3))
    with pytest.raises(ConcurrencyError):
        await store.save(stale, second)
    with pytest.raises(AggregateNotFoundError):
        await store.get(second.id)  # nothing of the failed save was stored


async def test_execute_reloads_and_retries_on_conflict(recorder: EventRecorder) -> None:
    store = AggregateStore(recorder, make_mapper(), snapshot_every=0)
    ledger = Ledger(owner="公安局")
    await store.save(ledger)

    results = await asyncio.gather(
        *(store.execute(ledger.id, lambda agg, n=n: agg.post(Decimal(n)) or n, retries=50) for n in range(20))
    )
    final = await store.get(ledger.id)
    assert sorted(results) == list(range(20))
    assert sorted(final.entries) == [Decimal(n) for n in range(20)]  # every command applied once
    assert final.version == 21
