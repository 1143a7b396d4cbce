"""Blue/green rebuilds: replay into fresh tables while the old ones serve, swap, and carry on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.consumers import (
    ConsumerRunner,
    Envelope,
    RebuildInProgressError,
    consumer_status,
    ensure_installed,
    rebuild,
)
from backend.store.recorder import EventRecorder
from tests.integration.consumer_support import (  # noqa: F401 (fixtures)
    StartRunner,
    Ticket,
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

_TICKETS = "SELECT ticket_id, title, fee, notes FROM tickets ORDER BY ticket_id"


async def test_rebuild_fills_fresh_tables_while_the_old_serve_then_swaps_and_the_runner_goes_on(
    schema: str,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    start_runner: StartRunner,
) -> None:
    name = f"board-{uuid.uuid4().hex[:8]}"
    runner = start_runner(TicketBoard(name), batch_size=10)
    tickets = await open_tickets(recorder, mapper, 10, notes=2)  # 30 events
    await wait_for(lambda: _caught_up(runner, 30), what="generation 1 to reach 30")
    before = [tuple(r) for r in await pool.fetch(_TICKETS)]

    during: dict[str, object] = {}

    async def look_mid_replay(conn: asyncpg.Connection, envelope: Envelope, suffix: str) -> None:
        if suffix == "_g2" and envelope.notification_id == 15 and not during:
            during["served"] = [tuple(r) for r in await pool.fetch(_TICKETS)]
            [during["status"]] = await consumer_status(pool)
            await open_tickets(recorder, mapper, 2)  # 31, 32: the swap must catch these up

    counts: list[int] = []
    reading = asyncio.create_task(_keep_reading(pool, counts))
    generation = await rebuild(
        recorder, TicketBoard(name, hook=look_mid_replay), mapper.to_domain_event, batch_size=7
    )
    reading.cancel()
    await asyncio.wait([reading])

    assert generation == 2
    assert during["served"] == before  # generation 1 kept serving through the stable view
    status = during["status"]
    assert status.generation == 1 and status.building_generation == 2  # type: ignore[attr-defined]
    assert counts and counts == sorted(counts), "the view never failed and never went backwards"
    definition = await pool.fetchval(
        "SELECT definition FROM pg_views WHERE schemaname = $1 AND viewname = 'tickets'", schema
    )
    assert "tickets_g2" in definition
    assert await pool.fetchval("SELECT to_regclass('tickets_g1')") is None
    assert await pool.fetchval("SELECT to_regclass('ticket_seen_g1')") is None
    after = [tuple(r) for r in await pool.fetch(_TICKETS)]
    assert [r for r in after if r in before] == before and len(after) == 12  # identical, plus the late two
    assert await seen_rows(pool) == list(range(1, 33))

    await note_tickets(recorder, mapper, tickets[:3])  # 33..35, after the swap
    await wait_for(lambda: _caught_up(runner, 35), what="the live runner to go on in generation 2")
    assert runner.generation == 2
    assert await seen_rows(pool) == list(range(1, 36))
    assert await pool.fetchval("SELECT count(*) FROM tickets WHERE notes = 3") == 3
    [status] = await consumer_status(pool)
    assert (status.generation, status.position, status.lag, status.building_generation) == (2, 35, 0, None)
    names = {r[0] for r in await pool.fetch("SELECT application_name FROM tracking")}
    assert names == {f"{name}#g2"}


async def test_a_rebuild_under_steady_appends_loses_and_repeats_nothing(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    name = f"board-{uuid.uuid4().hex[:8]}"
    runner = start_runner(TicketBoard(name), batch_size=3, poll_seconds=0.05)
    await open_tickets(recorder, mapper, 20)
    stop = asyncio.Event()

    async def keep_appending() -> None:
        while not stop.is_set():
            await open_tickets(recorder, mapper, 1)
            await asyncio.sleep(0.002)

    appending = asyncio.create_task(keep_appending())
    await asyncio.sleep(0.05)
    assert await rebuild(recorder, TicketBoard(name), mapper.to_domain_event, batch_size=5) == 2
    await asyncio.sleep(0.05)  # the live runner writes generation 2 while appends go on
    stop.set()
    await appending
    last = await pool.fetchval("SELECT max(notification_id) FROM stored_events")
    await wait_for(lambda: _caught_up(runner, last), what="the live runner to catch up")

    assert runner.generation == 2
    assert await seen_rows(pool) == list(range(1, last + 1))
    assert await pool.fetchval("SELECT count(*) FROM tickets") == last


async def test_only_one_rebuild_of_a_consumer_runs_at_a_time(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    name = f"board-{uuid.uuid4().hex[:8]}"
    await open_tickets(recorder, mapper, 3)
    inside, release = asyncio.Event(), asyncio.Event()

    async def hold(conn: asyncpg.Connection, envelope: Envelope, suffix: str) -> None:
        inside.set()
        await release.wait()

    first = asyncio.create_task(rebuild(recorder, TicketBoard(name, hook=hold), mapper.to_domain_event))
    await asyncio.wait_for(inside.wait(), 20)
    with pytest.raises(RebuildInProgressError):
        await rebuild(recorder, TicketBoard(name), mapper.to_domain_event)
    release.set()
    assert await first == 2
    assert await seen_rows(pool) == [1, 2, 3]


async def _keep_reading(pool: asyncpg.Pool, counts: list[int]) -> None:
    while True:
        counts.append(await pool.fetchval("SELECT count(*) FROM tickets"))
        await asyncio.sleep(0.005)


async def _caught_up(runner: ConsumerRunner, target: int) -> bool:
    return runner.position == target


class SlimBoard:
    """A second version of the board: no fee column, and no ticket_seen table any more."""

    tables = ("tickets",)
    topics = None

    def __init__(self, name: str) -> None:
        self.name = name

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(f"CREATE TABLE tickets{suffix} (ticket_id uuid PRIMARY KEY, title text NOT NULL)")

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        for envelope in envelopes:
            if isinstance(envelope.event, Ticket.Opened):
                await conn.execute(
                    f"INSERT INTO tickets{suffix} VALUES ($1, $2)",
                    envelope.originator_id,
                    envelope.event.title,
                )


async def test_a_rebuild_may_change_the_shape_and_the_set_of_tables(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    name = f"board-{uuid.uuid4().hex[:8]}"
    await ensure_installed(pool, TicketBoard(name))
    await open_tickets(recorder, mapper, 4, notes=1)

    assert await rebuild(recorder, SlimBoard(name), mapper.to_domain_event) == 2

    row = await pool.fetchrow("SELECT * FROM tickets LIMIT 1")
    assert list(row.keys()) == ["ticket_id", "title"]  # the view now has the new shape
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 4
    for gone in ("ticket_seen", "ticket_seen_g1", "tickets_g1"):
        assert await pool.fetchval("SELECT to_regclass($1)", gone) is None
