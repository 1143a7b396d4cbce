"""The departments' work queue on PostgreSQL: open work by light, the finished history, counts, rebuilds."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.calendar_data import base_calendar
from backend.consumers import rebuild
from backend.store.aggregates import AggregateStore
from backend.store.recorder import EventRecorder
from domain.case import Assignment, Case, ResultCode
from projections.work_queue import LightCounts, QueuePage, WorkQueueProjection, WorkQueueQueries
from tests.integration import test_case_progress as shared
from tests.integration.test_case_progress import (
    CITIZEN_LI,
    CITIZEN_ZHANG,
    CLERK,
    COMPANY,
    FOOD,
    LI,
    MINI,
    WINDOW,
    ZHANG,
    World,
    _sign,
    _submit,
    at,
    catch_up,
    fixed_clock,
    officer,
)

# The same five cases as the progress tests, and the fixtures that build them.
mapper, store, world = shared.mapper, shared.store, shared.world  # recorder: tests/integration/conftest.py

pytestmark = pytest.mark.integration

UNLISTED = "11430100006182474N099999900000"  # not in the catalogue: no time limit, so no light


def queue(pool: asyncpg.Pool, day: int = 8) -> WorkQueueQueries:
    return WorkQueueQueries(lambda: pool, base_calendar, fixed_clock(10, day))


def numbers(page: QueuePage) -> list[str]:
    return [i.number for i in page.items]


def _accept_and_route(case: Case, when: datetime, item: str) -> None:
    secret = shared.QUERY_PASSWORDS.hash("731-X")
    case.accept(CLERK, WINDOW, when, receipt_number=f"SL-{case.id}", query_password_hash=secret)
    case.route(CLERK, WINDOW, when, assignments=[Assignment(department="SCJGJ", item_codes=(item,))])


@pytest.fixture
async def busy(
    world: World,
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
) -> World:
    """SCJGJ's work besides B, C and E: three finished tasks, and one open without a time limit."""
    # H: approved by SCJGJ on 9/24 (批准 signed), the case concluded 出证 that afternoon.
    h = _submit(world, "H", CITIZEN_ZHANG, at(9, 21), ZHANG, FOOD)
    _accept_and_route(h, at(9, 22), FOOD)
    _sign(h, "SCJGJ", at(9, 24))
    h.conclude(officer("SCJGJ", 2), MINI, at(9, 24, 15), result=ResultCode.APPROVED)
    # I: claimed at 承办, then withdrawn by the applicant on 9/30: the task ends with its case.
    i = _submit(world, "I", CITIZEN_LI, at(9, 21), LI, COMPANY)
    _accept_and_route(i, at(9, 22), COMPANY)
    i.claim_task(officer("SCJGJ", 0), MINI, at(9, 23), department="SCJGJ")
    i.withdraw(CITIZEN_LI, MINI, at(9, 30), reason="不再需要")
    # J: rejected at 承办 on 9/29; the case stays open (not yet concluded 退回).
    j = _submit(world, "J", CITIZEN_LI, at(9, 27), LI, FOOD)
    _accept_and_route(j, at(9, 28), FOOD)
    j.claim_task(officer("SCJGJ", 0), MINI, at(9, 29), department="SCJGJ")
    j.reject_task(officer("SCJGJ", 0), MINI, at(9, 29, 10), department="SCJGJ", reason="场所不符")
    # K: open, but its item has no time limit the queue knows of.
    k = _submit(world, "K", CITIZEN_ZHANG, at(9, 28), ZHANG, UNLISTED)
    _accept_and_route(k, at(9, 29), UNLISTED)
    for case in (h, i, j, k):
        await store.save(case)
    await catch_up(pool, recorder, mapper, WorkQueueProjection())
    return world


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
    assert on_12th.counts == LightCounts(red=2, yellow=1, green=0, none=0)


async def test_filters_and_paging(world: World, pool: asyncpg.Pool) -> None:
    q = queue(pool)
    assert numbers(await q.queue("SCJGJ", light="red")) == [world.numbers["C"]]
    assert numbers(await q.queue("SCJGJ", state="claimed")) == [world.numbers["C"]]
    by_item = await q.queue("SCJGJ", item=FOOD)
    assert numbers(by_item) == [world.numbers["B"], world.numbers["E"]]
    assert (await q.queue("SCJGJ", item=COMPANY, state="routed")).total == 0
    second = await q.queue("SCJGJ", page=2, size=2)
    assert (second.total, numbers(second)) == (3, [world.numbers["E"]])
    assert (await q.queue("GAJ")).items == []


