"""Webhook workers side by side: leases keep one batch per subscription in flight, whoever holds it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from backend.streams.webhook_leases import Backoff, Outcome, claim, record
from tests.fakes.webhook_receiver import Receiver
from tests.integration import test_case_progress as shared
from tests.integration import webhook_support as support
from tests.integration.webhook_support import SECRET, Setting, eventually, now, rules

mapper, store, world = shared.mapper, shared.store, shared.world
setting = support.setting

pytestmark = pytest.mark.integration


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real transport that counts the requests it sent: which worker did the work."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await super().handle_async_request(request)


async def test_two_workers_racing_deliver_each_batch_once_and_in_order(setting: Setting) -> None:
    """Each worker holds one subscription at a time, so the subscriptions keep passing between them."""
    with Receiver(SECRET, delay=0.02).up() as receiver:
        subs = [
            await setting.subscribe("WJW", receiver.url),
            await setting.subscribe("WJW", receiver.url),
            await setting.subscribe(None, receiver.url),
        ]
        transports = [CountingTransport(), CountingTransport()]
        async with (
            setting.running(rules(batch=2, in_flight=1), transport=transports[0]),
            setting.running(rules(batch=2, in_flight=1), transport=transports[1]),
        ):
            for sub in subs:
                await setting.caught_up(sub.id)
    assert receiver.most_at_once == 1  # never two batches of one subscription at once
    assert all(t.sent > 0 for t in transports), [t.sent for t in transports]
    for sub in subs:
        mine = [e for d in receiver.deliveries if d.subscription == str(sub.id) for e in d.events]
        # Not merely after dedupe: with every answer a 2xx, nothing is ever sent twice.
        assert mine == await setting.expected(sub.department)
    assert sum(t.sent for t in transports) == len(receiver.deliveries)


async def test_an_outcome_after_the_lease_ran_out_changes_nothing(setting: Setting) -> None:
    sub = await setting.subscribe("WJW", "http://127.0.0.1:9/never-sent")
    head, lease, t0 = await setting.stream.head(), timedelta(seconds=30), now()
    [first] = await claim(setting.pool, t0, head, lease, 10)
    assert await claim(setting.pool, t0 + lease / 2, head, lease, 10) == []  # held
    [second] = await claim(setting.pool, t0 + lease * 1.5, head, lease, 10)  # run out: taken over
    assert (second.id, second.cursor) == (sub.id, 0) and second.lease != first.lease

    backoff = Backoff(minimum=1, maximum=10, pause_after=3)
    late = Outcome(uuid.uuid4(), t0, events=2, cursor=5, next_cursor=5, status_code=200)
    assert not await record(setting.pool, first, late, backoff, 0.0)
    status = await setting.status(sub.id)
    assert (status.cursor, status.delivered_events, status.attempts) == (0, 0, [])

    failed = Outcome(uuid.uuid4(), t0, events=2, cursor=5, next_cursor=5, status_code=502, error="HTTP 502")
    assert await record(setting.pool, second, failed, backoff, 0.0)
    status = await setting.status(sub.id)
    assert (status.cursor, status.consecutive_failures, status.last_status) == (0, 1, 502)
    assert status.next_attempt_at == t0 + timedelta(seconds=1)  # the first retry: the minimum
    assert not await record(setting.pool, second, late, backoff, 0.0)  # a lease is recorded once


async def test_an_outcome_claimed_before_a_redrive_moves_no_cursor(setting: Setting) -> None:
    sub = await setting.subscribe("WJW", "http://127.0.0.1:9/never-sent")
    head = await setting.stream.head()
    [held] = await claim(setting.pool, now(), head, timedelta(seconds=30), 10)
    await setting.subscriptions.redrive(sub.id, None, 3)
    done = Outcome(uuid.uuid4(), now(), events=2, cursor=8, next_cursor=8, status_code=200)
    assert await record(setting.pool, held, done, Backoff(1, 10, 3), 0.0)
    status = await setting.status(sub.id)
    assert (status.cursor, status.delivered_events, len(status.attempts)) == (3, 0, 1)
    assert await claim(setting.pool, now(), head, timedelta(seconds=30), 10) != []  # the lease was given back


async def test_a_stopping_worker_gives_its_lease_back_after_the_grace(setting: Setting) -> None:
    with Receiver(SECRET, delay=1.5).up() as receiver:
        sub = await setting.subscribe("WJW", receiver.url)
        worker = setting.worker(rules(timeout=5))
        worker.start()

        async def sending() -> bool:
            return bool(receiver.most_at_once)

        await eventually(sending, "a delivery in flight")
        await worker.stop(grace_seconds=0.1)
        row = await setting.pool.fetchrow(
            "SELECT lease, leased_until = '-infinity' AS free, cursor FROM webhook_subscriptions "
            "WHERE id = $1",
            sub.id,
        )
        assert (row["lease"], row["free"], row["cursor"]) == (None, True, 0)
        # Another worker takes it over at once, and the receiver gets everything.
        receiver.delay = 0
        async with setting.running(rules()):
            expected = await setting.expected("WJW")
            await setting.caught_up(sub.id, len(expected))
    assert receiver.events() == expected
