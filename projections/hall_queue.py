"""The hall's queues as the screen and the mini-program show them: a read model of the HallQueue events.

Rows per hall-day: its tickets, its windows and one line per queue. After each batch
every touched hall-day is recomputed whole: each waiting ticket's place (`ahead`)
and estimated wait, and each line's count and estimate for a new ticket. A day has
hundreds of tickets at most, so recomputing beats tracking what each event moved,
and it orders the line with the domain's own `line_key`, so the screen cannot
disagree with the windows about who is next. Names are stored masked (张*) only.
The queries are in projections.hall_queue_reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic

from domain.hall_queue import HallQueue, TicketView, estimated_wait, line_key
from projections.hall_queue_reads import RECENT_SERVICES

_EVENTS = (
    HallQueue.Opened, HallQueue.TicketIssued, HallQueue.Called, HallQueue.Missed, HallQueue.Served,
    HallQueue.Transferred, HallQueue.WindowOpened, HallQueue.WindowClosed,
)  # fmt: skip
HALL_QUEUE_TOPICS = frozenset(get_topic(cls) for cls in _EVENTS)


class HallQueueProjection:
    """Consumer of hall-queue events (the runner's Consumer protocol, by shape)."""

    name: str = "hall_queue"
    topics: frozenset[str] | None = HALL_QUEUE_TOPICS
    tables: Sequence[str] = (
        "hall_queue_days",
        "hall_queue_lines",
        "hall_queue_windows",
        "hall_queue_tickets",
    )

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS hall_queue_days{suffix} (
                queue_id   uuid PRIMARY KEY,
                hall       text NOT NULL,
                day        date NOT NULL,
                version    integer NOT NULL,  -- the aggregate's: grows with every event of the day
                updated_at timestamptz NOT NULL
            );
            CREATE TABLE IF NOT EXISTS hall_queue_lines{suffix} (
                queue_id        uuid NOT NULL,
                code            text NOT NULL,
                name            text NOT NULL,
                prefix          text NOT NULL,
                ord             integer NOT NULL,
                waiting         integer NOT NULL DEFAULT 0,
                active_windows  integer NOT NULL DEFAULT 0,
                new_ticket_wait double precision,  -- seconds a ticket taken now would wait
                PRIMARY KEY (queue_id, code)
            );
            CREATE TABLE IF NOT EXISTS hall_queue_windows{suffix} (
                queue_id uuid NOT NULL,
                win      text NOT NULL,
                ord      integer NOT NULL,
                queues   text[] NOT NULL,
                open     boolean NOT NULL DEFAULT false,
                ticket   text,  -- in hand
                PRIMARY KEY (queue_id, win)
            );
            CREATE TABLE IF NOT EXISTS hall_queue_tickets{suffix} (
                queue_id        uuid NOT NULL,
                ticket          text NOT NULL,
                hall            text NOT NULL,
                day             date NOT NULL,
                queue           text NOT NULL,
                state           text NOT NULL,
                win             text,
                calls           integer NOT NULL DEFAULT 0,
                booked          boolean NOT NULL,
                appointment_id  uuid,
                slot_start      timestamptz,
                name            text,  -- masked: 张*
                subject         text,
                issued_at       timestamptz NOT NULL,
                called_at       timestamptz,
                last_called_at  timestamptz,
                served_at       timestamptz,
                service_seconds double precision,
                served_seq      integer,  -- the Served event's version, so "recent" means the log's order
                joined          integer NOT NULL,  -- the check-in's or transfer's version: a tie-break
                transferred     boolean NOT NULL DEFAULT false,
                ahead           integer,
                estimated_wait  double precision,
                PRIMARY KEY (queue_id, ticket)
            );
            CREATE INDEX IF NOT EXISTS hall_queue_tickets_mine{suffix}
                ON hall_queue_tickets{suffix} (subject, day) WHERE subject IS NOT NULL;
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        touched: dict[UUID, Any] = {}
        for envelope in envelopes:
            if isinstance(envelope.event, HallQueue.Event):
                await _apply(
                    conn, suffix, envelope.originator_id, envelope.originator_version, envelope.event
                )
                touched[envelope.originator_id] = envelope
        for queue_id, last in touched.items():
            await conn.execute(
                f"UPDATE hall_queue_days{suffix} SET version = $2, updated_at = $3 WHERE queue_id = $1",
                queue_id, last.originator_version, last.event.timestamp,
            )  # fmt: skip
            await _recompute(conn, suffix, queue_id)


async def _apply(conn: asyncpg.Connection, s: str, q: UUID, version: int, event: Any) -> None:
    tickets = f"UPDATE hall_queue_tickets{s} SET "
    match event:
        case HallQueue.Opened():
            await conn.execute(
                f"INSERT INTO hall_queue_days{s} VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                q, event.hall, event.day, version, event.timestamp,
            )  # fmt: skip
            await conn.executemany(
                f"INSERT INTO hall_queue_lines{s} (queue_id, code, name, prefix, ord) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                [(q, spec.code, spec.name, spec.prefix, n) for n, spec in enumerate(event.queues)],
            )
            await conn.executemany(
                f"INSERT INTO hall_queue_windows{s} (queue_id, win, ord, queues) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                [(q, spec.code, n, list(spec.queues)) for n, spec in enumerate(event.windows)],
            )
        case HallQueue.TicketIssued():
            await conn.execute(
                f"INSERT INTO hall_queue_tickets{s} (queue_id, ticket, hall, day, queue, state, booked, "
                "appointment_id, slot_start, name, subject, issued_at, joined) "
                "SELECT $1, $2, hall, day, $3, 'waiting', $4, $5, $6, $7, $8, $9, $10 "
                f"FROM hall_queue_days{s} WHERE queue_id = $1 ON CONFLICT DO NOTHING",
                q, event.ticket, event.queue, event.booked, event.appointment_id, event.slot_start,
                None if event.name is None else _masked(event), event.subject, event.timestamp, version,
            )  # fmt: skip
        case HallQueue.Called():
            await conn.execute(
                tickets + "state = 'called', win = $3, calls = $4, called_at = COALESCE(called_at, $5), "
                "last_called_at = $5 WHERE queue_id = $1 AND ticket = $2",
                q, event.ticket, event.window, event.calls, event.timestamp,
            )  # fmt: skip
            await _in_hand(conn, s, q, event.window, event.ticket)
        case HallQueue.Missed():
            await conn.execute(
                tickets + "state = 'missed' WHERE queue_id = $1 AND ticket = $2", q, event.ticket
            )
            await _in_hand(conn, s, q, event.window, None)
        case HallQueue.Served():
            await conn.execute(
                tickets + "state = 'served', served_at = $3, service_seconds = $4, served_seq = $5 "
                "WHERE queue_id = $1 AND ticket = $2",
                q, event.ticket, event.served_at, event.service_seconds, version,
            )  # fmt: skip
            await _in_hand(conn, s, q, event.window, None)
        case HallQueue.Transferred():
            await conn.execute(
                tickets + "queue = $3, state = 'waiting', win = NULL, calls = 0, joined = $4, "
                "transferred = true WHERE queue_id = $1 AND ticket = $2",
                q, event.ticket, event.to_queue, version,
            )  # fmt: skip
            await _in_hand(conn, s, q, event.window, None)
        case HallQueue.WindowOpened() | HallQueue.WindowClosed():
            await conn.execute(
                f"UPDATE hall_queue_windows{s} SET open = $3 WHERE queue_id = $1 AND win = $2",
                q, event.window, isinstance(event, HallQueue.WindowOpened),
            )  # fmt: skip


def _masked(event: HallQueue.TicketIssued) -> str | None:
    # The same masking the hall screen applies to the aggregate's view: the whole name never lands here.
    return TicketView(
        ticket=event.ticket, queue=event.queue, booked=event.booked, appointment_id=None, slot_start=None,
        subject=None, case_id=None, name=event.name, issued_at=event.timestamp, joined=0,
    ).display_name  # fmt: skip


async def _in_hand(conn: asyncpg.Connection, s: str, q: UUID, window: str, ticket: str | None) -> None:
    await conn.execute(
        f"UPDATE hall_queue_windows{s} SET ticket = $3 WHERE queue_id = $1 AND win = $2", q, window, ticket
    )


async def _recompute(conn: asyncpg.Connection, s: str, q: UUID) -> None:
    """Every waiting ticket's place and wait, and every line's summary, from the rows as they now stand."""
    waiting = await conn.fetch(
        "SELECT ticket, queue, booked, slot_start, issued_at, joined, transferred "
        f"FROM hall_queue_tickets{s} WHERE queue_id = $1 AND state = 'waiting'",
        q,
    )
    served = await conn.fetch(
        f"SELECT queue, service_seconds FROM (SELECT queue, service_seconds, served_seq, row_number() OVER "
        f"(PARTITION BY queue ORDER BY served_seq DESC) AS n FROM hall_queue_tickets{s} "
        "WHERE queue_id = $1 AND state = 'served') r WHERE n <= $2 ORDER BY served_seq",
        q, RECENT_SERVICES,
    )  # fmt: skip
    windows = await conn.fetch(f"SELECT queues FROM hall_queue_windows{s} WHERE queue_id = $1 AND open", q)
    codes = [
        r["code"] for r in await conn.fetch(f"SELECT code FROM hall_queue_lines{s} WHERE queue_id = $1", q)
    ]
    recent: dict[str, list[float]] = defaultdict(list)
    for row in served:
        recent[row["queue"]].append(row["service_seconds"])
    lines: dict[str, list[TicketView]] = defaultdict(list)
    for row in waiting:
        lines[row["queue"]].append(
            TicketView(
                ticket=row["ticket"], queue=row["queue"], booked=row["booked"], appointment_id=None,
                slot_start=row["slot_start"], subject=None, case_id=None, name=None,
                issued_at=row["issued_at"], joined=row["joined"], transferred=row["transferred"],
            )
        )  # fmt: skip
    if not codes:
        return  # no Opened seen for this day: nothing to place tickets in
    places: list[tuple[str, int, float | None]] = []
    summaries: list[tuple[str, int, int, float | None]] = []
    for code in codes:
        active = sum(1 for w in windows if code in w["queues"])
        line = sorted(lines[code], key=line_key)
        for ahead, t in enumerate(line):
            places.append((t.ticket, ahead, estimated_wait(ahead, recent[code], active)))
        summaries.append((code, len(line), active, estimated_wait(len(line), recent[code], active)))
    await conn.execute(
        f"UPDATE hall_queue_tickets{s} SET ahead = NULL, estimated_wait = NULL "
        "WHERE queue_id = $1 AND state <> 'waiting' AND ahead IS NOT NULL",
        q,
    )
    await conn.execute(
        f"UPDATE hall_queue_tickets{s} t SET ahead = p.ahead, estimated_wait = p.wait "
        "FROM unnest($2::text[], $3::int[], $4::float8[]) AS p(ticket, ahead, wait) "
        "WHERE t.queue_id = $1 AND t.ticket = p.ticket",
        q, [p[0] for p in places], [p[1] for p in places], [p[2] for p in places],
    )  # fmt: skip
    await conn.execute(
        f"UPDATE hall_queue_lines{s} l SET waiting = p.waiting, active_windows = p.active, "
        "new_ticket_wait = p.wait FROM unnest($2::text[], $3::int[], $4::int[], $5::float8[]) "
        "AS p(code, waiting, active, wait) WHERE l.queue_id = $1 AND l.code = p.code",
        q, *(list(col) for col in zip(*summaries, strict=True)),
    )  # fmt: skip
