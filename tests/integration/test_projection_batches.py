"""The case read models worked a batch at a time give the rows that one event at a time gives."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.consumers import rebuild
from backend.store.aggregates import AggregateStore
from backend.store.recorder import EventRecorder
from domain.case import Assignment, ReturnTarget
from projections.case_progress import CaseProgressProjection
from projections.work_queue import WorkQueueProjection
from tests.integration import test_case_progress as shared
from tests.integration import test_work_queue as queue_tests
from tests.integration.test_case_progress import CLERK, COMPANY, MINI, WINDOW, World, at, catch_up, officer

# The progress tests' cases, the work queue's busier department, and the fixtures that build them.
mapper, store, world = shared.mapper, shared.store, shared.world  # recorder: tests/integration/conftest.py
busy = queue_tests.busy

pytestmark = pytest.mark.integration

TABLES = ("cases", "case_timeline", "work_queue", "work_queue_cases")


async def dump(pool: asyncpg.Pool) -> dict[str, list[str]]:
    return {
        t: [r[0] for r in await pool.fetch(f"SELECT row_to_json(x)::text FROM {t} x ORDER BY 1")]
        for t in TABLES
    }


async def test_one_event_per_batch_and_the_whole_log_in_one_give_the_same_rows(
    busy: World,
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
) -> None:
    # C comes back to the window and is routed again: the task reopens at 承办.
    c = await store.get(busy.ids["C"])
    scjgj = officer("SCJGJ", 0)
    c.return_task(scjgj, MINI, at(9, 26), department="SCJGJ", to=ReturnTarget.WINDOW, reason="材料有误")
    c.route(CLERK, WINDOW, at(9, 27), assignments=[Assignment(department="SCJGJ", item_codes=(COMPANY,))])
    await store.save(c)
    progress, work = CaseProgressProjection(), WorkQueueProjection()
    for consumer in (progress, work):
        await catch_up(pool, recorder, mapper, consumer)
    in_nines = await dump(pool)
    for batch_size, generation in ((1, 2), (500, 3)):
        for consumer in (progress, work):
            assert (
                await rebuild(recorder, consumer, mapper.to_domain_event, batch_size=batch_size) == generation
            )
        assert await dump(pool) == in_nines, f"batches of {batch_size}"
    assert len(in_nines["work_queue"]) == 8 and len(in_nines["cases"]) == 9
