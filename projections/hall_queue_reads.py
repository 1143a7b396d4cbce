"""The query side of the hall queue: the hall screen, one ticket, a citizen's tickets of the day.

Reads the views of projections.hall_queue. `ticket_status` builds the same view of a
ticket from the aggregate itself, for a command's answer: a visitor who has just
taken a ticket sees it at once, before the read model has caught up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from uuid import UUID

import asyncpg
import msgspec

from domain.hall_queue import BEIJING, NEAR_TURN_AHEAD, HallQueue, TicketState, estimated_wait, queue_id
from projections.catalogue import PoolSource

# How many of a queue's latest service times the estimate averages.
RECENT_SERVICES = 10
# How many of each line's next tickets the hall screen shows.
SHOWN_NEXT = 5

Clock = Callable[[], datetime]


class TicketStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A ticket as its holder sees it; `name` is masked (张*)."""

    hall: str
    day: date
    ticket: str
    queue: str
    queue_name: str
    state: str
    window: str | None
    calls: int
    booked: bool
    appointment_id: UUID | None
    name: str | None
    ahead: int | None  # while waiting: tickets before it in its line
    estimated_wait_seconds: float | None  # None when not waiting, or no window serves the queue
    near_turn: bool  # DOMAIN.md: "your turn is near" at 3 ahead
    issued_at: datetime
    called_at: datetime | None
    served_at: datetime | None


class WindowStatus(msgspec.Struct, frozen=True, kw_only=True):
    hall: str
    day: date
    window: str
    open: bool
    changed: bool  # False: it already was open (or closed), and nothing was recorded
    ticket: str | None  # in hand


class CallView(msgspec.Struct, frozen=True, kw_only=True):
    window: str
    ticket: str
    name: str | None
    called_at: datetime  # the latest call: a recall is announced again


class NextTicket(msgspec.Struct, frozen=True, kw_only=True):
    ticket: str
    name: str | None
    booked: bool


class LineView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    prefix: str
    waiting: int
    active_windows: int
    next: tuple[NextTicket, ...]
    estimated_wait_seconds: float | None  # for a ticket taken now


class HallDisplay(msgspec.Struct, frozen=True, kw_only=True):
    hall: str
    day: date
    version: int  # grows with every event of the day; 0 before the day's first
    calls: tuple[CallView, ...]
    lines: tuple[LineView, ...]


def ticket_status(queue: HallQueue, ticket: str) -> TicketStatus:
    """The ticket as the aggregate has it now, computed as the read model would."""
    t = queue.ticket(ticket)
    ahead = wait = None
    if t.state is TicketState.WAITING:
        ahead = queue.ahead(ticket)
        recent = queue.recent_service_seconds(t.queue, RECENT_SERVICES)
        wait = estimated_wait(ahead, recent, queue.active_windows(t.queue))
    return TicketStatus(
        hall=queue.hall, day=queue.day, ticket=t.ticket, queue=t.queue, queue_name=queue.queues[t.queue].name,
        state=t.state.value, window=t.window, calls=t.calls, booked=t.booked, appointment_id=t.appointment_id,
        name=t.display_name, ahead=ahead, estimated_wait_seconds=wait,
        near_turn=ahead is not None and ahead <= NEAR_TURN_AHEAD, issued_at=t.issued_at,
        called_at=t.called_at, served_at=t.served_at,
    )  # fmt: skip


def window_status(queue: HallQueue, window: str, changed: bool) -> WindowStatus:
    return WindowStatus(
        hall=queue.hall, day=queue.day, window=window, open=window in queue.open_windows, changed=changed,
        ticket=queue.in_hand(window),
    )  # fmt: skip


_TICKET = (
    "SELECT d.hall, d.day, t.ticket, t.queue, l.name AS queue_name, t.state, t.win, t.calls, t.booked, "
    "t.appointment_id, t.name, t.ahead, t.estimated_wait, t.issued_at, t.called_at, t.served_at "
    "FROM hall_queue_tickets t JOIN hall_queue_days d USING (queue_id) "
    "JOIN hall_queue_lines l ON l.queue_id = t.queue_id AND l.code = t.queue "
)