async def test_a_decided_task_leaves_the_open_queue_without_a_light(world: World, pool: asyncpg.Pool) -> None:
    assert (await queue(pool).queue("WJW")).total == 0  # A's only task: 批准 signed, case delivered
    (task,) = (await queue(pool).queue("WJW", scope="finished")).items
    assert (task.state, task.step_label, task.case_status) == ("approved", "批准", "delivered")
    assert task.finished_at == at(10, 9, 10)  # the 批准 signature, not the later 办结
    assert task.deadline is not None and task.deadline.light is None
    assert (await queue(pool).queue("WJW", light="green", scope="all")).total == 0


async def test_by_default_only_open_work(busy: World, pool: asyncpg.Pool) -> None:
    page = await queue(pool).queue("SCJGJ")
    # K has no light, so it comes after every lit task.
    assert numbers(page) == [busy.numbers[n] for n in "CBEK"] and page.total == 4
    assert all(i.finished_at is None for i in page.items)
    assert page.counts == LightCounts(red=1, yellow=1, green=1, none=1)
    assert page.items[-1].deadline is None
    # Asking for an approved or rejected task in the open queue finds none.
    assert (await queue(pool).queue("SCJGJ", state="approved")).total == 0


async def test_finished_is_the_history_newest_first(busy: World, pool: asyncpg.Pool) -> None:
    page = await queue(pool).queue("SCJGJ", scope="finished")
    assert [(i.number, i.state, i.case_status, i.finished_at) for i in page.items] == [
        (busy.numbers["I"], "claimed", "withdrawn", at(9, 30)),  # ended with its case
        (busy.numbers["J"], "rejected", "in_handling", at(9, 29, 10)),
        (busy.numbers["H"], "approved", "concluded", at(9, 24)),
    ]
    assert page.total == 3
    # J's case is still open, but the department's part is done: no light to watch.
    assert all(i.deadline is not None and i.deadline.light is None for i in page.items)
    assert page.counts == LightCounts(red=1, yellow=1, green=1, none=1)  # the open queue's, still
    second = await queue(pool).queue("SCJGJ", scope="finished", page=2, size=2)
    assert (numbers(second), second.total) == ([busy.numbers["H"]], 3)
    beyond = await queue(pool).queue("SCJGJ", scope="finished", page=3, size=2)
    assert (beyond.items, beyond.total) == ([], 3)


async def test_history_filters(busy: World, pool: asyncpg.Pool) -> None:
    q = queue(pool)
    assert numbers(await q.queue("SCJGJ", scope="finished", state="approved")) == [busy.numbers["H"]]
    assert numbers(await q.queue("SCJGJ", scope="finished", item=COMPANY)) == [busy.numbers["I"]]
    food = await q.queue("SCJGJ", scope="finished", item=FOOD)
    assert numbers(food) == [busy.numbers["J"], busy.numbers["H"]]
    assert food.counts == LightCounts(red=0, yellow=1, green=1, none=0)  # B and E, the open FOOD work
    # Only open work has a light: the history never matches a light filter.
    assert (await q.queue("SCJGJ", scope="finished", light="red")).total == 0
    assert numbers(await q.queue("SCJGJ", scope="all", light="red")) == [busy.numbers["C"]]


async def test_all_is_the_open_work_then_the_history(busy: World, pool: asyncpg.Pool) -> None:
    pages = [await queue(pool).queue("SCJGJ", scope="all", page=p, size=3) for p in (1, 2, 3, 4)]
    assert [numbers(p) for p in pages] == [
        [busy.numbers[n] for n in "CBE"],
        [busy.numbers[n] for n in "KIJ"],  # the page that crosses from open work into the history
        [busy.numbers["H"]],
        [],
    ]
    assert {p.total for p in pages} == {7}


async def test_rebuild_gives_identical_rows_and_answers(
    busy: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    async def dump() -> dict[str, list[str]]:
        return {
            t: [r[0] for r in await pool.fetch(f"SELECT row_to_json(x)::text FROM {t} x ORDER BY 1")]
            for t in ("work_queue", "work_queue_cases")
        }

    async def answers() -> list[QueuePage]:
        return [await queue(pool).queue("SCJGJ", scope=s) for s in ("open", "finished", "all")]

    before, asked = await dump(), await answers()
    assert len(before["work_queue"]) == 8  # A's at WJW; B, C, E, H, I, J, K at SCJGJ
    assert await rebuild(recorder, WorkQueueProjection(), mapper.to_domain_event, batch_size=3) == 2
    assert await dump() == before
    assert await answers() == asked
