"""What a consumer is: a name, the topics it reads, the tables it owns, and a batch handler."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg
from eventsourcing.persistence import StoredEvent

# In production an eventsourcing Mapper's to_domain_event; injected so tests and tools can choose.
Decode = Callable[[StoredEvent], object]

# Table names are spliced into SQL, so only plain lower-case identifiers are allowed.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded event with its place in the global log."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    recorded_at: datetime
    event: object  # None for a consumer that does not decode (see Consumer)


class Consumer(Protocol):
    """Follows the log; its effects and its position are committed together by the runner.

    A Protocol, not a base class: projections/ and notifications/ may not import
    backend/, so they satisfy it by shape. `handle` receives the table suffix of
    the generation it writes ("_g2"): during a blue/green rebuild the same consumer
    fills fresh tables while the live runner still writes the old ones.

    Optionally `schema_version: int` (1 when absent): bump it whenever the tables'
    shape or what handle() writes into them changes, and the next start rebuilds
    the consumer before it serves (see schema_version() below).

    Optionally `decodes: bool` (True when absent): False for a consumer that reads
    only an envelope's place in the log, topic and time; its envelopes carry
    `event=None` and the stored state is never decoded for it.
    """

    name: str
    # None: every topic. Otherwise other topics are neither read nor decoded, but still passed.
    topics: frozenset[str] | None
    # Base names of the tables this consumer owns; readers query the views of these names.
    tables: Sequence[str]

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        """Create this consumer's physical tables, each named base + suffix."""

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        """Write the effects of these events through conn, inside the runner's transaction."""


def table_suffix(generation: int) -> str:
    return f"_g{generation}"


def tracking_name(consumer_name: str, generation: int) -> str:
    """Each generation has its own position, so a rebuild never disturbs the live one."""
    return f"{consumer_name}#g{generation}"


def schema_version(consumer: Consumer) -> int:
    """The version of its tables' shape that the consumer's code declares; 1 when it declares none."""
    version = getattr(consumer, "schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{consumer.name}: schema_version must be a positive int, not {version!r}")
    return version


def checked_tables(consumer: Consumer) -> list[str]:
    """The consumer's base table names, refusing any that is not a plain identifier."""
    names = list(consumer.tables)
    for name in names:
        if not _IDENTIFIER.match(name):
            raise ValueError(f"{consumer.name}: table name {name!r} is not a plain identifier")
    if len(set(names)) != len(names):
        raise ValueError(f"{consumer.name}: a table is listed twice: {names}")
    return names
