"""Consumer runners: exactly-once effects, leader election, wake-ups, ignored topics and lag."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import pytest
from eventsourcing.persistence import Mapper, StoredEvent
from prometheus_client import CollectorRegistry

from backend.consumers import (
    ConsumerRunner,
    Envelope,
    LagMetrics,
    consumer_status,
    ensure_installed,
    tracking_name,
)
from backend.store.recorder import EventRecorder
from projections.event_counts import EventCounts
from tests.integration.consumer_support import (  # noqa: F401 (fixtures)
    NOTED,
    OPENED,
    CountingDecoder,
    StartRunner,
    TicketBoard,
    mapper_fixture,
    note_tickets,
    open_tickets,
    recorder_fixture,
    seen_rows,
    start_runner_fixture,
    wait_for,
)

pytestmark = pytest.mark.integration


def unique(prefix: str = "board") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def position(pool: asyncpg.Pool, name: str, generation: int = 1) -> int | None:
    value: int | None = await pool.fetchval(
        "SELECT notification_id FROM tracking WHERE application_name = $1", tracking_name(name, generation)
    )
    return value


async def test_a_batch_killed_with_its_connection_is_redone_exactly_once(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    committed_at_kill: list[int] = []

    async def kill_at_37(conn: asyncpg.Connection, envelope: Envelope, suffix: str) -> None:
        if envelope.notification_id == 37 and not committed_at_kill:
            committed_at_kill.extend(await seen_rows(pool))
            await pool.execute("SELECT pg_terminate_backend($1, 5000)", conn.get_server_pid())

    name = unique()
    await open_tickets(recorder, mapper, 20, notes=2)  # 60 events
    runner = start_runner(TicketBoard(name, hook=kill_at_37), batch_size=25)
    first_pid = await _leader_pid(runner)
    await wait_for(lambda: _at(pool, name, 60), what="the runner to reach 60")

    assert committed_at_kill == list(range(1, 26))  # the first batch stood, the killed one did not
    assert await seen_rows(pool) == list(range(1, 61))  # every event once, none twice
    assert await pool.fetchval("SELECT count(*) FROM tickets WHERE notes = 2") == 20
    assert runner.backend_pid != first_pid  # it really did reconnect


async def test_a_runner_cancelled_mid_transaction_leaves_nothing_and_a_new_one_resumes(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    stalled = asyncio.Event()

    async def stall_at_30(conn: asyncpg.Connection, envelope: Envelope, suffix: str) -> None:
        if envelope.notification_id == 30:
            stalled.set()
            await asyncio.Event().wait()  # until cancelled

    name = unique()
    await open_tickets(recorder, mapper, 20, notes=2)
    first = start_runner(TicketBoard(name, hook=stall_at_30), batch_size=25)
    await asyncio.wait_for(stalled.wait(), 20)
    await first.stop(grace_seconds=0.2)  # the stalled batch cannot finish, so stop cancels it

    assert await position(pool, name) == 25
    assert await seen_rows(pool) == list(range(1, 26))
    start_runner(TicketBoard(name), batch_size=25)
    await wait_for(lambda: _at(pool, name, 60), what="the second runner to reach 60")
    assert await seen_rows(pool) == list(range(1, 61))


async def test_a_failing_handler_is_rolled_back_and_retried_never_skipped(
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    start_runner: StartRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures = 0

    async def fail_twice_at_7(conn: asyncpg.Connection, envelope: Envelope, suffix: str) -> None:
        nonlocal failures
        if envelope.notification_id == 7 and failures < 2:
            failures += 1
            raise RuntimeError("downstream hiccup")

    name = unique()
    await open_tickets(recorder, mapper, 5, notes=2)
    with caplog.at_level(logging.ERROR, logger="backend.consumers.runner"):
        start_runner(TicketBoard(name, hook=fail_twice_at_7), batch_size=5)
        await wait_for(lambda: _at(pool, name, 15), what="the runner to get past the failures")

    assert failures == 2
    assert await seen_rows(pool) == list(range(1, 16))
    assert sum("failed a batch after position 5" in r.getMessage() for r in caplog.records) == 2


async def test_one_of_two_runners_leads_and_the_other_takes_over_when_it_dies(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    in_batch, release = asyncio.Event(), asyncio.Event()

    async def hold_at_15(conn: asyncpg.Connection, envelope: Envelope, suffix: str) -> None:
        if envelope.notification_id == 15 and not in_batch.is_set():
            in_batch.set()
            await release.wait()

    name = unique()
    await open_tickets(recorder, mapper, 10, notes=2)  # 30 events
    # The first leader would wait 30 s to reconnect, so the takeover is the follower's.
    a = start_runner(TicketBoard(name, hook=hold_at_15), batch_size=10, retry_seconds=30)
    await asyncio.wait_for(in_batch.wait(), 20)
    board_b = TicketBoard(name)
    b = start_runner(board_b, batch_size=10)
    await asyncio.sleep(0.3)  # b has tried the lock a few times by now

    assert a.is_leader and not b.is_leader
    assert await position(pool, name) == 10
    [status] = await consumer_status(pool)
    assert status.leader_pid == a.backend_pid

    await pool.execute("SELECT pg_terminate_backend($1, 5000)", a.backend_pid)
    release.set()
    await wait_for(lambda: _at(pool, name, 30), what="the follower to take over")

    assert b.is_leader and not a.is_leader
    assert min(e.notification_id for e in board_b.handled) == 11  # resumed from the tracked position
    assert await seen_rows(pool) == list(range(1, 31))
    [status] = await consumer_status(pool)
    assert status.leader_pid == b.backend_pid


async def test_a_leader_whose_idle_connection_dies_reconnects_without_waiting_for_its_poll(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    name = unique()
    runner = start_runner(TicketBoard(name), poll_seconds=30)
    await wait_for(lambda: _idle(runner), what="the first (empty) batch")
    first_pid = runner.backend_pid
    await pool.execute("SELECT pg_terminate_backend($1, 5000)", first_pid)

    async def back() -> bool:
        return runner.is_leader and runner.backend_pid != first_pid

    await wait_for(back, within=10, what="the runner to lead again on a new connection")
    await open_tickets(recorder, mapper, 2)
    await wait_for(lambda: _at(pool, name, 2), within=10, what="the reconnected runner")


async def test_a_notification_wakes_the_runner_long_before_its_poll(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    name = unique()
    runner = start_runner(TicketBoard(name), poll_seconds=30)
    await wait_for(lambda: _idle(runner), what="the first (empty) batch")
    await asyncio.sleep(0.1)  # now it waits on LISTEN, with 30 s to go before it would poll

    await open_tickets(recorder, mapper, 1)
    took = await wait_for(lambda: _at(pool, name, 1), within=10, what="the woken runner")
    assert took < 5.0, f"handled after {took:.2f}s: the notification did not wake it"


async def test_without_listen_polling_still_handles_new_events(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    name = unique()
    runner = start_runner(TicketBoard(name), poll_seconds=0.5, listen=False)
    await wait_for(lambda: _idle(runner), what="the first (empty) batch")

    await open_tickets(recorder, mapper, 3)
    await wait_for(lambda: _at(pool, name, 3), within=10, what="the polling runner")
    assert await seen_rows(pool) == [1, 2, 3]


async def test_ignored_topics_are_not_decoded_but_the_position_passes_them(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    name = unique()
    decoder = CountingDecoder(mapper)
    board = TicketBoard(name, topics=frozenset({OPENED}))
    start_runner(board, decode=decoder, batch_size=4)
    tickets = await open_tickets(recorder, mapper, 5, notes=2)  # 5 Opened, 10 Noted
    await wait_for(lambda: _at(pool, name, 15), what="the runner to pass all 15")
    assert decoder.calls == 5
    assert {e.topic for e in board.handled} == {OPENED}

    await note_tickets(recorder, mapper, tickets)  # only ignored events
    await wait_for(lambda: _at(pool, name, 20), what="the position to pass ignored events")
    assert decoder.calls == 5
    assert NOTED not in {e.topic for e in board.handled}
    assert len(await seen_rows(pool)) == 5


async def test_a_consumer_that_does_not_decode_counts_events_without_decoding_any(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    decoder = CountingDecoder(mapper)
    start_runner(EventCounts(), decode=decoder, batch_size=4)
    await open_tickets(recorder, mapper, 3, notes=2)  # 3 Opened, 6 Noted
    # A stored state no decoder could read: a consumer that decodes would stop here.
    await recorder.append([StoredEvent(uuid.uuid4(), 1, NOTED, b"not json")])
    await wait_for(lambda: _at(pool, "event_counts", 10), what="event_counts to pass all 10")
    counted = dict(await pool.fetch("SELECT topic, sum(events)::int FROM event_counts GROUP BY topic"))
    assert counted == {OPENED: 3, NOTED: 7}
    assert decoder.calls == 0


async def test_lag_is_head_minus_position_before_and_after_catching_up(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    name = unique()
    board = TicketBoard(name)
    await ensure_installed(pool, board)
    await open_tickets(recorder, mapper, 4, notes=2)  # 12 events
    registry = CollectorRegistry()
    metrics = LagMetrics(registry)

    [before] = await consumer_status(pool, metrics)
    assert (before.name, before.position, before.head, before.lag) == (name, 0, 12, 12)
    assert not before.has_leader and before.generation == 1
    assert registry.get_sample_value("citypass_consumer_lag", {"consumer": name}) == 12

    runner = start_runner(board)
    await wait_for(lambda: _at(pool, name, 12), what="the runner to catch up")
    [after] = await consumer_status(pool, metrics)
    assert (after.position, after.head, after.lag) == (12, 12, 0)
    assert after.has_leader and after.leader_pid == runner.backend_pid
    assert registry.get_sample_value("citypass_consumer_lag", {"consumer": name}) == 0
    assert registry.get_sample_value("citypass_consumer_position", {"consumer": name}) == 12


async def _at(pool: asyncpg.Pool, name: str, target: int) -> bool:
    return await position(pool, name) == target


async def _idle(runner: ConsumerRunner) -> bool:
    return runner.is_leader and runner.position is not None


async def _leader_pid(runner: ConsumerRunner) -> int:
    async def leading() -> bool:
        return runner.is_leader

    await wait_for(leading, what=f"{runner.name} to lead")
    assert runner.backend_pid is not None
    return runner.backend_pid
