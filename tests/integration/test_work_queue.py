"""The departments' work queue on PostgreSQL: lights at query time, red first, filters, task states."""

from __future__ import annotations

import asyncpg
import pytest

from backend.calendar_data import base_calendar
from projections.work_queue import WorkQueueQueries
from tests.integration import test_case_progress as shared
from tests.integration.test_case_progress import COMPANY, FOOD, World, fixed_clock

# The same five cases as the progress tests, and the fixtures that build them.
recorder, mapper, store, world = shared.recorder, shared.mapper, shared.store, shared.world

pytestmark = pytest.mark.integration


def queue(pool: asyncpg.Pool, day: int = 8) -> WorkQueueQueries:
    return WorkQueueQueries(lambda: pool, base_calendar, fixed_clock(10, day))


async def test_red_first_then_yellow_then_due_date(world: World, pool: asyncpg.Pool) -> None:
    page = await queue(pool).queue("SCJGJ")
    rows = [(i.number, i.deadline and i.deadline.light, i.deadline and i.deadline.due) for i in page.items]
    assert [(n, light) for n, light, _ in rows] == [
        (world.numbers["C"], "red"),  # 9/25 + 1 working day = 9/28, long past
        (world.numbers["B"], "yellow"),  # due 10/9, 1 working day left
        (world.numbers["E"], "green"),  # due 10/12: 10/9, 10/10 (调休), 10/12
    ]
    assert page.total == 3
    claimed = page.items[0]
    assert (claimed.state, claimed.claimed_by, claimed.step_label) == ("claimed", "officer-SCJGJ-0", "承办")
    assert (page.items[1].state, page.items[1].claimed_by, page.items[1].item_code) == ("routed", None, FOOD)


async def test_lights_move_with_the_clock(world: World, pool: asyncpg.Pool) -> None:
    on_12th = await queue(pool, 12).queue("SCJGJ")
    assert [i.deadline and i.deadline.light for i in on_12th.items] == ["red", "red", "yellow"]
    # Two reds: the earlier due date first.
    assert [i.number for i in on_12th.items[:2]] == [world.numbers["C"], world.numbers["B"]]


async def test_filters_and_paging(world: World, pool: asyncpg.Pool) -> None:
    q = queue(pool)
    assert [i.number for i in (await q.queue("SCJGJ", light="red")).items] == [world.numbers["C"]]
    assert [i.number for i in (await q.queue("SCJGJ", state="claimed")).items] == [world.numbers["C"]]
    by_item = await q.queue("SCJGJ", item=FOOD)
    assert [i.number for i in by_item.items] == [world.numbers["B"], world.numbers["E"]]
    assert (await q.queue("SCJGJ", item=COMPANY, state="routed")).total == 0
    second = await q.queue("SCJGJ", page=2, size=2)
    assert (second.total, [i.number for i in second.items]) == (3, [world.numbers["E"]])
    assert (await q.queue("GAJ")).items == []


async def test_a_decided_task_has_no_light(world: World, pool: asyncpg.Pool) -> None:
    (task,) = (await queue(pool).queue("WJW")).items
    assert (task.state, task.step_label, task.case_status) == ("approved", "批准", "delivered")
    assert task.deadline is not None and task.deadline.light is None
    assert (await queue(pool).queue("WJW", light="green")).total == 0
