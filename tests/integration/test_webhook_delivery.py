"""Webhook delivery on PostgreSQL to real receivers on loopback: outages, pauses, re-drives, departments."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.store.aggregates import AggregateStore
from backend.store.recorder import EventRecorder
from backend.streams.webhook_rules import WebhookCursorError
from tests.fakes.webhook_receiver import Receiver
from tests.integration import test_case_progress as shared
from tests.integration import webhook_support as support
from tests.integration.test_case_progress import ZHANG, World
from tests.integration.webhook_support import SECRET, Setting, route_new_case, rules

mapper, store, world = shared.mapper, shared.store, shared.world
setting = support.setting

pytestmark = pytest.mark.integration


async def test_a_receiver_down_for_a_while_gets_every_event_once_in_order(
    setting: Setting,
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    world: World,
) -> None:
    with Receiver(SECRET) as receiver:  # not up yet: its port refuses connections
        sub = await setting.subscribe("SCJGJ", receiver.url)
        async with setting.running(rules(batch=2)):
            down = await setting.when(
                sub.id, lambda s: s.consecutive_failures >= 2, "two refused connections"
            )
            assert down.last_status is None and "ConnectError" in (down.last_error or "")
            assert down.cursor == 0 and down.status == "active"

            receiver.refuse_next = 3  # up, but overloaded at first
            receiver.up()
            await setting.caught_up(sub.id)
            # Events published meanwhile arrive too, the stream's NOTIFY waking the worker.
            await route_new_case(store, pool, recorder, mapper, world)
            expected = await setting.expected("SCJGJ")
            done = await setting.caught_up(sub.id, len(expected))

    assert receiver.events() == expected
    positions = [e["position"] for e in receiver.events()]
    assert positions == sorted(set(positions)) and len(expected) >= 6
    assert all(d.signed and d.headers_agree for d in receiver.deliveries)
    assert [d.answered for d in receiver.deliveries[:4]] == [503, 503, 503, 200]
    assert all(len(d.events) <= 2 and d.cursor == d.events[-1]["position"] for d in receiver.deliveries)
    # Acknowledged once each: the cursor moved only on a 2xx.
    assert done.delivered_events == len(expected) and done.lag == 0
    assert done.consecutive_failures == 0 and done.last_status == 200 and done.last_success_at is not None
    assert (done.last_error or "").startswith("HTTP 503")  # the last error stays on show
    codes = [a.status_code for a in reversed(done.attempts)]  # oldest first
    assert codes[: codes.index(503)] == [None] * codes.index(503) and codes.index(503) >= 2
    assert codes[codes.index(503) :] == [503, 503, 503] + [200] * (len(codes) - codes.index(503) - 3)
    assert all(a.duration_ms >= 0 and a.events for a in done.attempts)


async def test_repeated_failures_pause_the_subscription_until_resumed(setting: Setting) -> None:
    with Receiver(SECRET).up() as receiver:
        receiver.refuse_next, receiver.refuse_with = 1_000_000, 500
        sub = await setting.subscribe("WJW", receiver.url)
        async with setting.running(rules(pause_after=3)):
            status = await setting.when(sub.id, lambda s: s.status == "paused", "paused after three failures")
            assert status.paused_reason == "3 consecutive failures"
            assert (status.consecutive_failures, status.last_status, status.cursor) == (3, 500, 0)
            assert status.last_error == 'HTTP 500: {"error":"receiver unavailable"}'
            assert status.next_attempt_at is None and status.lag == status.head
            assert [a.status_code for a in status.attempts] == [500, 500, 500]
            await asyncio.sleep(0.5)  # many retry intervals: a paused subscription is left alone
            assert len(receiver.deliveries) == 3

            receiver.refuse_next = 0
            resumed = await setting.subscriptions.resume(sub.id, "WJW")
            assert (resumed.status, resumed.paused_reason, resumed.consecutive_failures) == (
                "active",
                None,
                0,
            )
            expected = await setting.expected("WJW")
            await setting.caught_up(sub.id, len(expected))
    assert receiver.events() == expected


async def test_a_redrive_delivers_again_from_an_earlier_position(setting: Setting) -> None:
    expected = await setting.expected("WJW")
    with Receiver(SECRET).up() as receiver:
        sub = await setting.subscribe("WJW", receiver.url)
        async with setting.running(rules(batch=4)):
            await setting.caught_up(sub.id, len(expected))
            before = len(receiver.accepted())
            mid = expected[4]["position"]
            again = [e for e in expected if e["position"] > mid]
            assert len(again) >= 4
            redriven = await setting.subscriptions.redrive(sub.id, "WJW", mid)
            assert (redriven.cursor, redriven.status) == (mid, "active")
            await setting.caught_up(sub.id, len(expected) + len(again))
            with pytest.raises(WebhookCursorError):
                await setting.subscriptions.redrive(sub.id, "WJW", redriven.head + 1)
    assert [e for d in receiver.accepted()[before:] for e in d.events] == again
    assert receiver.events() == expected


async def test_a_redrive_resumes_a_paused_subscription(setting: Setting) -> None:
    with Receiver(SECRET).up() as receiver:
        receiver.refuse_next = 2
        sub = await setting.subscribe("SCJGJ", receiver.url)
        async with setting.running(rules(pause_after=2)):
            await setting.when(sub.id, lambda s: s.status == "paused", "paused")
            await setting.subscriptions.redrive(sub.id, "SCJGJ", 0)
            expected = await setting.expected("SCJGJ")
            await setting.caught_up(sub.id, len(expected))
    assert receiver.events() == expected


async def test_departments_never_receive_each_others_events(setting: Setting) -> None:
    receivers = {name: Receiver(SECRET).up() for name in ("SCJGJ", "WJW", "all")}
    try:
        subs = {
            "SCJGJ": await setting.subscribe("SCJGJ", receivers["SCJGJ"].url),
            "WJW": await setting.subscribe("WJW", receivers["WJW"].url),
            "all": await setting.subscribe(None, receivers["all"].url, personal=True),
        }
        async with setting.running(rules(batch=5)):
            for sub in subs.values():
                await setting.caught_up(sub.id)
    finally:
        for receiver in receivers.values():
            receiver.down()
    scjgj, wjw, everything = (receivers[n].events() for n in ("SCJGJ", "WJW", "all"))
    assert scjgj == await setting.expected("SCJGJ") and wjw == await setting.expected("WJW")
    assert everything == await setting.expected(None, personal=True)
    assert not {e["id"] for e in scjgj} & {e["id"] for e in wjw}  # no case of this world is shared
    assert {e["case"]["id"] for e in scjgj}.isdisjoint({e["case"]["id"] for e in wjw})
    assert all(d.subscription == str(subs[n].id) for n in receivers for d in receivers[n].deliveries)
    # Only the subscription registered for personal data gets it in the clear.
    submitted = [e for e in everything if e["type"] == "case.submitted"]
    assert ZHANG.identity.number in [e["applicant"]["idNumber"] for e in submitted]


async def test_a_subscription_starts_at_the_head_unless_told_otherwise(
    setting: Setting,
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    world: World,
) -> None:
    with Receiver(SECRET).up() as receiver:
        sub = await setting.subscribe("SCJGJ", receiver.url, after=None)
        assert sub.cursor == sub.head > 0 and sub.lag == 0
        async with setting.running(rules()):
            await asyncio.sleep(0.3)
            assert receiver.deliveries == []  # nothing new yet
            await route_new_case(store, pool, recorder, mapper, world)
            new = await setting.expected("SCJGJ", after=sub.head)
            await setting.caught_up(sub.id, len(new))
    assert [e["type"] for e in receiver.events()] == ["case.routed", "task.claimed"]
