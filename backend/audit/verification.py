"""Chain verification for auditors: backend/store/hashchain.py's walk, with the first altered event named.

The walk knows rows; an auditor knows cases. So the first broken link is named by its
position, its aggregate, its version and type, and, when the aggregate is a case, its
办件编号 as the case's submission records it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import UUID

import asyncpg
from eventsourcing.persistence import Mapper

from backend.audit.naming import event_type
from backend.audit.stored import case_of
from backend.store.hashchain import BrokenLink, ChainReport, verify_aggregate, verify_store


@dataclass(frozen=True, slots=True)
class BrokenEvent:
    position: int
    aggregate_id: UUID
    case_id: UUID | None  # the aggregate's id when it is a case
    case_number: str | None
    version: int
    type: str | None  # None only if the row went between the walk and this lookup
    reason: str


@dataclass(frozen=True, slots=True)
class ChainHead:
    version: int
    hash: str  # hex: compare with the last line of the case in an export


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    scope: str  # "case" or "store"
    ok: bool
    events_checked: int
    aggregates_checked: int
    first_broken: BrokenEvent | None
    case_id: UUID | None = None
    case_number: str | None = None
    head: ChainHead | None = None  # a case's last event, as stored


async def verify_case_chain(
    pool: asyncpg.Pool, mapper: Mapper[UUID], case_id: UUID, number: str | None
) -> ChainVerdict:
    async with pool.acquire() as conn:
        report = await verify_aggregate(conn, case_id)
        head = await conn.fetchrow(
            "SELECT originator_version, hash FROM stored_events WHERE originator_id = $1 "
            "ORDER BY originator_version DESC LIMIT 1",
            case_id,
        )
    return replace(
        await _verdict(pool, mapper, "case", report),
        case_id=case_id,
        case_number=number,
        head=None if head is None else ChainHead(head[0], bytes(head[1]).hex()),
    )


async def verify_whole_store(pool: asyncpg.Pool, mapper: Mapper[UUID]) -> ChainVerdict:
    async with pool.acquire() as conn:
        report = await verify_store(conn)
    return await _verdict(pool, mapper, "store", report)


async def _verdict(pool: asyncpg.Pool, mapper: Mapper[UUID], scope: str, report: ChainReport) -> ChainVerdict:
    broken = None if report.first_broken is None else await _named(pool, mapper, report.first_broken)
    return ChainVerdict(
        scope=scope,
        ok=report.ok,
        events_checked=report.events_checked,
        aggregates_checked=report.aggregates_checked,
        first_broken=broken,
    )


async def _named(pool: asyncpg.Pool, mapper: Mapper[UUID], link: BrokenLink) -> BrokenEvent:
    topic = await pool.fetchval(
        "SELECT topic FROM stored_events WHERE notification_id = $1", link.notification_id
    )
    is_case, number = await case_of(pool, mapper, link.originator_id)
    return BrokenEvent(
        position=link.notification_id,
        aggregate_id=link.originator_id,
        case_id=link.originator_id if is_case else None,
        case_number=number,
        version=link.originator_version,
        type=None if topic is None else event_type(topic),
        reason=link.reason,
    )
