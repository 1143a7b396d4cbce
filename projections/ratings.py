"""好差评 as people see it: each occasion and its answer, each 差评工单, and what the boards are made of.

Who rated is kept only to show citizens their own occasions; the staff's and the
public's queries never select it. A comment is stored with any ID or mobile number in
it masked, since officers read it. The figures (boards, national metrics) are computed
by domain.rating.metrics over these rows, so a rebuild from the log gives identical
figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from eventsourcing.utils import get_topic

from domain.case.checks import BEIJING
from domain.personal import scrub
from domain.rating import Rating, RectificationTicket
from domain.rating.metrics import RatingFact, TicketFact

_EVENTS = (
    Rating.Invited,
    Rating.Reminded,
    Rating.Rated,
    Rating.Defaulted,
    Rating.Excluded,
    RectificationTicket.Opened,
    RectificationTicket.CallbackRecorded,
    RectificationTicket.Resolved,
    RectificationTicket.Appealed,
    RectificationTicket.AppealDecided,
    RectificationTicket.CallbackRated,
    RectificationTicket.Overdue,
)
RATING_TOPICS = frozenset(get_topic(cls) for cls in _EVENTS)


class RatingProjection:
    """Consumer of rating and ticket events (the runner's Consumer protocol, by shape)."""

    name: str = "ratings"
    topics: frozenset[str] | None = RATING_TOPICS
    tables: Sequence[str] = ("rating_occasions", "rating_tickets")

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS rating_occasions{suffix} (
                rating_id   uuid PRIMARY KEY,
                channel     text NOT NULL,          -- online (一事一评), offline (一次一评)
                department  text NOT NULL,
                item_code   text NOT NULL,
                case_id     uuid,
                case_number text,
                hall        text,
                window_code text,
                clerk       text,
                applicant   text NOT NULL,          -- only ever read for the applicant's own list
                invited_at  timestamptz NOT NULL,
                closes_on   date NOT NULL,
                reminded    boolean NOT NULL DEFAULT false,
                level       integer,                -- NULL while unrated
                is_default  boolean NOT NULL DEFAULT false,
                indicators  jsonb,
                comment     text,                   -- masked
                rated_on    date,
                excluded    boolean NOT NULL DEFAULT false
            );
            CREATE INDEX IF NOT EXISTS rating_occasions_applicant{suffix}
                ON rating_occasions{suffix} (applicant, invited_at DESC);
            CREATE INDEX IF NOT EXISTS rating_occasions_rated{suffix}
                ON rating_occasions{suffix} (rated_on) WHERE level IS NOT NULL;
            CREATE TABLE IF NOT EXISTS rating_tickets{suffix} (
                ticket_id          uuid PRIMARY KEY,
                rating_id          uuid NOT NULL,
                unit               text NOT NULL,
                level              integer NOT NULL,
                comment            text NOT NULL,   -- masked
                case_id            uuid,
                item_code          text NOT NULL,
                due                date NOT NULL,
                state              text NOT NULL,
                callbacks          integer NOT NULL DEFAULT 0,
                called_back        boolean NOT NULL DEFAULT false,
                callback_satisfied boolean,
                overdue            boolean NOT NULL DEFAULT false,
                resolution         text,
                opened_at          timestamptz NOT NULL,
                closed_at          timestamptz
            );
            CREATE INDEX IF NOT EXISTS rating_tickets_unit{suffix}
                ON rating_tickets{suffix} (unit, state, due);
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        for envelope in envelopes:
            await _apply(conn, suffix, envelope.originator_id, envelope.event)


async def _apply(conn: asyncpg.Connection, s: str, origin: UUID, event: Any) -> None:
    occasions, tickets = f"rating_occasions{s}", f"rating_tickets{s}"
    at: datetime = event.timestamp
    match event:
        case Rating.Invited(occasion=o):
            await conn.execute(
                f"INSERT INTO {occasions} (rating_id, channel, department, item_code, case_id, case_number, "
                "hall, window_code, clerk, applicant, invited_at, closes_on) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
                origin,
                o.channel.value,
                o.department,
                o.item_code,
                o.case_id,
                o.case_number,
                o.hall,
                o.window,
                o.clerk,
                event.applicant,
                at,
                event.closes_on,
            )
        case Rating.Reminded():
            await conn.execute(f"UPDATE {occasions} SET reminded = true WHERE rating_id = $1", origin)
        case Rating.Rated(answer=a) | Rating.Defaulted(answer=a):
            await conn.execute(
                f"UPDATE {occasions} SET level = $2, is_default = $3, indicators = $4::jsonb, comment = $5, "
                "rated_on = $6 WHERE rating_id = $1",
                origin,
                int(a.level),
                a.is_default,
                msgspec.json.encode(a.indicators).decode(),
                None if a.comment is None else scrub(a.comment),
                at.astimezone(BEIJING).date(),
            )
        case Rating.Excluded():
            await conn.execute(f"UPDATE {occasions} SET excluded = true WHERE rating_id = $1", origin)
        case RectificationTicket.Opened():
            await conn.execute(
                f"INSERT INTO {tickets} (ticket_id, rating_id, unit, level, comment, case_id, item_code, "
                "due, state, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9) "
                "ON CONFLICT DO NOTHING",
                origin,
                event.rating_id,
                event.unit,
                event.level,
                scrub(event.comment),
                event.case_id,
                event.item_code,
                event.due,
                at,
            )
        case RectificationTicket.CallbackRecorded(callback=c):
            await conn.execute(
                f"UPDATE {tickets} SET callbacks = callbacks + 1, called_back = called_back OR $2 "
                "WHERE ticket_id = $1",
                origin,
                c.reached,
            )
        case RectificationTicket.Resolved():
            await conn.execute(
                f"UPDATE {tickets} SET state = $2, resolution = $3, closed_at = $4 WHERE ticket_id = $1",
                origin,
                event.outcome.value,
                scrub(event.note),
                at,
            )
        case RectificationTicket.Appealed():
            await conn.execute(f"UPDATE {tickets} SET state = 'appealed' WHERE ticket_id = $1", origin)
        case RectificationTicket.AppealDecided():
            state, closed = ("excluded", at) if event.upheld else ("open", None)
            await conn.execute(
                f"UPDATE {tickets} SET state = $2, closed_at = $3 WHERE ticket_id = $1", origin, state, closed
            )
        case RectificationTicket.CallbackRated():
            await conn.execute(
                f"UPDATE {tickets} SET callback_satisfied = $2 WHERE ticket_id = $1", origin, event.satisfied
            )
        case RectificationTicket.Overdue():
            await conn.execute(f"UPDATE {tickets} SET overdue = true WHERE ticket_id = $1", origin)


# Facts for domain.rating.metrics: every rated occasion and every ticket in a date range.


async def rating_facts(conn: asyncpg.Connection, since: date, until: date) -> list[RatingFact]:
    rows = await conn.fetch(
        "SELECT level, is_default, channel, department, item_code, hall, window_code, clerk, rated_on, "
        "excluded FROM rating_occasions WHERE level IS NOT NULL AND rated_on BETWEEN $1 AND $2",
        since,
        until,
    )
    return [
        RatingFact(
            level=r["level"],
            is_default=r["is_default"],
            channel=r["channel"],
            department=r["department"],
            item_code=r["item_code"],
            hall=r["hall"],
            window=r["window_code"],
            clerk=r["clerk"],
            rated_on=r["rated_on"],
            excluded=r["excluded"],
        )
        for r in rows
    ]


async def ticket_facts(conn: asyncpg.Connection, since: date, until: date) -> list[TicketFact]:
    rows = await conn.fetch(
        "SELECT unit, state, called_back, callback_satisfied, opened_at, overdue FROM rating_tickets "
        "WHERE (opened_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN $1 AND $2",
        since,
        until,
    )
    outcomes = {"rectified": "rectified", "explained": "explained", "excluded": "excluded"}
    return [
        TicketFact(
            department=r["unit"],
            outcome=outcomes.get(r["state"]),
            callback_done=r["called_back"],
            callback_satisfied=r["callback_satisfied"] if r["called_back"] else None,
            opened_on=r["opened_at"].astimezone(BEIJING).date(),
            overdue=r["overdue"],
        )
        for r in rows
    ]
