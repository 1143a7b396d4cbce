"""The notification policy consumer on PostgreSQL: real case events into the outbox, exactly once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.calendar_data import base_calendar
from backend.consumers import ensure_installed, rebuild
from backend.consumers.batch import process_batch
from backend.consumers.generations import active_generation
from backend.store.aggregates import AggregateStore
from backend.store.recorder import EventRecorder
from domain.calendar import WorkingCalendar
from domain.case import Actor, Channel, Role
from notifications.case_notices import catalogue_items
from notifications.outbox import NotificationPolicy
from projections.catalogue import CatalogueQueries
from tests.integration import test_case_progress as shared
from tests.integration.test_case_progress import World, at, catch_up

# The five cases of the progress tests, and the fixtures that build them.
mapper, store, world = shared.mapper, shared.store, shared.world  # recorder: tests/integration/conftest.py

pytestmark = pytest.mark.integration

SYSTEM = Actor(id="system", role=Role.SYSTEM)
EVERYTHING_NEWS = timedelta(days=3650)  # a cut-off no event of the world is older than


def policy(pool: asyncpg.Pool, now: datetime, cutoff: timedelta = EVERYTHING_NEWS) -> NotificationPolicy:
    clock: Callable[[], datetime] = lambda: now  # noqa: E731
    return NotificationPolicy(catalogue_items(CatalogueQueries(pool)), clock, cutoff=cutoff)


async def outbox(pool: asyncpg.Pool, case_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT * FROM notification_outbox WHERE $1::uuid IS NULL OR case_id = $1 ORDER BY occurred_at, key",
        case_id,
    )
    return [dict(r) for r in rows]


def told(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str | None]]:
    return sorted((r["purpose"], r["recipient_kind"], r["recipient"], r["recipient_role"]) for r in rows)


async def test_a_case_life_tells_the_applicant_and_the_department(
    world: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    await catch_up(pool, recorder, mapper, policy(pool, at(12, 29)))
    rows = await outbox(pool, world.ids["A"])
    zhang = ("citizen", "citizen-zhang", None)
    assert told(rows) == sorted(
        [
            ("submitted", *zhang),
            ("materials_requested", *zhang),
            ("accepted", *zhang),
            ("new_task", "department", "WJW", "handler"),
            ("suspended", *zhang),
            ("resumed", *zhang),
            ("concluded", *zhang),
            ("rating_invitation", *zhang),
            ("certificate_ready", *zhang),
        ]
    )
    assert {r["state"] for r in rows} == {"pending"}
    assert all(r["next_attempt_at"] == r["occurred_at"] for r in rows)
    assert all(r["attempts"] == 0 and r["tried_channels"] == [] for r in rows)
    by_purpose = {r["purpose"]: r for r in rows}
    submitted = json.loads(by_purpose["submitted"]["variables"])
    # The catalogue's item name and the masked applicant, never the name in the clear.
    assert submitted["item_name"] == "医师执业注册"
    assert submitted["applicant_name"] == "张*"
    assert submitted["case_number"] == world.numbers["A"]
    assert "缺体检证明" in json.loads(by_purpose["materials_requested"]["variables"])["materials"]
    # C is an enterprise's case, submitted by an agent: the agent's account hears of it, by the public name.
    c = await outbox(pool, world.ids["C"])
    assert {(r["purpose"], r["recipient"]) for r in c} >= {("submitted", "agent-wang"), ("new_task", "SCJGJ")}
    assert json.loads(c[0]["variables"])["applicant_name"] == "长沙星城科技有限公司"
    text = json.dumps([r["variables"] for r in await outbox(pool)], ensure_ascii=False)
    for secret in shared.PLAINTEXT:
        assert secret not in text, secret


async def test_acceptance_and_new_tasks_state_the_deadline_on_the_working_calendar(
    world: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    async def calendar() -> WorkingCalendar:
        return base_calendar()

    clock: Callable[[], datetime] = lambda: at(12, 29)  # noqa: E731
    items = catalogue_items(CatalogueQueries(pool))
    consumer = NotificationPolicy(items, clock, cutoff=EVERYTHING_NEWS, calendar=calendar)
    await catch_up(pool, recorder, mapper, consumer)
    deadlines = {
        (letter, r["purpose"]): json.loads(r["variables"])["deadline"]
        for letter in "AB"
        for r in await outbox(pool, world.ids[letter])
        if r["purpose"] in ("accepted", "new_task")
    }
    # Accepted 9/29 with 5 and 3 working days: 9/30, then the National Day holiday to 10/7, then
    # 10/8, 10/9, 10/10 (a make-up working Saturday) and 10/12. A's later suspension comes after.
    assert deadlines == {
        ("A", "accepted"): "2026年10月12日",
        ("A", "new_task"): "2026年10月12日",
        ("B", "accepted"): "2026年10月9日",
        ("B", "new_task"): "2026年10月9日",
    }


async def test_without_a_calendar_a_notice_points_to_the_case_for_its_deadline(
    world: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    await catch_up(pool, recorder, mapper, policy(pool, at(12, 29)))
    [accepted] = [r for r in await outbox(pool, world.ids["A"]) if r["purpose"] == "accepted"]
    assert json.loads(accepted["variables"])["deadline"] == "以办件详情为准"


async def test_a_red_light_goes_to_the_open_departments_handler_and_head(
    world: World,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    store: AggregateStore,
) -> None:
    consumer = policy(pool, at(12, 29))
    await catch_up(pool, recorder, mapper, consumer)
    c = await store.get(world.ids["C"])
    c.mark_overdue(SYSTEM, Channel.SYSTEM, at(9, 29), deadline=date(2026, 9, 28))
    await store.save(c)
    await catch_up(pool, recorder, mapper, consumer)
    red = [r for r in await outbox(pool, world.ids["C"]) if r["purpose"] == "light_red"]
    assert told(red) == [
        ("light_red", "department", "SCJGJ", "handler"),
        ("light_red", "department", "SCJGJ", "head"),
    ]
    assert all(r["urgent"] for r in red)


async def test_old_events_go_in_skipped_so_installing_on_an_old_log_sends_nothing(
    world: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    now = at(12, 28, 13)  # F's events (12/28, 8:00 and 9:00) are news; the rest is history
    await catch_up(pool, recorder, mapper, policy(pool, now, cutoff=timedelta(hours=24)))
    rows = await outbox(pool)
    pending = [r for r in rows if r["state"] == "pending"]
    assert told(pending) == [
        ("accepted", "citizen", "citizen-li", None),
        ("submitted", "citizen", "citizen-li", None),
    ]
    assert {r["case_id"] for r in pending} == {world.ids["F"]}
    skipped = [r for r in rows if r["state"] == "skipped"]
    assert len(skipped) == len(rows) - 2 > 10
    assert all(r["occurred_at"] < now - timedelta(hours=24) for r in skipped)
    due = await pool.fetchval(
        "SELECT count(*) FROM notification_outbox WHERE state = 'pending' AND next_attempt_at <= $1", now
    )
    assert due == 2


async def test_a_rolled_back_batch_handled_again_adds_each_intent_once(
    world: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    consumer = policy(pool, at(12, 29))
    await ensure_installed(pool, consumer)

    class Killed(Exception):
        pass

    async with pool.acquire() as conn:
        generation = await active_generation(conn, consumer.name)
        with pytest.raises(Killed):
            async with conn.transaction():
                await process_batch(conn, consumer, mapper.to_domain_event, generation, 1000)
                assert await conn.fetchval("SELECT count(*) FROM notification_outbox") > 0
                raise Killed  # a crash before commit: neither the rows nor the position stay
        assert await pool.fetchval("SELECT count(*) FROM notification_outbox") == 0
    await catch_up(pool, recorder, mapper, consumer)
    once = await outbox(pool)
    assert len(once) == len({r["key"] for r in once}) > 0
    # A batch over the same position again (as after a crash between commit and acknowledgement).
    await pool.execute(
        "UPDATE tracking SET notification_id = 0 WHERE application_name LIKE 'notification_policy#%'"
    )
    await pool.execute(f"TRUNCATE case_notices_g{generation}")
    await catch_up(pool, recorder, mapper, consumer)
    assert await outbox(pool) == once


async def test_a_rebuild_sends_nothing_again_and_leaves_the_dispatchers_marks(
    world: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    consumer = policy(pool, at(12, 29))
    await catch_up(pool, recorder, mapper, consumer)
    first = (await outbox(pool))[0]["key"]
    # What the dispatcher would do to a row: the rebuild must not reset it to pending.
    await pool.execute(
        "UPDATE notification_outbox SET state = 'delivered', channel = 'wechat', attempts = 1, "
        "tried_channels = '{wechat}', delivered_at = now() WHERE key = $1",
        first,
    )
    before = await outbox(pool)
    assert await rebuild(recorder, consumer, mapper.to_domain_event, batch_size=4) == 2
    assert await outbox(pool) == before
    notices = await pool.fetch("SELECT * FROM case_notices ORDER BY case_id")
    assert len(notices) == len(world.ids)
