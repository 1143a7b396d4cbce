"""The in-app inbox on PostgreSQL: citizen notices rendered, paged, marked read, rebuilt keeping reads."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.consumers import rebuild
from backend.store.recorder import EventRecorder
from notifications.case_notices import catalogue_items
from notifications.inbox import Inbox, InboxQueries
from projections.catalogue import CatalogueQueries
from tests.integration import test_case_progress as shared
from tests.integration.test_case_progress import World, at, catch_up, fixed_clock

# The five cases of the progress tests, and the fixtures that build them.
mapper, store, world = shared.mapper, shared.store, shared.world  # recorder: tests/integration/conftest.py

pytestmark = pytest.mark.integration


def inbox(pool: asyncpg.Pool) -> Inbox:
    return Inbox(catalogue_items(CatalogueQueries(pool)))


def queries(pool: asyncpg.Pool) -> InboxQueries:
    return InboxQueries(lambda: pool, fixed_clock(12, 29))


@pytest.fixture
async def filled(
    world: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> World:
    await catch_up(pool, recorder, mapper, inbox(pool))
    return world


async def dump(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [dict(r) for r in await pool.fetch("SELECT * FROM inbox ORDER BY key")]


async def test_citizens_read_their_own_notices_newest_first(filled: World, pool: asyncpg.Pool) -> None:
    page = await queries(pool).list("citizen-zhang", limit=100)
    # 张三's cases A and E; never a department's notice, never another citizen's.
    assert {e.case_id for e in page.items} == {filled.ids["A"], filled.ids["E"]}
    assert [e.occurred_at for e in page.items] == sorted((e.occurred_at for e in page.items), reverse=True)
    assert page.unread == len(page.items) == 10  # A: 9 less the department's new task; E: 2
    assert page.next_before is None
    newest = page.items[0]
    assert (newest.case_id, newest.purpose) == (filled.ids["A"], "certificate_ready")
    ready = "张*，您好！您的“医师执业注册”办理结果已准备好（电子证照：EL-1）。"
    assert newest.body == ready + "可在小程序“我的证照”中查看和使用。"
    assert newest.title and newest.read_at is None
    purposes = {e.purpose for e in page.items}
    assert "new_task" not in purposes and {"submitted", "concluded", "certificate_ready"} <= purposes
    agent = await queries(pool).list("agent-wang")
    assert [e.case_id for e in agent.items] == [filled.ids["C"]] * 2  # submitted, accepted
    text = ""
    for subject in ("citizen-zhang", "citizen-li", "agent-wang"):
        text += "".join(e.title + e.body for e in (await queries(pool).list(subject, 100)).items)
    for secret in shared.PLAINTEXT:
        assert secret not in text, secret


async def test_pages_follow_the_last_entry_seen(filled: World, pool: asyncpg.Pool) -> None:
    q = queries(pool)
    whole = [e.key for e in (await q.list("citizen-zhang", limit=100)).items]
    seen: list[str] = []
    before = None
    while True:
        page = await q.list("citizen-zhang", limit=5, before=before)
        seen += [e.key for e in page.items]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == whole


async def test_mark_read_is_per_subject(filled: World, pool: asyncpg.Pool) -> None:
    q = queries(pool)
    zhang = (await q.list("citizen-zhang")).items
    keys = [e.key for e in zhang[:3]]
    # 李四 cannot mark 张三's notices read, nor does it count as anything of hers.
    assert await q.mark_read("citizen-li", keys) == 0
    assert (await q.list("citizen-zhang")).unread == 10
    li_unread = (await q.list("citizen-li")).unread
    assert await q.mark_read("citizen-zhang", [*keys, "no-such-key"]) == 3
    assert await q.mark_read("citizen-zhang", keys) == 0  # already read: nothing changes
    after = await q.list("citizen-zhang")
    assert after.unread == 7
    assert {e.key for e in after.items if e.read_at is not None} == set(keys)
    assert all(e.read_at == at(12, 29, 10) for e in after.items if e.read_at is not None)
    assert (await q.list("citizen-li")).unread == li_unread


async def test_a_rebuild_gives_identical_rows_and_keeps_what_was_read(
    filled: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    q = queries(pool)
    keys = [e.key for e in (await q.list("citizen-li")).items[:2]]
    assert await q.mark_read("citizen-li", keys) == 2
    before, page = await dump(pool), await q.list("citizen-li", limit=100)
    assert await rebuild(recorder, inbox(pool), mapper.to_domain_event, batch_size=4) == 2
    assert await dump(pool) == before
    assert await q.list("citizen-li", limit=100) == page
    assert page.unread == len(page.items) - 2
