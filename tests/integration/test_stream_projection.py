"""The published stream on PostgreSQL: who sees which events, masking, cursor pages, and rebuilds."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec
import pytest
from eventsourcing.persistence import Mapper

from backend.consumers import rebuild
from backend.store.recorder import EventRecorder
from projections.event_stream import EventStreamProjection
from projections.event_stream_reads import StreamQueries, StreamScope
from tests.integration import test_case_progress as shared
from tests.integration.test_case_progress import ZHANG, World, catch_up

mapper, store, world = shared.mapper, shared.store, shared.world

pytestmark = pytest.mark.integration


def events(bodies: list[bytes]) -> list[dict[str, object]]:
    return [msgspec.json.decode(b) for b in bodies]


@pytest.fixture
async def published(
    world: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> StreamQueries:
    await catch_up(pool, recorder, mapper, EventStreamProjection())
    return StreamQueries(lambda: pool, mapper.to_domain_event)


async def test_a_department_sees_its_cases_from_routing_and_only_its_own_tasks(
    world: World, published: StreamQueries
) -> None:
    scjgj = events((await published.page(StreamScope(department="SCJGJ"), 0, 1000)).events)
    numbers = {e["case"]["number"] for e in scjgj}  # type: ignore[index]
    assert numbers == {world.numbers[x] for x in "BCE"}
    assert all(e["type"] != "case.submitted" for e in scjgj)
    per_case = [e["type"] for e in scjgj if e["case"]["number"] == world.numbers["C"]]  # type: ignore[index]
    assert per_case == ["case.routed", "task.claimed"]
    wjw = events((await published.page(StreamScope(department="WJW"), 0, 1000)).events)
    assert {e["case"]["number"] for e in wjw} == {world.numbers["A"]}  # type: ignore[index]
    assert [e["type"] for e in wjw][:3] == ["case.routed", "task.claimed", "task.step_approved"]
    assert "case.licence_issued" in [e["type"] for e in wjw]
    # Positions strictly increase, and ids are unique.
    positions = [e["position"] for e in wjw]
    assert positions == sorted(set(positions))  # type: ignore[type-var]
    assert (await published.page(StreamScope(department="MZJ"), 0, 1000)).events == []  # F never routed


async def test_personal_data_is_masked_unless_the_scope_allows(
    world: World, published: StreamQueries
) -> None:
    everything = events((await published.page(StreamScope(department=None), 0, 1000)).events)
    submitted = next(e for e in everything if e["type"] == "case.submitted")
    applicant = submitted["applicant"]
    assert applicant["idNumber"] != ZHANG.identity.number  # type: ignore[index]
    assert applicant["idNumber"].endswith(ZHANG.identity.number[-4:])  # type: ignore[index]
    assert "*" in applicant["phone"] and submitted["actor"]["id"] is None  # type: ignore[index]
    clear = events((await published.page(StreamScope(department=None, personal=True), 0, 1000)).events)
    same = next(e for e in clear if e["id"] == submitted["id"])
    assert same["applicant"]["idNumber"] == ZHANG.identity.number  # type: ignore[index]
    assert same["actor"]["id"] == "citizen-zhang"  # type: ignore[index]
    # Only personal values differ.
    assert {k: v for k, v in same.items() if k not in ("applicant", "actor")} == {
        k: v for k, v in submitted.items() if k not in ("applicant", "actor")
    }


async def test_small_pages_join_into_the_whole_and_the_cursor_skips_what_the_scope_never_sees(
    world: World, published: StreamQueries
) -> None:
    scope = StreamScope(department="SCJGJ")
    whole = await published.page(scope, 0, 1000)
    joined, cursor = [], 0
    while True:
        page = await published.page(scope, cursor, 2)
        joined += page.events
        cursor = page.next_cursor
        if not page.events:
            break
    assert joined == whole.events
    # The last page was short, so its cursor is the head, past F's later events that SCJGJ never sees.
    assert whole.next_cursor == whole.head
    assert cursor == whole.head


async def test_a_rebuild_publishes_identical_rows(
    world: World,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    published: StreamQueries,
) -> None:
    before = await pool.fetch("SELECT * FROM stream_events ORDER BY position")
    audience = await pool.fetch("SELECT * FROM stream_audience ORDER BY department, position")
    await rebuild(recorder, EventStreamProjection(), mapper.to_domain_event, batch_size=7)
    assert await pool.fetch("SELECT * FROM stream_events ORDER BY position") == before
    assert await pool.fetch("SELECT * FROM stream_audience ORDER BY department, position") == audience
    assert len(before) > 20
