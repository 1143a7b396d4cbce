"""The dispatcher's lanes on PostgreSQL: a slow provider holds back nothing but its own rows."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from notifications.intents import Purpose
from tests.fakes.sms_script import SERVER_ERROR
from tests.integration import test_case_progress as shared
from tests.integration.dispatch_support import (
    NOON,
    Fakes,
    add_device,
    attempts,
    dispatcher,
    enqueue,
    eventually,
    fakes,
    rows,
    stop,
)
from tests.integration.test_case_progress import World

mapper, store, world = shared.mapper, shared.store, shared.world
__all__ = ["fakes"]  # a fixture, imported for pytest

pytestmark = pytest.mark.integration

SLOW_SECONDS = 1.5  # the push fake's answer to one device; the channel waits 2 s


async def _state(pool: asyncpg.Pool, key: str) -> dict[str, object]:
    [row] = await rows(pool, key=key)
    return row


async def _slow_row(pool: asyncpg.Pool, fakes: Fakes, case_id: uuid.UUID) -> str:
    """A notice to a citizen whose one push device answers after SLOW_SECONDS."""
    await add_device(pool, "citizen-slow", "fid-slow")
    fakes.fcm.fail("fid-slow", f"SLOW:{SLOW_SECONDS}")
    return await enqueue(pool, Purpose.RESUMED, "citizen-slow", case_id, occurred_at=NOON)


async def _delivered(pool: asyncpg.Pool, keys: list[str]) -> bool:
    return all(r["state"] == "delivered" for r in await rows(pool) if r["key"] in keys)


async def test_a_slow_row_holds_back_only_itself_and_stop_waits_for_it(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    case_a = world.ids["A"]
    slow = await _slow_row(pool, fakes, case_a)
    fast = []
    for n in range(5):
        await add_device(pool, f"citizen-{n}", f"fid-{n}")
        fast.append(await enqueue(pool, Purpose.RESUMED, f"citizen-{n}", case_a, occurred_at=NOON))
    d = dispatcher(pool, fakes, mapper, lanes=1, batch=8, poll_seconds=0.05)
    started = time.monotonic()
    d.start()
    try:
        await eventually(lambda: _delivered(pool, fast), SLOW_SECONDS / 2, "the fast rows recorded")
        assert (await _state(pool, slow))["state"] == "pending"
        # Made due now, while the slow row is still in flight: claimed, sent and recorded meanwhile.
        later = []
        for n in range(5, 8):
            await add_device(pool, f"citizen-{n}", f"fid-{n}")
            later.append(await enqueue(pool, Purpose.RESUMED, f"citizen-{n}", case_a, occurred_at=NOON))
        await eventually(lambda: _delivered(pool, later), SLOW_SECONDS / 2, "the later rows recorded")
        slow_row = await _state(pool, slow)
        assert (slow_row["state"], slow_row["claim"] is not None) == ("pending", True)
        assert slow not in fakes.received_per_key()  # its push has not been answered yet
    finally:
        await stop(d, fakes)  # lets the slow row finish and be recorded

    assert time.monotonic() - started >= SLOW_SECONDS
    found = {r["key"]: (r["state"], r["channel"], r["claim"]) for r in await rows(pool)}
    assert found == {key: ("delivered", "push", None) for key in [slow, *fast, *later]}
    assert fakes.received_per_key() == {key: 1 for key in found}


async def test_a_row_recorded_for_a_retry_keeps_its_time_while_its_claim_mates_are_renewed(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    case_a = world.ids["A"]
    slow = await _slow_row(pool, fakes, case_a)
    retried = await enqueue(pool, Purpose.RESUMED, "citizen-zhang", case_a, occurred_at=NOON)
    fakes.aliyun.script("+8613812341234", SERVER_ERROR)
    fakes.tencent.script("+8613812341234", SERVER_ERROR)
    lease = timedelta(seconds=0.3)  # renewed every 0.1 s while the slow row is in flight
    d = dispatcher(pool, fakes, mapper, lanes=1, batch=8, poll_seconds=0.05, lease=lease)
    d.start()
    try:

        async def recorded() -> bool:
            row = await _state(pool, retried)
            return row["attempts"] == 2 and row["claim"] is None

        await eventually(recorded, SLOW_SECONDS / 2, "the retry recorded")
        # Two attempts: twice the base, and equal jitter with rng 0.5 makes it three quarters of that.
        own_time = NOON + timedelta(seconds=1.5)
        assert (await _state(pool, retried))["next_attempt_at"] == own_time
        fakes.clock.advance(0.2)  # neither row is due yet; a renewal from now on shows
        renewed = NOON + timedelta(seconds=0.2) + lease

        async def slow_renewed() -> bool:
            return (await _state(pool, slow))["next_attempt_at"] == renewed

        await eventually(slow_renewed, SLOW_SECONDS / 2, "the slow row's lease renewed")
        retried_row = await _state(pool, retried)
        assert (retried_row["state"], retried_row["next_attempt_at"]) == ("pending", own_time)
        assert (await _state(pool, slow))["state"] == "pending"
    finally:
        await stop(d, fakes)

    assert (await _state(pool, slow))["state"] == "delivered"
    assert fakes.received_per_key() == {slow: 1}  # kept by its renewals, never taken back
    assert await attempts(pool, retried) == [("sms", "aliyun-sms", "retry"), ("sms", "tencent-sms", "retry")]
