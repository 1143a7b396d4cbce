"""One batch transaction: the served generation held, a swap read across, a conflicting batch, the commit."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.consumers import ensure_installed, tracking_name
from backend.consumers.batch import process_batch, process_served_batch
from backend.consumers.generations import point_views, reset_position
from backend.store.errors import TrackingConflictError
from backend.store.recorder import EventRecorder
from tests.integration.consumer_support import (  # noqa: F401 (fixtures)
    NOTED,
    TicketBoard,
    mapper_fixture,
    open_tickets,
    recorder_fixture,
    seen_rows,
)

pytestmark = pytest.mark.integration


def board() -> TicketBoard:
    return TicketBoard(f"board-{uuid.uuid4().hex[:8]}")


async def position(pool: asyncpg.Pool, name: str, generation: int) -> int | None:
    value: int | None = await pool.fetchval(
        "SELECT notification_id FROM tracking WHERE application_name = $1", tracking_name(name, generation)
    )
    return value


async def blocked(task: asyncio.Task[object]) -> bool:
    """Whether the task is still waiting a moment later (on a lock, here)."""
    await asyncio.sleep(0.3)
    return not task.done()


async def test_a_swap_waits_for_the_batch_and_the_batch_read_across_a_swap_handles_nothing(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    consumer = board()
    await ensure_installed(pool, consumer)
    await open_tickets(recorder, mapper, 3)
    async with pool.acquire() as runner, pool.acquire() as swapper:
        # A batch in hand holds the served generation: a swap's FOR UPDATE waits for its commit.
        async with runner.transaction():
            batch = await process_served_batch(runner, consumer, mapper.to_domain_event, 2)
            assert batch.result is not None and batch.result.position == 2
            swap = asyncio.create_task(
                swapper.execute(
                    "SELECT 1 FROM consumer_generations WHERE consumer_name = $1 FOR UPDATE", consumer.name
                )
            )
            assert await blocked(swap)
        await swap
        # Now the swap holds the row: the next batch waits, and reads the swapped generation.
        tx = swapper.transaction()
        await tx.start()
        await consumer.create_tables(swapper, "_g2")
        await reset_position(swapper, tracking_name(consumer.name, 2))
        await point_views(swapper, consumer.tables, "_g2")
        await swapper.execute(
            "UPDATE consumer_generations SET generation = 2 WHERE consumer_name = $1", consumer.name
        )
        async with runner.transaction():
            waiting = asyncio.create_task(process_served_batch(runner, consumer, mapper.to_domain_event, 10))
            assert await blocked(waiting)
            await tx.commit()
            across = await waiting
        # Its snapshot showed generation 1 at 2, the lock generation 2: nothing was handled.
        assert (across.served.generation, across.change, across.result) == (2, None, None)
        assert await position(pool, consumer.name, 1) == 2 and await position(pool, consumer.name, 2) == 0
        async with runner.transaction():
            after = await process_served_batch(runner, consumer, mapper.to_domain_event, 10)
        assert after.result is not None and after.result.position == 3
    assert await position(pool, consumer.name, 2) == 3
    assert await seen_rows(pool, "ticket_seen_g2") == [1, 2, 3]


async def test_of_two_batches_from_one_position_only_the_first_to_commit_stands(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    # Notes only: their rows have no key, so the two handlers never wait for each other.
    consumer = TicketBoard(f"board-{uuid.uuid4().hex[:8]}", topics=frozenset({NOTED}))
    await ensure_installed(pool, consumer)
    await open_tickets(recorder, mapper, 2, notes=1)  # opened 1, noted 2, opened 3, noted 4
    async with pool.acquire() as first, pool.acquire() as second:
        tx = first.transaction()
        await tx.start()
        assert (await process_batch(first, consumer, mapper.to_domain_event, 1, 10)).position == 4

        async def the_other() -> None:
            async with second.transaction():
                await process_batch(second, consumer, mapper.to_domain_event, 1, 10)

        other = asyncio.create_task(the_other())
        assert await blocked(other)  # its position update waits for the first batch's row lock
        await tx.commit()
        with pytest.raises(TrackingConflictError):
            await other
    assert await seen_rows(pool) == [2, 4]  # handled once: the loser's effects rolled back
    assert await position(pool, consumer.name, 1) == 4


async def test_a_batch_commits_without_waiting_for_the_flush_and_only_that_transaction(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    consumer = board()
    await ensure_installed(pool, consumer)
    await open_tickets(recorder, mapper, 1)
    async with pool.acquire() as conn:
        async with conn.transaction():
            await process_served_batch(conn, consumer, mapper.to_domain_event, 10)
            assert await conn.fetchval("SHOW synchronous_commit") == "off"
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
