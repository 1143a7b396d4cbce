"""Our own guarantees of the event store, beyond the library's contract tests."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest
from eventsourcing.persistence import StoredEvent, Tracking

from backend.database import connect
from backend.store.errors import ConcurrencyError, StoreUnavailableError, TrackingConflictError
from backend.store.recorder import EventRecorder

pytestmark = pytest.mark.integration


def event(oid: uuid.UUID, version: int, payload: bytes = b"{}") -> StoredEvent:
    return StoredEvent(oid, version, "tests:Happened", payload)


async def test_reader_never_sees_a_later_id_before_an_earlier_one(
    db_url: str, schema: str, pool: asyncpg.Pool, recorder: EventRecorder
) -> None:
    # A second recorder stands for another process; its transaction is slow.
    slow = EventRecorder(db_url, schema, pool)
    await slow.start()
    in_slow_commit = asyncio.Event()

    async def dawdle() -> None:
        in_slow_commit.set()
        await asyncio.sleep(0.5)

    slow.before_commit = dawdle
    seen: list[list[int]] = []
    stop = asyncio.Event()

    async def tail() -> None:
        while not stop.is_set():
            rows = await recorder.fetch_notifications(None, 1000)
            seen.append([r[0] for r in rows])
            await asyncio.sleep(0.005)

    reader = asyncio.create_task(tail())
    slow_append = asyncio.create_task(slow.append([event(uuid.uuid4(), 1)]))
    await in_slow_commit.wait()
    fast_ids = await recorder.append([event(uuid.uuid4(), 1)])
    slow_ids = await slow_append
    await asyncio.sleep(0.05)
    stop.set()
    await reader
    await slow.close()

    assert slow_ids == [1] and fast_ids == [2]  # the fast writer waited for the lock
    assert seen and seen[-1] == [1, 2]
    for snapshot in seen:
        assert snapshot == list(range(1, len(snapshot) + 1)), f"reader saw a gap: {snapshot}"


async def test_tracking_is_written_with_its_events_or_not_at_all(recorder: EventRecorder) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await recorder.append([event(a, 1)], tracking=Tracking("upstream", 5))

    # The events conflict: the tracking position must not move.
    with pytest.raises(ConcurrencyError):
        await recorder.append([event(a, 1), event(b, 1)], tracking=Tracking("upstream", 6))
    assert await recorder.max_tracking_id("upstream") == 5
    assert await recorder.select_events(b) == []

    # The tracking conflicts: the events must not be stored.
    with pytest.raises(TrackingConflictError):
        await recorder.append([event(b, 1)], tracking=Tracking("upstream", 5))
    assert await recorder.select_events(b) == []

    # A crash before COMMIT loses both, and the retry then stores both once.
    crashes = 1

    async def crash() -> None:
        nonlocal crashes
        if crashes:
            crashes -= 1
            raise ConnectionResetError("connection dropped before COMMIT")

    recorder.before_commit = crash
    ids = await recorder.append([event(b, 1)], tracking=Tracking("upstream", 7))
    assert ids == [2]
    assert await recorder.max_tracking_id("upstream") == 7
    assert [e.originator_version for e in await recorder.select_events(b)] == [1]


async def test_fifty_concurrent_writers_one_winner_per_version(recorder: EventRecorder) -> None:
    oid = uuid.uuid4()
    wins: list[int] = []
    conflicts = 0

    async def writer(n: int) -> None:
        nonlocal conflicts
        written = 0
        while written < 4:
            head = await recorder.select_events(oid, desc=True, limit=1)
            version = head[0].originator_version + 1 if head else 1
            try:
                await recorder.append([event(oid, version, f'{{"w":{n}}}'.encode())])
            except ConcurrencyError:
                conflicts += 1
            else:
                wins.append(version)
                written += 1

    # First round: all fifty race for version 1 at once.
    first = await asyncio.gather(
        *(recorder.append([event(oid, 1)]) for _ in range(50)), return_exceptions=True
    )
    assert sum(isinstance(r, list) for r in first) == 1
    assert all(isinstance(r, ConcurrencyError) for r in first if not isinstance(r, list))

    await asyncio.gather(*(writer(n) for n in range(50)))
    stored = [e.originator_version for e in await recorder.select_events(oid)]
    assert stored == list(range(1, 202))
    assert sorted(wins) == list(range(2, 202))  # every version won exactly once
    assert conflicts > 0  # the race was real


async def test_killed_writer_loses_nothing_acknowledged_and_acknowledges_nothing_unstored(
    db_url: str, schema: str, recorder: EventRecorder
) -> None:
    killer = await connect(db_url, schema)
    acked: dict[uuid.UUID, list[int]] = {}
    failed: list[uuid.UUID] = []

    async def one(oid: uuid.UUID) -> None:
        try:
            acked[oid] = await recorder.append([event(oid, 1), event(oid, 2)])
        except StoreUnavailableError:
            failed.append(oid)

    async def kill_repeatedly() -> int:
        kills = 0
        for _ in range(15):
            await asyncio.sleep(random.uniform(0.005, 0.03))
            pid = recorder.writer_pid
            if pid is not None and await killer.fetchval("SELECT pg_terminate_backend($1)", pid):
                kills += 1
        return kills

    oids = [uuid.uuid4() for _ in range(3000)]
    killing = asyncio.create_task(kill_repeatedly())
    for start in range(0, len(oids), 100):
        await asyncio.gather(*(one(o) for o in oids[start : start + 100]))
        await asyncio.sleep(0.01)
    kills = await killing

    rows = await killer.fetch("SELECT originator_id, notification_id FROM stored_events")
    stored: dict[uuid.UUID, list[int]] = {}
    for oid, nid in rows:
        stored.setdefault(oid, []).append(nid)
    await killer.close()

    assert kills >= 3, "the writer was hardly ever killed; the test proved nothing"
    for oid, ids in acked.items():
        assert sorted(stored.get(oid, [])) == ids  # acknowledged means stored, with those ids
    for oid in failed:
        assert oid not in stored  # refused means not stored
    assert set(stored) <= set(acked)  # nothing stored that nobody was told about
    all_ids = sorted(nid for ids in stored.values() for nid in ids)
    assert all_ids == list(range(1, len(all_ids) + 1))  # still gapless


async def test_commit_that_landed_but_lost_its_answer_is_acknowledged_once(
    recorder: EventRecorder,
) -> None:
    drops = 1

    async def drop_answer() -> None:
        nonlocal drops
        if drops:
            drops -= 1
            raise ConnectionResetError("connection dropped after COMMIT")

    recorder.after_commit = drop_answer
    oid = uuid.uuid4()
    ids = await recorder.append([event(oid, 1)])
    assert ids == [1]
    assert drops == 0
    assert [e.originator_version for e in await recorder.select_events(oid)] == [1]
    assert await recorder.max_notification_id() == 1
