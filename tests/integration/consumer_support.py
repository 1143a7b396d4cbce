"""Shared pieces of the consumer and timer tests: a test aggregate, a mapper, a counting projection."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal

import asyncpg
import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic

from backend.consumers import Consumer, ConsumerRunner, Envelope
from backend.store.recorder import EventRecorder

# Called for every envelope inside the handler's transaction: the tests' way to kill or stall a batch.
Hook = Callable[[asyncpg.Connection, Envelope, str], Awaitable[None]]
StartRunner = Callable[..., ConsumerRunner]


class Ticket(Aggregate):
    @event("Opened")
    def __init__(self, title: str, fee: Decimal) -> None:
        self.title = title
        self.fee = fee
        self.notes = 0

    @event("Noted")
    def note(self, text: str) -> None:
        self.notes += 1


OPENED = get_topic(Ticket.Opened)
NOTED = get_topic(Ticket.Noted)


def make_mapper() -> Mapper[uuid.UUID]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
        transcoder.register(transcoding)
    return Mapper(transcoder)


class CountingDecoder:
    """The mapper's decode, counting calls, so tests can see which events were never decoded."""

    def __init__(self, mapper: Mapper[uuid.UUID]) -> None:
        self.mapper, self.calls = mapper, 0

    def __call__(self, stored: StoredEvent) -> object:
        self.calls += 1
        return self.mapper.to_domain_event(stored)


class TicketBoard:
    """A projection: one row per ticket, and one row per handled event with no unique key.

    ticket_seen deliberately has no primary key, so an event handled twice shows up as a duplicate.
    """

    tables = ("tickets", "ticket_seen")

    def __init__(self, name: str, *, topics: frozenset[str] | None = None, hook: Hook | None = None) -> None:
        self.name, self.topics, self.hook = name, topics, hook
        self.handled: list[Envelope] = []

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"CREATE TABLE tickets{suffix} (ticket_id uuid PRIMARY KEY, title text NOT NULL, "
            "fee numeric NOT NULL, notes integer NOT NULL DEFAULT 0)"
        )
        await conn.execute(
            f"CREATE TABLE ticket_seen{suffix} (notification_id bigint NOT NULL, ticket_id uuid NOT NULL)"
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        for envelope in envelopes:
            if self.hook is not None:
                await self.hook(conn, envelope, suffix)
            await conn.execute(
                f"INSERT INTO ticket_seen{suffix} VALUES ($1, $2)",
                envelope.notification_id,
                envelope.originator_id,
            )
            match envelope.event:
                case Ticket.Opened(title=title, fee=fee):
                    await conn.execute(
                        f"INSERT INTO tickets{suffix} (ticket_id, title, fee) VALUES ($1, $2, $3)",
                        envelope.originator_id,
                        title,
                        fee,
                    )
                case Ticket.Noted():
                    await conn.execute(
                        f"UPDATE tickets{suffix} SET notes = notes + 1 WHERE ticket_id = $1",
                        envelope.originator_id,
                    )
        self.handled.extend(envelopes)


async def open_tickets(
    recorder: EventRecorder, mapper: Mapper[uuid.UUID], count: int, *, notes: int = 0
) -> list[Ticket]:
    """Open `count` tickets (one append each), then note each `notes` times; return the aggregates."""
    tickets = [Ticket(title=f"ticket {i}", fee=Decimal(f"{i}.50")) for i in range(count)]
    for _ in range(notes):
        for ticket in tickets:
            ticket.note("more")
    for ticket in tickets:
        await recorder.append([mapper.to_stored_event(e) for e in ticket.collect_events()])
    return tickets


async def note_tickets(recorder: EventRecorder, mapper: Mapper[uuid.UUID], tickets: Sequence[Ticket]) -> None:
    for ticket in tickets:
        ticket.note("again")
        await recorder.append([mapper.to_stored_event(e) for e in ticket.collect_events()])


async def wait_for(
    check: Callable[[], Awaitable[bool]], within: float = 20.0, what: str = "condition"
) -> float:
    """Poll until check() is true; return the seconds it took. Generous: machines are noisy."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def seen_rows(pool: asyncpg.Pool, table: str = "ticket_seen") -> list[int]:
    return [r[0] for r in await pool.fetch(f"SELECT notification_id FROM {table} ORDER BY 1")]


async def head(pool: asyncpg.Pool) -> int:
    value: int = await pool.fetchval("SELECT coalesce(max(notification_id), 0) FROM stored_events")
    return value


# Fixtures, imported by the test modules that use them.


@pytest.fixture(name="recorder")
async def recorder_fixture(db_url: str, schema: str, pool: asyncpg.Pool) -> AsyncIterator[EventRecorder]:
    rec = EventRecorder(db_url, schema, pool)
    await rec.start()
    yield rec
    await rec.close()


@pytest.fixture(name="mapper")
def mapper_fixture() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture(name="start_runner")
async def start_runner_fixture(
    db_url: str, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> AsyncIterator[StartRunner]:
    """Start runners with quick test timings; every one is stopped when the test ends."""
    started: list[ConsumerRunner] = []

    def start(consumer: Consumer | Sequence[Consumer], **options: object) -> ConsumerRunner:
        options = {"poll_seconds": 0.2, "retry_seconds": 0.1, "min_backoff": 0.05, **options}
        decode = options.pop("decode", mapper.to_domain_event)
        runner = ConsumerRunner(db_url, recorder, consumer, decode, **options)  # type: ignore[arg-type]
        runner.start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        await runner.stop(grace_seconds=5)