def _local(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(BEIJING)


def _status(row: asyncpg.Record) -> TicketStatus:
    ahead = row["ahead"]
    return TicketStatus(
        hall=row["hall"], day=row["day"], ticket=row["ticket"], queue=row["queue"],
        queue_name=row["queue_name"], state=row["state"], window=row["win"], calls=row["calls"],
        booked=row["booked"], appointment_id=row["appointment_id"], name=row["name"], ahead=ahead,
        estimated_wait_seconds=row["estimated_wait"],
        near_turn=ahead is not None and ahead <= NEAR_TURN_AHEAD,
        issued_at=row["issued_at"].astimezone(BEIJING), called_at=_local(row["called_at"]),
        served_at=_local(row["served_at"]),
    )  # fmt: skip


class HallQueueQueries:
    def __init__(self, pool: PoolSource, clock: Clock) -> None:
        self._pool, self.clock = pool, clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    def today(self) -> date:
        """The Beijing day, which is the queue's day: a hall's queue starts afresh each morning."""
        return self.clock().astimezone(BEIJING).date()

    async def version(self, hall: str, day: date) -> int:
        """One primary-key probe: cheap enough for every stream to poll twice a second."""
        found = await self.pool.fetchval(
            "SELECT version FROM hall_queue_days WHERE queue_id = $1", queue_id(hall, day)
        )
        return int(found or 0)

    async def display(self, hall: str, day: date) -> HallDisplay:
        """What the hall screen shows: the tickets in hand at each window, each line's next and its wait."""
        q = queue_id(hall, day)
        async with self.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
            # One snapshot, so the version matches what the rest of the answer shows.
            version = await conn.fetchval("SELECT version FROM hall_queue_days WHERE queue_id = $1", q)
            calls = await conn.fetch(
                "SELECT w.win, t.ticket, t.name, t.last_called_at FROM hall_queue_windows w "
                "JOIN hall_queue_tickets t ON t.queue_id = w.queue_id AND t.ticket = w.ticket "
                "WHERE w.queue_id = $1 ORDER BY w.ord",
                q,
            )
            lines = await conn.fetch(
                "SELECT code, name, prefix, waiting, active_windows, new_ticket_wait FROM hall_queue_lines "
                "WHERE queue_id = $1 ORDER BY ord",
                q,
            )
            upcoming = await conn.fetch(
                "SELECT queue, ticket, name, booked FROM hall_queue_tickets "
                "WHERE queue_id = $1 AND state = 'waiting' AND ahead < $2 ORDER BY queue, ahead",
                q, SHOWN_NEXT,
            )  # fmt: skip
        following: dict[str, list[NextTicket]] = {}
        for r in upcoming:
            following.setdefault(r["queue"], []).append(
                NextTicket(ticket=r["ticket"], name=r["name"], booked=r["booked"])
            )
        return HallDisplay(
            hall=hall,
            day=day,
            version=int(version or 0),
            calls=tuple(
                CallView(
                    window=r["win"],
                    ticket=r["ticket"],
                    name=r["name"],
                    called_at=r["last_called_at"].astimezone(BEIJING),
                )
                for r in calls
            ),
            lines=tuple(
                LineView(
                    code=r["code"],
                    name=r["name"],
                    prefix=r["prefix"],
                    waiting=r["waiting"],
                    active_windows=r["active_windows"],
                    next=tuple(following.get(r["code"], ())),
                    estimated_wait_seconds=r["new_ticket_wait"],
                )
                for r in lines
            ),
        )

    async def ticket(self, hall: str, day: date, ticket: str) -> TicketStatus | None:
        row = await self.pool.fetchrow(
            _TICKET + "WHERE t.queue_id = $1 AND t.ticket = $2", queue_id(hall, day), ticket
        )
        return None if row is None else _status(row)

    async def my_tickets(self, subject: str, day: date) -> list[TicketStatus]:
        """The tickets taken for this account on that day, in any hall, in the order they were issued."""
        rows = await self.pool.fetch(
            _TICKET + "WHERE t.subject = $1 AND t.day = $2 ORDER BY t.issued_at, t.ticket", subject, day
        )
        return [_status(r) for r in rows]
