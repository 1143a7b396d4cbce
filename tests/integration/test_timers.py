"""Due timers: scheduled from events by a consumer, fired as commands by a worker on an injected clock."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Mapper
from eventsourcing.utils import get_topic

from backend.consumers import Envelope
from backend.store.errors import ConcurrencyError
from backend.store.recorder import EventRecorder
from backend.timers import TimerHandler, TimerWorker, cancel, schedule
from tests.integration.consumer_support import (  # noqa: F401 (fixtures)
    OPENED,
    StartRunner,
    mapper_fixture,
    open_tickets,
    recorder_fixture,
    start_runner_fixture,
    wait_for,
)

pytestmark = pytest.mark.integration
T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


class Expiry(Aggregate):
    """What the demo timer's command creates; its id comes from the timer key, so it exists at most once."""

    @staticmethod
    def create_id(key: str, ticket: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"citypass:timer:{key}")

    @event("Fired")
    def __init__(self, key: str, ticket: str) -> None:
        self.key, self.ticket = key, ticket


FIRED = get_topic(Expiry.Fired)


class Deadlines:
    """A consumer with no tables of its own: it keeps the due-timers table in step with events."""

    topics = frozenset({OPENED})
    tables: Sequence[str] = ()

    def __init__(self, name: str) -> None:
        self.name = name

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        pass  # it owns no tables

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        for e in envelopes:
            due = e.recorded_at + timedelta(days=5)
            await schedule(conn, f"expire:{e.originator_id}", "expire", due, {"ticket": str(e.originator_id)})


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def expire_command(recorder: EventRecorder, mapper: Mapper[uuid.UUID], repeats: list[str]) -> TimerHandler:
    """The timer's command: create the Expiry; a second try for the same key conflicts and is done."""

    async def expire(key: str, payload: Any) -> None:
        expiry = Expiry(key=key, ticket=payload["ticket"])
        try:
            await recorder.append([mapper.to_stored_event(e) for e in expiry.collect_events()])
        except ConcurrencyError:
            logging.getLogger(__name__).info("timer %s already had its effect", key)
            repeats.append(key)

    return expire


