"""Leader election by PostgreSQL session advisory locks: one leader per consumer across processes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import asyncpg

_LOW_32 = 0xFFFFFFFF


def advisory_key(schema: str, name: str, purpose: str = "leader") -> int:
    """A stable signed 64-bit key; the schema is part of it so schemas never share a leader."""
    digest = hashlib.blake2b(f"{schema}\0{purpose}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def try_lead(conn: asyncpg.Connection, schema: str, name: str) -> bool:
    """Take the consumer's leader lock on this session if nobody holds it.

    A session lock, not a transaction lock: it lives exactly as long as the
    connection, so a dead process or a terminated backend frees it by itself.
    """
    taken: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1)", advisory_key(schema, name))
    return taken


async def release_lead(conn: asyncpg.Connection, schema: str, name: str) -> None:
    """Give up the consumer's leader lock while keeping the session."""
    await conn.execute("SELECT pg_advisory_unlock($1)", advisory_key(schema, name))


async def leader_pids(conn: asyncpg.Connection, schema: str, names: Iterable[str]) -> dict[str, int]:
    """For each consumer whose leader lock is held, the backend pid holding it."""
    rows = await conn.fetch(
        "SELECT classid::bigint, objid::bigint, pid FROM pg_locks "
        "WHERE locktype = 'advisory' AND objsubid = 1 AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    # pg_locks shows a bigint key as two unsigned halves: classid (high) and objid (low).
    held = {(r[0], r[1]): r[2] for r in rows}
    found: dict[str, int] = {}
    for name in names:
        key = advisory_key(schema, name)
        pid = held.get(((key >> 32) & _LOW_32, key & _LOW_32))
        if pid is not None:
            found[name] = pid
    return found
