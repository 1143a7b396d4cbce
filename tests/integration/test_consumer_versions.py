"""Read models migrate themselves: a start whose code declares another schema version rebuilds first."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import pytest

from backend.consumers import ConsumerRunner, Envelope, rebuild
from backend.runtime import Runtime
from backend.settings import load_settings
from backend.store.recorder import EventRecorder
from tests.integration.consumer_support import (  # noqa: F401 (fixtures)
    StartRunner,
    Ticket,
    TicketBoard,
    head,
    mapper_fixture,
    open_tickets,
    recorder_fixture,
    seen_rows,
    start_runner_fixture,
    wait_for,
)
from tests.integration.test_consumers_rebuild import SlimBoard

pytestmark = pytest.mark.integration

_CONTENT = "SELECT ticket_id, title, fee, notes FROM tickets ORDER BY ticket_id"
# Every ticket's opened_at must be the time its Opened event was recorded.
_OPENED_AT_RIGHT = """
SELECT count(*) FROM tickets t
JOIN stored_events e ON e.originator_id = t.ticket_id AND e.originator_version = 1
WHERE t.opened_at = e.recorded_at
"""


class TicketBoardV2(TicketBoard):
    """The board's next release: tickets gained opened_at, so the schema version is 2."""

    schema_version = 2

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await super().create_tables(conn, suffix)
        # Nullable on purpose: a version-1 handler writing here would not fail, only be wrong.
        await conn.execute(f"ALTER TABLE tickets{suffix} ADD COLUMN opened_at timestamptz")

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        await super().handle(conn, envelopes, suffix)
        for envelope in envelopes:
            if isinstance(envelope.event, Ticket.Opened):
                await conn.execute(
                    f"UPDATE tickets{suffix} SET opened_at = $2 WHERE ticket_id = $1",
                    envelope.originator_id,
                    envelope.recorded_at,
                )


class Runtimes:
    """Builds runtimes on the test's schema and stops every started one at the end."""

    def __init__(self, db_url: str, schema: str, data_dir: Path) -> None:
        self.settings = load_settings(
            {
                "CITYPASS_DB_SCHEMA": schema,
                "CITYPASS_DATA_DIR": str(data_dir),
                "CITYPASS_DB_POOL_MIN": "1",
                "CITYPASS_CONSUMER_POLL_SECONDS": "0.05",
                "CITYPASS_TIMER_POLL_SECONDS": "0.05",
                "CITYPASS_CONSUMER_BATCH": "4",  # several batches, so the replay is more than one step
                "CITYPASS_CONSUMER_GROUPS": "together",  # the default names case_progress, not built here
            }
        )
        self.db_url = db_url
        self.running: list[Runtime] = []

    def build(self, *consumers: object) -> Runtime:
        return Runtime(self.settings, self.db_url, consumers=consumers)  # type: ignore[arg-type]

    async def start(self, runtime: Runtime) -> Runtime:
        await runtime.start()
        self.running.append(runtime)
        return runtime

    async def stop(self, runtime: Runtime) -> None:
        self.running.remove(runtime)
        await runtime.stop()


@pytest.fixture
async def runtimes(db_url: str, schema: str, tmp_path: Path) -> AsyncIterator[Runtimes]:
    made = Runtimes(db_url, schema, tmp_path)
    yield made
    for runtime in list(made.running):
        await made.stop(runtime)


async def _served(pool: asyncpg.Pool, name: str) -> tuple[int, int, list[str], int | None]:
    row = await pool.fetchrow(
        "SELECT generation, schema_version, tables, building_generation FROM consumer_generations "
        "WHERE consumer_name = $1",
        name,
    )
    return row["generation"], row["schema_version"], sorted(row["tables"]), row["building_generation"]


async def _positions(pool: asyncpg.Pool, name: str) -> dict[str, int]:
    rows = await pool.fetch("SELECT application_name, notification_id FROM tracking")
    return {r[0]: r[1] for r in rows if r[0].startswith(f"{name}#")}


async def _view_source(pool: asyncpg.Pool, schema: str, view: str) -> str:
    definition: str = await pool.fetchval(
        "SELECT definition FROM pg_views WHERE schemaname = $1 AND viewname = $2", schema, view
    )
    return definition