async def fired_events(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM stored_events WHERE topic = $1", FIRED)
    return count


async def test_schedule_moves_an_unfired_timer_cancel_forgets_it_and_a_fired_one_stays(
    pool: asyncpg.Pool,
) -> None:
    key, done = f"remind:{uuid.uuid4()}", f"remind:{uuid.uuid4()}"
    async with pool.acquire() as conn:
        assert await schedule(conn, key, "remind", T0, {"n": 1}) is True
        assert await schedule(conn, key, "remind", T0 + timedelta(days=1), {"n": 2}) is True
        row = await conn.fetchrow("SELECT due_at, payload FROM due_timers WHERE key = $1", key)
        assert row["due_at"] == T0 + timedelta(days=1) and row["payload"] == '{"n": 2}'
        assert await cancel(conn, key) is True
        assert await cancel(conn, key) is False

        await schedule(conn, done, "remind", T0)
        await conn.execute("UPDATE due_timers SET fired_at = $2 WHERE key = $1", done, T0)
        assert await schedule(conn, done, "remind", T0 + timedelta(days=3)) is False  # a replay, say
        assert await conn.fetchval("SELECT due_at FROM due_timers WHERE key = $1", done) == T0
        assert await cancel(conn, done) is False


async def test_a_timer_scheduled_from_an_event_fires_once_when_due(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    start_runner(Deadlines(f"deadlines-{uuid.uuid4().hex[:8]}"))
    [ticket] = await open_tickets(recorder, mapper, 1)
    key = f"expire:{ticket.id}"

    async def scheduled() -> bool:
        return bool(await pool.fetchval("SELECT count(*) FROM due_timers WHERE key = $1", key))

    await wait_for(scheduled, what="the consumer to schedule the timer")
    recorded_at = await pool.fetchval("SELECT recorded_at FROM stored_events WHERE notification_id = 1")
    due_at = await pool.fetchval("SELECT due_at FROM due_timers WHERE key = $1", key)
    assert due_at == recorded_at + timedelta(days=5)

    repeats: list[str] = []
    clock = FakeClock(due_at - timedelta(minutes=1))
    worker = TimerWorker(pool, {"expire": expire_command(recorder, mapper, repeats)}, clock)
    assert await worker.fire_due() == 0
    assert await fired_events(pool) == 0

    clock.now = due_at + timedelta(seconds=1)
    assert await worker.fire_due() == 1
    assert await worker.fire_due() == 0
    assert await fired_events(pool) == 1 and repeats == []
    assert await pool.fetchval("SELECT fired_at FROM due_timers WHERE key = $1", key) == clock.now
    stored = await recorder.select_events(Expiry.create_id(key, ""))
    assert [e.topic for e in stored] == [FIRED]


async def test_a_failing_handler_is_retried_with_exponential_backoff(
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = f"expire:{uuid.uuid4()}"
    async with pool.acquire() as conn:
        await schedule(conn, key, "expire", T0, {"ticket": "t-1"})
    command = expire_command(recorder, mapper, [])
    failures = 0

    async def flaky(key: str, payload: Any) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise RuntimeError("the case service is down")
        await command(key, payload)

    clock = FakeClock(T0)
    # rng() == 0.5 with jitter 0.5 stretches each delay by a quarter: 75 s, then 150 s.
    worker = TimerWorker(pool, {"expire": flaky}, clock, base_backoff=60, jitter=0.5, rng=lambda: 0.5)
    with caplog.at_level(logging.WARNING, logger="backend.timers"):
        assert await worker.fire_due() == 1
    row = await pool.fetchrow("SELECT * FROM due_timers WHERE key = $1", key)
    assert (row["attempts"], row["fired_at"]) == (1, None)
    assert row["last_error"] == "RuntimeError: the case service is down"
    assert row["due_at"] == T0 + timedelta(seconds=75)
    assert any("failed on attempt 1" in r.getMessage() for r in caplog.records)

    assert await worker.fire_due() == 0  # not due again yet
    clock.now = T0 + timedelta(seconds=75)
    assert await worker.fire_due() == 1
    assert await pool.fetchval("SELECT due_at FROM due_timers WHERE key = $1", key) == clock.now + timedelta(
        seconds=150
    )
    clock.now += timedelta(seconds=150)
    assert await worker.fire_due() == 1
    assert await pool.fetchval("SELECT fired_at FROM due_timers WHERE key = $1", key) == clock.now
    assert await fired_events(pool) == 1

    capped = TimerWorker(pool, {}, clock, base_backoff=1, max_backoff=10, jitter=0.2)
    assert [capped.backoff(n) >= min(2 ** (n - 1), 10) for n in range(1, 8)] == [True] * 7
    assert all(capped.backoff(n) <= min(2 ** (n - 1), 10) * 1.2 for n in range(1, 8))


async def test_refiring_after_a_crash_between_command_and_mark_does_not_repeat_the_effect(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    key = f"expire:{uuid.uuid4()}"
    async with pool.acquire() as conn:
        await schedule(conn, key, "expire", T0, {"ticket": "t-2"})
    repeats: list[str] = []
    command = expire_command(recorder, mapper, repeats)
    appended = asyncio.Event()

    async def command_then_crash(key: str, payload: Any) -> None:
        await command(key, payload)
        appended.set()
        await asyncio.Event().wait()  # the process dies here, before the row is marked fired

    clock = FakeClock(T0 + timedelta(seconds=1))
    doomed = TimerWorker(pool, {"expire": command_then_crash}, clock, poll_seconds=0.05)
    task = doomed.start()
    await asyncio.wait_for(appended.wait(), 20)
    task.cancel()
    await asyncio.wait([task])
    assert await pool.fetchval("SELECT fired_at FROM due_timers WHERE key = $1", key) is None

    survivor = TimerWorker(pool, {"expire": command}, clock)
    assert await survivor.fire_due() == 0  # the dead worker's lease still stands
    clock.now += doomed.lease
    assert await survivor.fire_due() == 1
    assert repeats == [key]  # the command saw its own earlier effect and stopped
    assert await fired_events(pool) == 1
    assert await pool.fetchval("SELECT fired_at FROM due_timers WHERE key = $1", key) == clock.now


async def test_the_timers_of_a_pass_fire_together_and_a_failure_holds_back_none_of_the_others(
    pool: asyncpg.Pool,
) -> None:
    keys = [f"remind:{n}:{uuid.uuid4()}" for n in range(6)]
    async with pool.acquire() as conn:
        for key in keys:
            await schedule(conn, key, "remind", T0)
    # Five handlers meet at a barrier: one after another, the first would wait there forever.
    barrier = asyncio.Barrier(5)

    async def remind(key: str, payload: Any) -> None:
        if key == keys[0]:
            raise RuntimeError("this one fails")
        await asyncio.wait_for(barrier.wait(), 5)

    worker = TimerWorker(pool, {"remind": remind}, FakeClock(T0), batch=6)
    assert await worker.fire_due() == 6
    rows = {r["key"]: r for r in await pool.fetch("SELECT key, fired_at, attempts FROM due_timers")}
    assert [rows[k]["fired_at"] is not None for k in keys] == [False, True, True, True, True, True]
    assert rows[keys[0]]["attempts"] == 1  # failed once, backing off


async def test_two_workers_never_fire_the_same_timer(pool: asyncpg.Pool) -> None:
    keys = [f"remind:{uuid.uuid4()}" for _ in range(20)]
    async with pool.acquire() as conn:
        for key in keys:
            await schedule(conn, key, "remind", T0)
    fired: Counter[str] = Counter()

    async def remind(key: str, payload: Any) -> None:
        await asyncio.sleep(0.01)  # long enough for the other worker to come looking
        fired[key] += 1

    clock = FakeClock(T0)

    async def drain(worker: TimerWorker) -> None:
        while await worker.fire_due():
            pass

    workers = [TimerWorker(pool, {"remind": remind}, clock, batch=3) for _ in range(2)]
    await asyncio.gather(*(drain(w) for w in workers))
    assert fired == Counter(dict.fromkeys(keys, 1))
    assert await pool.fetchval("SELECT count(*) FROM due_timers WHERE fired_at IS NULL") == 0


async def test_a_timer_moved_while_its_handler_runs_is_not_marked_fired_and_fires_at_its_new_time(
    pool: asyncpg.Pool,
) -> None:
    key = f"remind:{uuid.uuid4()}"
    async with pool.acquire() as conn:
        await schedule(conn, key, "remind", T0)
    later = T0 + timedelta(days=2)
    calls: list[str] = []

    async def remind(key: str, payload: Any) -> None:
        calls.append(key)
        if len(calls) == 1:
            # A consumer moves the timer meanwhile: no row lock is held, so this does not wait.
            async with pool.acquire() as conn:
                await asyncio.wait_for(schedule(conn, key, "remind", later), 5)

    clock = FakeClock(T0)
    worker = TimerWorker(pool, {"remind": remind}, clock)
    assert await worker.fire_due() == 1
    row = await pool.fetchrow("SELECT due_at, fired_at FROM due_timers WHERE key = $1", key)
    assert row["fired_at"] is None and row["due_at"] == later
    clock.now = later
    assert await worker.fire_due() == 1
    assert calls == [key, key]
    assert await pool.fetchval("SELECT fired_at FROM due_timers WHERE key = $1", key) == later
