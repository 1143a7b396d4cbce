"""What the webhook tests share: the published world, subscriptions, running workers, waiting for them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import msgspec
import pytest
from eventsourcing.persistence import Mapper

from backend.store.aggregates import AggregateStore
from backend.store.personal_cipher import generate_data_key, parse_data_keys
from backend.store.recorder import EventRecorder
from backend.streams.webhook_leases import Backoff
from backend.streams.webhook_secrets import SecretBox
from backend.streams.webhook_store import SubscriptionView, WebhookSubscriptions
from backend.streams.webhook_worker import DeliveryRules, WebhookWorker
from domain.case import Assignment
from projections.event_stream import EventStreamProjection
from projections.event_stream_reads import StreamQueries, StreamScope
from tests.integration import test_case_progress as shared
from tests.integration.test_case_progress import (
    CITIZEN_LI,
    CLERK,
    FOOD,
    LI,
    MINI,
    WINDOW,
    World,
    at,
    catch_up,
)

T = TypeVar("T")
SECRET = "whsec-citypass-test-0123456789abcdef"


def now() -> datetime:
    return datetime.now(UTC)


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, within: float = 20.0) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)


def rules(
    *, batch: int = 3, pause_after: int = 1000, in_flight: int = 16, timeout: float = 2.0
) -> DeliveryRules:
    return DeliveryRules(
        backoff=Backoff(minimum=0.05, maximum=0.2, pause_after=pause_after),
        batch=batch,
        timeout_seconds=timeout,
        poll_seconds=0.2,
        in_flight=in_flight,
    )


class Setting:
    """One test's published stream, its subscriptions, and what it needs to start workers."""

    def __init__(self, pool: asyncpg.Pool, stream: StreamQueries, db_url: str, schema: str) -> None:
        self.pool, self.stream, self.db_url, self.schema = pool, stream, db_url, schema
        self.box = SecretBox(parse_data_keys(generate_data_key("wh")))
        self.subscriptions = WebhookSubscriptions(lambda: pool, stream, self.box, now, allow_http=True)

    async def subscribe(
        self, department: str | None, url: str, *, personal: bool = False, after: int | None = 0
    ) -> SubscriptionView:
        return await self.subscriptions.register(
            department=department, url=url, secret=SECRET, personal=personal, after=after, by="test"
        )

    async def status(self, subscription: uuid.UUID) -> SubscriptionView:
        return await self.subscriptions.get(subscription, None)

    async def expected(self, department: str | None, *, after: int = 0, personal: bool = False) -> list[Any]:
        """The scope's events as a cursor pull reads them: what a webhook must deliver."""
        page = await self.stream.page(StreamScope(department=department, personal=personal), after, 10_000)
        return [msgspec.json.decode(body) for body in page.events]

    def worker(self, delivery: DeliveryRules, **kw: Any) -> WebhookWorker:
        return WebhookWorker(
            lambda: self.pool,
            self.stream,
            self.box,
            delivery,
            clock=now,
            listen=(self.db_url, self.schema),
            **kw,
        )

    @asynccontextmanager
    async def running(self, delivery: DeliveryRules, **kw: Any) -> AsyncIterator[WebhookWorker]:
        worker = self.worker(delivery, **kw)
        worker.start()
        try:
            yield worker
        finally:
            await worker.stop()

    async def when(
        self, subscription: uuid.UUID, test: Callable[[SubscriptionView], bool], what: str
    ) -> SubscriptionView:
        """The subscription's status once it passes `test`."""

        async def passing() -> SubscriptionView | None:
            status = await self.status(subscription)
            return status if test(status) else None

        return await eventually(passing, what)

    async def caught_up(self, subscription: uuid.UUID, delivered: int | None = None) -> SubscriptionView:
        """The status once the cursor is at the head (and `delivered` events were acknowledged, if given)."""
        return await self.when(
            subscription,
            lambda s: s.cursor == s.head and (delivered is None or s.delivered_events == delivered),
            f"caught up, {delivered} events delivered",
        )


@pytest.fixture
async def setting(
    world: World,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    db_url: str,
    schema: str,
) -> Setting:
    await catch_up(pool, recorder, mapper, EventStreamProjection())
    return Setting(pool, StreamQueries(lambda: pool, mapper.to_domain_event), db_url, schema)


async def route_new_case(
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    world: World,
) -> None:
    """One more 食品经营许可 for SCJGJ, submitted, accepted, routed and claimed, then published."""
    letter = f"N{len(world.ids)}"
    case = shared._submit(world, letter, CITIZEN_LI, at(10, 9, 8), LI, FOOD)
    secret = shared.QUERY_PASSWORDS.hash("731-N")
    case.accept(CLERK, WINDOW, at(10, 9), receipt_number=f"SL-{letter}", query_password_hash=secret)
    case.route(CLERK, WINDOW, at(10, 9, 10), assignments=[Assignment(department="SCJGJ", item_codes=(FOOD,))])
    case.claim_task(shared.officer("SCJGJ", 0), MINI, at(10, 9, 11), department="SCJGJ")
    await store.save(case)
    await catch_up(pool, recorder, mapper, EventStreamProjection())
