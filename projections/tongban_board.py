"""通办 per partner city: one row per handoff, sent or received, with when each step happened.

The dashboard (projections.tongban_board_reads) is computed from these rows at query
time, so a rebuild from the log gives identical figures. A row is keyed by its handoff,
not its case: a case the partner refused may be handed to another city, and the
refusal stays on the first partner's row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic

from domain.case import Case

_EVENTS = (
    Case.HandedOff,
    Case.HandoffAccepted,
    Case.HandoffRefused,
    Case.ReceivedFromPartner,
    Case.Concluded,  # every case's: only those with an open handoff row change anything
    Case.PartnerDecided,  # 多地联办: one city's part decided
    Case.PaperMaterialsPosted,
    Case.PaperMaterialsArchived,
)
TONGBAN_TOPICS = frozenset(get_topic(cls) for cls in _EVENTS)


class TongbanBoardProjection:
    """Consumer of the 通办 events of cases (the runner's Consumer protocol, by shape)."""

    name: str = "tongban_board"
    topics: frozenset[str] | None = TONGBAN_TOPICS
    tables: Sequence[str] = ("tongban_handoffs",)
    schema_version = 3  # 2: when the paper originals were posted and archived; 3: 多地联办 per city

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS tongban_handoffs{suffix} (
                handoff        uuid        NOT NULL,
                direction      text        NOT NULL,   -- sent (we handed off), received (from a partner)
                case_id        uuid        NOT NULL,
                partner        text        NOT NULL,   -- the other city's 6-digit region code
                mode           text        NOT NULL,
                handed_off_at  timestamptz NOT NULL,   -- sent: HandedOff; received: ReceivedFromPartner
                accepted_at    timestamptz,            -- sent only: the partner took it on
                refused_at     timestamptz,            -- sent only: the partner sent it back
                concluded_at   timestamptz,
                result         text,                   -- a ResultCode value once concluded
                paper_posted_at   timestamptz,         -- 异地代收代办: the paper originals left the 收件地
                paper_archived_at timestamptz,         -- and are in the 办理地's archive
                PRIMARY KEY (handoff, direction)
            );
            CREATE INDEX IF NOT EXISTS tongban_handoffs_case{suffix} ON tongban_handoffs{suffix} (case_id);
            CREATE INDEX IF NOT EXISTS tongban_handoffs_partner{suffix}
                ON tongban_handoffs{suffix} (partner, handed_off_at);
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        for envelope in envelopes:
            await _apply(conn, f"tongban_handoffs{suffix}", envelope.originator_id, envelope.event)


async def _apply(conn: asyncpg.Connection, table: str, case_id: UUID, event: Any) -> None:
    match event:
        case Case.HandedOff() | Case.ReceivedFromPartner():
            direction = "sent" if isinstance(event, Case.HandedOff) else "received"
            await conn.execute(
                f"INSERT INTO {table} (handoff, direction, case_id, partner, mode, handed_off_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                event.handoff,
                direction,
                case_id,
                event.partner,
                event.mode,
                event.timestamp,
            )
        # The partner's own row: a 多地联办 case has one per city.
        case Case.HandoffAccepted():
            await conn.execute(
                f"UPDATE {table} SET accepted_at = $2 WHERE case_id = $1 AND direction = 'sent' "
                "AND partner = $3 AND refused_at IS NULL AND concluded_at IS NULL",
                case_id,
                event.timestamp,
                event.actor.id,
            )
        case Case.HandoffRefused():
            await conn.execute(
                f"UPDATE {table} SET refused_at = $2 WHERE case_id = $1 AND direction = 'sent' "
                "AND partner = $3 AND refused_at IS NULL AND concluded_at IS NULL",
                case_id,
                event.timestamp,
                event.actor.id,
            )
        case Case.PartnerDecided():
            await conn.execute(
                f"UPDATE {table} SET concluded_at = $2, result = $3 WHERE case_id = $1 "
                "AND direction = 'sent' AND partner = $4 AND refused_at IS NULL AND concluded_at IS NULL",
                case_id,
                event.timestamp,
                event.result.value,
                event.actor.id,
            )
        case Case.PaperMaterialsPosted() | Case.PaperMaterialsArchived():
            column = (
                "paper_posted_at" if isinstance(event, Case.PaperMaterialsPosted) else "paper_archived_at"
            )
            # The handoff the case is on: the one not refused (a case is with one partner at a time).
            await conn.execute(
                f"UPDATE {table} SET {column} = $2 WHERE case_id = $1 AND refused_at IS NULL "
                f"AND {column} IS NULL",
                case_id,
                event.timestamp,
            )
        case Case.Concluded():
            # Only an open handoff is decided: a case refused, then concluded here, is not the partner's.
            await conn.execute(
                f"UPDATE {table} SET concluded_at = $2, result = $3 WHERE case_id = $1 "
                "AND refused_at IS NULL AND concluded_at IS NULL",
                case_id,
                event.timestamp,
                event.result.value,
            )
