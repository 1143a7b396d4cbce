"""The stream hub on PostgreSQL: LISTEN wake-ups, fan-out by department, and dropping a slow subscriber."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
from eventsourcing.persistence import Mapper

from backend.store.aggregates import AggregateStore
from backend.store.recorder import EventRecorder
from backend.streams.hub import StreamHub
from domain.case import Assignment
from miniapp_api.stream_routes import _frames
from projections.event_stream import EventStreamProjection
from projections.event_stream_reads import StreamQueries, StreamScope
from tests.integration import test_case_progress as shared
from tests.integration.test_case_progress import (
    CITIZEN_LI,
    CLERK,
    FOOD,
    LI,
    WINDOW,
    World,
    _accept,
    _submit,
    at,
    catch_up,
)

mapper, store, world = shared.mapper, shared.store, shared.world

pytestmark = pytest.mark.integration


async def route_more(world: World, store: AggregateStore, n: int, tag: str) -> None:
    """n more 食品经营许可 cases routed to SCJGJ: each adds a routed event to SCJGJ's stream."""
    for i in range(n):
        letter = f"{tag}{i}"
        case = _submit(world, letter, CITIZEN_LI, at(10, 12), LI, FOOD)
        shared.PASSWORDS[letter] = "731-Z"
        _accept(case, letter, at(10, 12, 10))
        case.route(
            CLERK, WINDOW, at(10, 12, 11), assignments=[Assignment(department="SCJGJ", item_codes=(FOOD,))]
        )
        await store.save(case)


@pytest.fixture
async def hub(
    world: World,
    db_url: str,
    schema: str,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
) -> AsyncIterator[StreamHub]:
    await catch_up(pool, recorder, mapper, EventStreamProjection())
    running = StreamHub(
        db_url, schema, StreamQueries(lambda: pool, mapper.to_domain_event), buffer=3, poll_seconds=5
    )
    await running.start()
    yield running
    await running.stop()


async def frames_until(stream: AsyncIterator[bytes], predicate: object, seconds: float = 10) -> list[bytes]:
    got: list[bytes] = []

    async def read() -> None:
        async for chunk in stream:
            got.append(chunk)
            if predicate(got):  # type: ignore[operator]
                return

    await asyncio.wait_for(read(), seconds)
    return got


def ids(chunks: list[bytes]) -> list[int]:
    return [int(line[4:]) for chunk in chunks for line in chunk.split(b"\n") if line.startswith(b"id: ")]


async def test_the_hub_wakes_on_notify_and_gives_each_department_its_own(
    world: World, store: AggregateStore, hub: StreamHub, pool: asyncpg.Pool, recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
) -> None:  # fmt: skip
    scjgj, wjw = hub.subscribe(StreamScope(department="SCJGJ")), hub.subscribe(StreamScope(department="WJW"))
    await route_more(world, store, 2, "N")
    await catch_up(pool, recorder, mapper, EventStreamProjection())  # commits, and NOTIFYs the hub
    taken = await scjgj.take(3)  # the poll is 5 s: only the NOTIFY can deliver this quickly
    assert [e.type for e in taken] == ["case.routed", "case.routed"]
    assert await wjw.take(0.2) == []


async def test_a_slow_subscriber_is_dropped_with_its_cursor_and_resumes_without_loss(
    world: World, store: AggregateStore, hub: StreamHub, pool: asyncpg.Pool, recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
) -> None:  # fmt: skip
    queries = StreamQueries(lambda: pool, mapper.to_domain_event)
    scope = StreamScope(department="SCJGJ")
    start = await queries.head()
    slow = _frames(queries, hub, scope, start, 100, 0.1)
    # Read until the first heartbeat: the stream has caught up and subscribed; then stop reading,
    # as a client whose socket no longer drains makes the server stop.
    await frames_until(slow, lambda got: got[-1] == b": heartbeat\n\n")
    await route_more(world, store, 5, "S")  # 5 routed events > the buffer of 3
    await catch_up(pool, recorder, mapper, EventStreamProjection())
    for _ in range(50):
        if not hub._subscribers:
            break
        await asyncio.sleep(0.1)
    assert not hub._subscribers  # dropped, and its buffer released
    rest = await frames_until(slow, lambda got: got[-1].startswith(b"event: dropped"))
    dropped = msgspec.json.decode(rest[-1].split(b"data: ", 1)[1])
    assert dropped["reason"].startswith("slow-consumer") and dropped["resumeAfter"] == start
    assert ids(rest) == []  # nothing after the buffer overflowed was half-sent
    # Reconnecting from the cursor gets all five, once each, in order.
    again = _frames(queries, hub, scope, dropped["resumeAfter"], 2, 0.1)
    got = await frames_until(again, lambda got: len(ids(got)) >= 5)
    expected = [e.position for e in await queries.entries(scope, start, 100)]
    assert ids(got) == expected and len(expected) == 5
