"""What the service tests share: a clock moved by hand, and a consumer brought up to the head of the log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from eventsourcing.persistence import Mapper

from backend.consumers import ensure_installed
from backend.consumers.batch import process_batch
from backend.consumers.generations import active_generation


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def catch_up(pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], *consumers: Any) -> None:
    """Run each consumer in this process until it has handled every event, as its runner would."""
    for consumer in consumers:
        await ensure_installed(pool, consumer)
        async with pool.acquire() as conn:
            generation = await active_generation(conn, consumer.name)
            while True:
                async with conn.transaction():
                    done = await process_batch(conn, consumer, mapper.to_domain_event, generation, 500)
                if done.caught_up:
                    break