async def _project_at_version_1(
    name: str, runtime: Runtime, recorder: EventRecorder, start_runner: StartRunner, tickets: int
) -> list[tuple[object, ...]]:
    """Run the version-1 board over `tickets` tickets noted once each; return what it served."""
    runner = start_runner(TicketBoard(name), decode=runtime.mapper.to_domain_event)
    await open_tickets(recorder, runtime.mapper, tickets, notes=1)
    await wait_for(lambda: _at(runner, 2 * tickets), what="the version-1 board to project everything")
    await runner.stop()
    return [tuple(r) for r in await recorder.pool.fetch(_CONTENT)]


async def _at(runner: ConsumerRunner, position: int) -> bool:
    return runner.position == position


async def test_a_start_with_a_new_schema_version_rebuilds_the_read_model_before_it_returns(
    schema: str,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    start_runner: StartRunner,
    runtimes: Runtimes,
) -> None:
    name = f"board-{uuid.uuid4().hex[:8]}"
    runtime = runtimes.build(TicketBoardV2(name))
    before = await _project_at_version_1(name, runtime, recorder, start_runner, 6)  # 12 events
    assert await _served(pool, name) == (1, 1, ["ticket_seen", "tickets"], None)

    await runtimes.start(runtime)

    # Nothing to wait for: start returned only once generation 2 was built and swapped in.
    assert await _served(pool, name) == (2, 2, ["ticket_seen", "tickets"], None)
    assert "tickets_g2" in await _view_source(pool, schema, "tickets")
    assert "ticket_seen_g2" in await _view_source(pool, schema, "ticket_seen")
    for gone in ("tickets_g1", "ticket_seen_g1"):
        assert await pool.fetchval("SELECT to_regclass($1)", gone) is None
    assert [tuple(r) for r in await pool.fetch(_CONTENT)] == before  # the same rows ...
    assert await pool.fetchval(_OPENED_AT_RIGHT) == 6  # ... plus the new column, filled
    assert await _positions(pool, name) == {f"{name}#g2": 12}  # at the head, and g1's position gone
    assert await seen_rows(pool) == list(range(1, 13))

    # The runtime's own runner carries on in generation 2.
    await open_tickets(recorder, runtime.mapper, 1)
    await wait_for(lambda: _seen_up_to(pool, 13), what="the runtime's runner to project event 13")
    assert await pool.fetchval(_OPENED_AT_RIGHT) == 7
    await runtimes.stop(runtime)

    # A later start of the same release finds nothing to do.
    again = await runtimes.start(runtimes.build(TicketBoardV2(name)))
    assert await _served(pool, name) == (2, 2, ["ticket_seen", "tickets"], None)
    assert await pool.fetchval("SELECT to_regclass('tickets_g3')") is None
    assert again.consumers[name].handled == []  # type: ignore[attr-defined]


async def test_a_start_with_the_same_schema_version_keeps_the_served_generation(
    pool: asyncpg.Pool, recorder: EventRecorder, start_runner: StartRunner, runtimes: Runtimes
) -> None:
    name = f"board-{uuid.uuid4().hex[:8]}"
    board = TicketBoard(name)
    runtime = runtimes.build(board)
    before = await _project_at_version_1(name, runtime, recorder, start_runner, 4)

    await runtimes.start(runtime)

    assert await _served(pool, name) == (1, 1, ["ticket_seen", "tickets"], None)
    assert await pool.fetchval("SELECT to_regclass('tickets_g1')") is not None
    assert await pool.fetchval("SELECT to_regclass('tickets_g2')") is None
    assert await _positions(pool, name) == {f"{name}#g1": 8}
    assert [tuple(r) for r in await pool.fetch(_CONTENT)] == before
    assert board.handled == []  # not one event replayed


async def test_runtimes_starting_together_build_the_new_generation_once(
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    start_runner: StartRunner,
    runtimes: Runtimes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="backend.consumers")
    name = f"board-{uuid.uuid4().hex[:8]}"

    async def other_start_waits(conn: asyncpg.Connection, envelope: Envelope, suffix: str) -> None:
        # Hold the first replay until the other start is seen waiting for it, so the two overlap.
        if envelope.notification_id == 1:
            await wait_for(someone_waits, what="the other start to wait for the rebuild")

    async def someone_waits() -> bool:
        return any(
            "waiting for another process's rebuild" in r.getMessage() and name in r.getMessage()
            for r in caplog.records
        )

    boards = [TicketBoardV2(name, hook=other_start_waits) for _ in range(2)]
    first, second = (runtimes.build(board) for board in boards)
    await _project_at_version_1(name, first, recorder, start_runner, 5)  # 10 events

    await asyncio.gather(runtimes.start(first), runtimes.start(second))

    assert await _served(pool, name) == (2, 2, ["ticket_seen", "tickets"], None)
    assert await pool.fetchval("SELECT to_regclass('tickets_g3')") is None
    assert await _positions(pool, name) == {f"{name}#g2": 10}
    assert sorted(len(board.handled) for board in boards) == [0, 10]  # one replayed, the other waited
    assert await seen_rows(pool) == list(range(1, 11))  # and nothing twice
    assert await pool.fetchval(_OPENED_AT_RIGHT) == 5


