"""Consumers run as a group: one transaction and one decoding per batch, each effect exactly once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.consumers import Envelope, ensure_installed, tracking_name
from backend.store.recorder import EventRecorder
from tests.integration.consumer_support import (  # noqa: F401 (fixtures)
    OPENED,
    CountingDecoder,
    StartRunner,
    mapper_fixture,
    open_tickets,
    recorder_fixture,
    start_runner_fixture,
    wait_for,
)

pytestmark = pytest.mark.integration


class Seen:
    """A consumer that writes one row per event it handles, in a table of its own and with no key.

    An event handled twice shows as a repeated id; a row also says whether the event came
    decoded. `failing` holds ids whose batch raises; `kill_at` terminates the batch's session.
    """

    def __init__(self, *, topics: frozenset[str] | None = None, decodes: bool = True) -> None:
        self.name = f"seen_{uuid.uuid4().hex[:8]}"
        self.topics, self.decodes = topics, decodes
        self.tables: Sequence[str] = (self.name,)
        self.failing: set[int] = set()
        self.kill_at: int | None = None

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"CREATE TABLE {self.name}{suffix} (notification_id bigint NOT NULL, decoded boolean NOT NULL)"
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        ids = [e.notification_id for e in envelopes]
        if self.failing.intersection(ids):
            raise RuntimeError(f"{self.name} cannot take {sorted(self.failing.intersection(ids))}")
        if self.kill_at in ids:
            self.kill_at = None
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        await conn.executemany(
            f"INSERT INTO {self.name}{suffix} VALUES ($1, $2)",
            [(e.notification_id, e.event is not None) for e in envelopes],
        )


async def seen(pool: asyncpg.Pool, member: Seen) -> list[int]:
    return [r[0] for r in await pool.fetch(f"SELECT notification_id FROM {member.name} ORDER BY 1")]


async def tracked(pool: asyncpg.Pool, *members: Seen) -> list[asyncpg.Record]:
    names = [tracking_name(m.name, 1) for m in members]
    return list(
        await pool.fetch(
            "SELECT application_name, notification_id, updated_at FROM tracking "
            "WHERE application_name = ANY($1::text[]) ORDER BY array_position($1::text[], application_name)",
            names,
        )
    )


def at(pool: asyncpg.Pool, target: int, *members: Seen) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        rows = await tracked(pool, *members)
        return len(rows) == len(members) and all(r["notification_id"] == target for r in rows)

    return check


async def test_a_group_gives_each_member_its_events_once_decoding_each_event_once(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    everything, opened, bare = Seen(), Seen(topics=frozenset({OPENED})), Seen(decodes=False)
    decoder = CountingDecoder(mapper)
    await open_tickets(recorder, mapper, 10, notes=2)  # each ticket: Opened, Noted, Noted

    runner = start_runner([everything, opened, bare], decode=decoder, batch_size=7)
    await wait_for(at(pool, 30, everything, opened, bare), what="the group to reach 30")

    assert runner.is_leader and runner.name == f"{everything.name}+{opened.name}+{bare.name}"
    assert await seen(pool, everything) == list(range(1, 31))
    assert await seen(pool, opened) == list(range(1, 31, 3))
    assert await seen(pool, bare) == list(range(1, 31))
    assert await pool.fetchval(f"SELECT bool_or(decoded) FROM {bare.name}") is False
    assert await pool.fetchval(f"SELECT bool_and(decoded) FROM {everything.name}") is True
    assert decoder.calls == 30  # apart, the two decoding members would have decoded 40
    # One transaction moved every position: now() is the transaction's start, the same for all.
    assert len({r["updated_at"] for r in await tracked(pool, everything, opened, bare)}) == 1


async def test_a_failing_member_runs_alone_and_rejoins_once_caught_up_while_the_others_go_on(
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    start_runner: StartRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    steady, shaky = Seen(), Seen()
    shaky.failing = {12}
    await open_tickets(recorder, mapper, 10, notes=1)  # 20 events
    with caplog.at_level(logging.INFO, logger="backend.consumers.runner"):
        start_runner([steady, shaky], batch_size=5)
        await wait_for(at(pool, 20, steady), what="the healthy member to reach the head")
        await asyncio.sleep(0.3)  # several retries of the failing one
        [_, stuck] = await tracked(pool, steady, shaky)
        assert stuck["notification_id"] == 10  # the batch holding 12 never committed
        assert await seen(pool, shaky) == list(range(1, 11))

        shaky.failing.clear()
        await wait_for(at(pool, 20, steady, shaky), what="the recovered member to catch up")
        await asyncio.sleep(0.3)  # the runner's step that saw it catch up is over
        await open_tickets(recorder, mapper, 3)
        await wait_for(at(pool, 23, steady, shaky), what="both to take the new events")

    assert await seen(pool, steady) == list(range(1, 24))
    assert await seen(pool, shaky) == list(range(1, 24))
    messages = [r.getMessage() for r in caplog.records]
    assert any("failed a batch together" in m for m in messages)
    assert sum(f"consumer {shaky.name} failed a batch after position 10" in m for m in messages) >= 1
    assert not any(f"consumer {steady.name} failed" in m for m in messages)
    assert any(f"consumer {shaky.name} has caught up" in m for m in messages)
    # Back in the group: the last events moved both positions in one transaction.
    assert len({r["updated_at"] for r in await tracked(pool, steady, shaky)}) == 1


async def test_a_group_batch_killed_with_its_connection_is_redone_exactly_once_for_every_member(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    first, second = Seen(), Seen()
    second.kill_at = 17
    await open_tickets(recorder, mapper, 10, notes=2)  # 30 events
    runner = start_runner([first, second], batch_size=6)
    await wait_for(at(pool, 30, first, second), what="the group to reach 30 after the kill")

    assert second.kill_at is None  # the kill happened
    assert await seen(pool, first) == list(range(1, 31))  # the killed batch's rows for first went too
    assert await seen(pool, second) == list(range(1, 31))
    assert runner.is_leader


async def test_members_at_different_positions_each_get_every_event_once(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    ahead, behind = Seen(), Seen()
    await open_tickets(recorder, mapper, 10, notes=1)  # 20 events
    alone = start_runner(ahead, batch_size=8)
    await wait_for(at(pool, 20, ahead), what="the first member alone")
    await alone.stop(grace_seconds=5)
    await ensure_installed(pool, behind)
    await open_tickets(recorder, mapper, 5)  # 21-25

    start_runner([ahead, behind], batch_size=8)
    await wait_for(at(pool, 25, ahead, behind), what="both members to reach 25")
    assert await seen(pool, ahead) == list(range(1, 26))
    assert await seen(pool, behind) == list(range(1, 26))


async def test_a_member_built_by_another_release_steps_aside_and_the_others_go_on(
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    start_runner: StartRunner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    current, foreign = Seen(), Seen()
    await ensure_installed(pool, foreign)
    await pool.execute(
        "UPDATE consumer_generations SET schema_version = 2 WHERE consumer_name = $1", foreign.name
    )
    await open_tickets(recorder, mapper, 6)
    with caplog.at_level(logging.INFO, logger="backend.consumers.runner"):
        runner = start_runner([current, foreign], batch_size=4)
        await wait_for(at(pool, 6, current), what="the fitting member to reach the head")
        await asyncio.sleep(0.5)  # several tries to lead it again (retry_seconds 0.1)

    assert await seen(pool, foreign) == []
    [_, untouched] = await tracked(pool, current, foreign)
    assert untouched["notification_id"] == 0
    assert runner.members[0].leading
    messages = [r.getMessage() for r in caplog.records]
    assert sum(f"consumer {foreign.name}: this process leads" in m for m in messages) >= 2
    warned = [m for m in messages if "built by another release" in m]
    assert len(warned) == 1 and foreign.name in warned[0]  # logged once, though it tries again


async def test_a_group_leads_only_what_nobody_else_leads_and_takes_the_rest_when_freed(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], start_runner: StartRunner
) -> None:
    first, second = Seen(), Seen()
    solo = start_runner(first, batch_size=10)
    await wait_for(at(pool, 0, first), what="the solo runner to lead")
    group = start_runner([first, second], batch_size=10)
    await wait_for(at(pool, 0, second), what="the group to install its second member")
    await open_tickets(recorder, mapper, 5)
    await wait_for(at(pool, 5, first, second), what="both at 5, each led by one runner")
    assert [m.leading for m in group.members] == [False, True]
    assert solo.is_leader

    await solo.stop(grace_seconds=5)
    await open_tickets(recorder, mapper, 5)
    await wait_for(at(pool, 10, first, second), within=20, what="the group to lead both")
    assert [m.leading for m in group.members] == [True, True]
    assert await seen(pool, first) == list(range(1, 11))
    assert await seen(pool, second) == list(range(1, 11))
