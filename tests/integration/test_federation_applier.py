"""Appliers on PostgreSQL: one handoff at a time across instances, in order; failures block nothing else."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
import pytest

from backend.federation.admin import FederationAdmin
from backend.federation.applier import Applier, ApplierRules
from backend.federation.handlers import AppliedMessage, Handler
from backend.federation.inbox import Inbox
from tests.integration.federation_support import (
    NOTED,
    ZHUZHOU,
    Directory,
    envelope,
    eventually,
    key_of,
    now,
    signed,
)

pytestmark = pytest.mark.integration

THEIR_KEY = key_of(ZHUZHOU)
RULES = ApplierRules(retry_min_seconds=0.1, retry_max_seconds=0.4, poll_seconds=0.2)


@pytest.fixture
def inbox(pool: asyncpg.Pool) -> Inbox:
    directory = Directory()
    directory.add(ZHUZHOU, "http://127.0.0.1:9", THEIR_KEY)
    return Inbox(lambda: pool, directory, {NOTED}, freshness_seconds=300, clock=now)


async def deliver(inbox: Inbox, handoff: uuid.UUID, seq: int) -> None:
    headers, body, _ = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, seq))
    assert await inbox.receive("POST", "/federation/v1/messages", headers, body, "127.0.0.1")


@asynccontextmanager
async def appliers(
    pool: asyncpg.Pool, db_url: str, schema: str, *handlers: Handler, rules: ApplierRules = RULES
) -> AsyncIterator[list[Applier]]:
    async with AsyncExitStack() as stack:
        running = []
        for handler in handlers:
            applier = Applier(lambda: pool, db_url, schema, {NOTED: handler}, rules, clock=now)
            applier.start()
            stack.push_async_callback(applier.stop)
            running.append(applier)
        yield running


class Watch:
    """Handlers for several appliers that note who applied what, and how many ran on one handoff at once."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, uuid.UUID, int]] = []  # (applier, handoff, seq)
        self.running: Counter[uuid.UUID] = Counter()
        self.most_at_once = 0

    def handler(self, name: str) -> Handler:
        async def apply(message: AppliedMessage) -> None:
            self.running[message.handoff] += 1
            self.most_at_once = max(self.most_at_once, self.running[message.handoff])
            await asyncio.sleep(0.005)  # long enough for another applier to barge in, were it let
            self.applied.append((name, message.handoff, message.seq))
            self.running[message.handoff] -= 1

        return apply


async def test_two_appliers_never_work_one_handoff_at_once(
    inbox: Inbox, pool: asyncpg.Pool, db_url: str, schema: str
) -> None:
    watch = Watch()
    handoffs = [uuid.uuid4() for _ in range(12)]
    arrivals = [(h, seq) for h in handoffs for seq in (1, 2, 3, 4)]
    random.Random(7).shuffle(arrivals)  # every order of arrival: the seqs put them right
    async with appliers(pool, db_url, schema, watch.handler("a"), watch.handler("b")):
        for handoff, seq in arrivals:
            await deliver(inbox, handoff, seq)

        async def done() -> bool:
            return len(watch.applied) >= len(arrivals)

        await eventually(done, "every message applied")
        await asyncio.sleep(0.3)  # any second application would show now
    assert watch.most_at_once == 1
    assert len(watch.applied) == len(arrivals)  # each once
    for handoff in handoffs:
        assert [seq for _, h, seq in watch.applied if h == handoff] == [1, 2, 3, 4]
    assert {name for name, _, _ in watch.applied} == {"a", "b"}  # both took part
    assert await pool.fetchval("SELECT count(*) FROM federation_inbox WHERE applied_at IS NULL") == 0


async def test_a_failing_handler_is_retried_with_backoff_and_blocks_only_its_own_handoff(
    inbox: Inbox, pool: asyncpg.Pool, db_url: str, schema: str
) -> None:
    stuck, free = uuid.uuid4(), uuid.uuid4()
    calls: list[tuple[uuid.UUID, int, float]] = []
    failures_left = 3

    async def flaky(message: AppliedMessage) -> None:
        nonlocal failures_left
        calls.append((message.handoff, message.seq, time.monotonic()))
        if message.handoff == stuck and failures_left > 0:
            failures_left -= 1
            raise RuntimeError("the case store is unavailable")

    async with appliers(pool, db_url, schema, flaky):
        await deliver(inbox, stuck, 1)
        await deliver(inbox, stuck, 2)
        for seq in (1, 2, 3):
            await deliver(inbox, free, seq)

        async def failing() -> bool:
            failed = await FederationAdmin(lambda: pool).inbox("failed", 10)
            return failed.failed == 1 and [seq for h, seq, _ in calls if h == free] == [1, 2, 3]

        await eventually(failing, "the other handoff applied while the first fails")
        failed = (await FederationAdmin(lambda: pool).inbox("failed", 10)).items[0]
        assert (failed.handoff, failed.seq) == (stuck, 1)
        assert failed.error == "RuntimeError: the case store is unavailable" and failed.attempts >= 1
        assert failed.next_attempt_at is not None and failed.applied_at is None

        async def recovered() -> bool:
            rows = await pool.fetch("SELECT applied_at FROM federation_inbox WHERE handoff = $1", stuck)
            return all(r["applied_at"] is not None for r in rows)

        await eventually(recovered, "applied once the handler recovers")

    tries = [at for h, seq, at in calls if h == stuck and seq == 1]
    assert len(tries) == 4  # three failures, then success
    gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.18 and gaps[2] >= 0.36  # 0.1, 0.2, 0.4 less up to 10 % jitter
    assert [seq for h, seq, _ in calls if h == stuck] == [1, 1, 1, 1, 2]  # #2 only after #1
    row = await pool.fetchrow(
        "SELECT attempts, error FROM federation_inbox WHERE handoff = $1 AND seq = 1", stuck
    )
    assert row["attempts"] == 3 and row["error"].startswith("RuntimeError")  # the last failure stays on show
    summary = await FederationAdmin(lambda: pool).inbox(None, 10)
    assert (summary.applied, summary.failed, summary.pending) == (5, 0, 0)


async def test_a_kind_nobody_handles_any_more_waits_with_the_error(
    pool: asyncpg.Pool, db_url: str, schema: str, inbox: Inbox
) -> None:
    """The endpoint refuses unknown kinds; one stored before a release dropped its handler waits, visibly."""
    handoff = uuid.uuid4()
    await deliver(inbox, handoff, 1)
    rules = ApplierRules(retry_min_seconds=0.05, retry_max_seconds=0.1, poll_seconds=0.2)
    applier = Applier(lambda: pool, db_url, schema, {}, rules, clock=now)
    applier.start()
    try:

        async def failed() -> asyncpg.Record | None:
            return await pool.fetchrow(
                "SELECT error, attempts FROM federation_inbox WHERE handoff = $1 AND error IS NOT NULL",
                handoff,
            )

        found = await eventually(failed, "the missing handler noted")
    finally:
        await applier.stop()
    assert found["error"] == "no handler for messages of kind 'test.noted' in this deployment"