async def test_a_runner_of_an_older_release_leaves_a_newer_generation_alone(
    pool: asyncpg.Pool, recorder: EventRecorder, start_runner: StartRunner, runtimes: Runtimes
) -> None:
    # An old worker still running when a new release's start rebuilt the read model.
    name = f"board-{uuid.uuid4().hex[:8]}"
    mapper = runtimes.build().mapper
    old_board = TicketBoard(name)
    old = start_runner(old_board, decode=mapper.to_domain_event)
    await open_tickets(recorder, mapper, 3)
    await wait_for(lambda: _at(old, 3), what="the old runner to project the first tickets")

    assert await rebuild(recorder, TicketBoardV2(name), mapper.to_domain_event) == 2
    await open_tickets(recorder, mapper, 2)  # 4, 5: only code of version 2 may write these
    new = start_runner(TicketBoardV2(name), decode=mapper.to_domain_event)
    await wait_for(lambda: _at(new, 5), what="a runner of the new release to lead and catch up")

    assert max(e.notification_id for e in old_board.handled) == 3
    assert await seen_rows(pool) == [1, 2, 3, 4, 5]
    assert await pool.fetchval(_OPENED_AT_RIGHT) == 5
    assert old.position == 3 and not old.is_leader


async def _seen_up_to(pool: asyncpg.Pool, last: int) -> bool:
    return await head(pool) == last and await seen_rows(pool) == list(range(1, last + 1))


async def test_other_tables_at_the_same_version_are_rebuilt_too(
    schema: str, pool: asyncpg.Pool, recorder: EventRecorder, start_runner: StartRunner, runtimes: Runtimes
) -> None:
    # Someone changed the tables but forgot the version: the table list still tells.
    name = f"board-{uuid.uuid4().hex[:8]}"
    runtime = runtimes.build(SlimBoard(name))
    await _project_at_version_1(name, runtime, recorder, start_runner, 3)

    await runtimes.start(runtime)

    assert await _served(pool, name) == (2, 1, ["tickets"], None)
    assert "tickets_g2" in await _view_source(pool, schema, "tickets")
    for gone in ("ticket_seen", "ticket_seen_g1", "tickets_g1"):
        assert await pool.fetchval("SELECT to_regclass($1)", gone) is None
    assert await pool.fetchval("SELECT count(*) FROM tickets") == 3


class Tally:
    """A consumer with effects only in shared tables: there is nothing of its own to rebuild."""

    topics = None
    tables = ()

    def __init__(self, name: str, version: int) -> None:
        self.name, self.schema_version = name, version
        self.handled: list[Envelope] = []

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        pass

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        self.handled.extend(envelopes)


async def test_a_consumer_without_tables_only_records_its_new_version(
    pool: asyncpg.Pool, recorder: EventRecorder, runtimes: Runtimes
) -> None:
    name = f"tally-{uuid.uuid4().hex[:8]}"
    first = await runtimes.start(runtimes.build(Tally(name, 1)))
    await open_tickets(recorder, first.mapper, 2)
    await wait_for(lambda: _tracked(pool, f"{name}#g1", 2), what="the tally to reach 2")
    await runtimes.stop(first)

    later = Tally(name, 2)
    await runtimes.start(runtimes.build(later))

    assert await _served(pool, name) == (1, 2, [], None)
    assert later.handled == []  # nothing replayed: its effects would happen twice
    assert await _positions(pool, name) == {f"{name}#g1": 2}


async def _tracked(pool: asyncpg.Pool, tracking: str, position: int) -> bool:
    value = await pool.fetchval("SELECT notification_id FROM tracking WHERE application_name = $1", tracking)
    return bool(value == position)
