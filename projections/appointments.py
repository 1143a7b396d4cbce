"""Halls, slot availability and appointments as the mini-program shows them: a read model of booking.

Availability is computed when asked, from the hall's configuration and the seats
taken: a hold counts until its expiry time, so a seat shows free again the moment a
hold runs out, before the timer records it. Capacity itself is enforced by the
`Slot` aggregates in the event store; this model only answers questions, and a
rebuild from the log gives the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from eventsourcing.utils import get_topic

from domain.booking import Appointment, Hall, HallConfig, Slot, bookable_days, slot_times
from domain.calendar import WorkingCalendar
from domain.case.checks import BEIJING
from domain.personal import mask
from projections.catalogue import PoolSource

CalendarProvider = Callable[[], WorkingCalendar]
Clock = Callable[[], datetime]

_EVENTS = (
    Hall.Registered, Hall.Reconfigured, Hall.DayClosed, Hall.DayReopened,
    Slot.Opened, Slot.SeatHeld, Slot.SeatConfirmed, Slot.SeatFreed,
    Appointment.Held, Appointment.Confirmed, Appointment.Cancelled, Appointment.Expired,
    Appointment.Rescheduled, Appointment.CheckedIn, Appointment.NoShow,
)  # fmt: skip
BOOKING_TOPICS = frozenset(get_topic(cls) for cls in _EVENTS)
_CONFIG = msgspec.json.Decoder(HallConfig)
_CLOSED = msgspec.json.Decoder(dict[date, str])
_STATES = {
    Appointment.Confirmed: "confirmed",
    Appointment.Cancelled: "cancelled",
    Appointment.Expired: "expired",
    Appointment.Rescheduled: "rescheduled",
    Appointment.CheckedIn: "checked_in",
    Appointment.NoShow: "no_show",
}


class AppointmentProjection:
    """Consumer of hall, slot and appointment events (the runner's Consumer protocol, by shape)."""

    name: str = "appointments"
    topics: frozenset[str] | None = BOOKING_TOPICS
    tables: Sequence[str] = ("booking_halls", "booking_slots", "booking_seats", "appointments")

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS booking_halls{suffix} (
                code       text PRIMARY KEY,
                id         uuid NOT NULL UNIQUE,
                config     jsonb NOT NULL,
                closed     jsonb NOT NULL DEFAULT '{{}}',  -- day -> reason
                updated_at timestamptz NOT NULL
            );
            CREATE TABLE IF NOT EXISTS booking_slots{suffix} (
                slot_id  uuid PRIMARY KEY,
                hall     text NOT NULL,
                grp      text NOT NULL,
                start_at timestamptz NOT NULL,
                end_at   timestamptz NOT NULL,
                capacity integer NOT NULL
            );
            CREATE INDEX IF NOT EXISTS booking_slots_day{suffix}
                ON booking_slots{suffix} (hall, grp, start_at);
            CREATE TABLE IF NOT EXISTS booking_seats{suffix} (
                slot_id        uuid NOT NULL,
                appointment_id uuid NOT NULL,
                confirmed      boolean NOT NULL,
                expires_at     timestamptz NOT NULL,
                PRIMARY KEY (slot_id, appointment_id)
            );
            CREATE TABLE IF NOT EXISTS appointments{suffix} (
                id           uuid PRIMARY KEY,
                subject      text NOT NULL,
                hall         text NOT NULL,
                grp          text NOT NULL,
                item_code    text NOT NULL,
                slot_id      uuid NOT NULL,
                start_at     timestamptz NOT NULL,
                end_at       timestamptz NOT NULL,
                state        text NOT NULL,
                expires_at   timestamptz NOT NULL,
                visitor_name text NOT NULL,   -- masked: 张*
                visitor_id   text NOT NULL,   -- masked: 430***********1234
                replaces     uuid,
                replaced_by  uuid,
                ticket       text,
                case_id      uuid,
                created_at   timestamptz NOT NULL,
                updated_at   timestamptz NOT NULL
            );
            CREATE INDEX IF NOT EXISTS appointments_mine{suffix}
                ON appointments{suffix} (subject, start_at DESC);
            CREATE INDEX IF NOT EXISTS appointments_hall{suffix} ON appointments{suffix} (hall, start_at);
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        for envelope in envelopes:
            await _apply(conn, suffix, envelope.originator_id, envelope.event)


async def _apply(conn: asyncpg.Connection, s: str, origin: UUID, event: Any) -> None:
    at = event.timestamp
    match event:
        case Hall.Registered():
            await conn.execute(
                f"INSERT INTO booking_halls{s} (code, id, config, updated_at) VALUES ($1, $2, $3::jsonb, $4) "
                "ON CONFLICT (code) DO NOTHING",
                event.code, origin, msgspec.json.encode(event.config).decode(), at,
            )  # fmt: skip
        case Hall.Reconfigured():
            await conn.execute(
                f"UPDATE booking_halls{s} SET config = $2::jsonb, updated_at = $3 WHERE id = $1",
                origin, msgspec.json.encode(event.config).decode(), at,
            )  # fmt: skip
        case Hall.DayClosed():
            await _closed(conn, s, origin, at, lambda closed: {**closed, event.day.isoformat(): event.reason})
        case Hall.DayReopened():
            await _closed(conn, s, origin, at, lambda closed: {
                d: r for d, r in closed.items() if d != event.day.isoformat()
            })  # fmt: skip
        case Slot.Opened():
            await conn.execute(
                f"INSERT INTO booking_slots{s} VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                origin, event.hall, event.group, event.start, event.end, event.capacity,
            )  # fmt: skip
        case Slot.SeatHeld():
            await conn.execute(
                f"INSERT INTO booking_seats{s} VALUES ($1, $2, false, $3) ON CONFLICT DO NOTHING",
                origin, event.appointment_id, event.expires_at,
            )  # fmt: skip
        case Slot.SeatConfirmed():
            await conn.execute(
                f"UPDATE booking_seats{s} SET confirmed = true WHERE slot_id = $1 AND appointment_id = $2",
                origin, event.appointment_id,
            )  # fmt: skip
        case Slot.SeatFreed():
            await conn.execute(
                f"DELETE FROM booking_seats{s} WHERE slot_id = $1 AND appointment_id = $2",
                origin, event.appointment_id,
            )  # fmt: skip
        case Appointment.Held():
            await conn.execute(
                f"INSERT INTO appointments{s} (id, subject, hall, grp, item_code, slot_id, start_at, end_at, "
                "state, expires_at, visitor_name, visitor_id, replaces, case_id, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'held', $9, $10, $11, $12, $13, $14, $14) "
                "ON CONFLICT DO NOTHING",
                origin, event.actor.id, event.hall, event.group, event.item_code, event.slot_id,
                event.slot.start, event.slot.end, event.expires_at, mask(event.visitor.name),
                mask(event.visitor.id_number), event.replaces, event.case_id, at,
            )  # fmt: skip
        case _ if type(event) in _STATES:
            await conn.execute(
                f"UPDATE appointments{s} SET state = $2, updated_at = $3, "
                "ticket = COALESCE($4, ticket), replaced_by = COALESCE($5, replaced_by) WHERE id = $1",
                origin, _STATES[type(event)], at, getattr(event, "ticket", None), getattr(event, "to", None),
            )  # fmt: skip


async def _closed(
    conn: asyncpg.Connection,
    s: str,
    hall: UUID,
    at: datetime,
    change: Callable[[dict[str, str]], dict[str, str]],
) -> None:
    closed = await conn.fetchval(f"SELECT closed FROM booking_halls{s} WHERE id = $1", hall)
    if closed is None:
        return
    changed = change(msgspec.json.decode(closed, type=dict[str, str]))
    await conn.execute(
        f"UPDATE booking_halls{s} SET closed = $2::jsonb, updated_at = $3 WHERE id = $1",
        hall, msgspec.json.encode(changed).decode(), at,
    )  # fmt: skip


# Queries: what the API answers with.


class GroupView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    items: tuple[str, ...]
    prefix: str
    capacity: int


class HallView(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    kind: str
    address: str
    groups: tuple[GroupView, ...]
    config: HallConfig
    closed_days: dict[date, str]


class SlotView(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    capacity: int
    left: int


class DayView(msgspec.Struct, frozen=True, kw_only=True):
    hall: str
    group: str
    day: date
    bookable: bool  # within the released horizon, a working day, not closed
    closed_reason: str | None
    slots: tuple[SlotView, ...]


class AppointmentView(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    hall: str
    group: str
    item_code: str
    start: datetime
    end: datetime
    state: str
    expires_at: datetime
    visitor_name: str
    visitor_id: str
    replaces: UUID | None
    replaced_by: UUID | None
    ticket: str | None
    case_id: UUID | None
    booked_at: datetime


_APPOINTMENT_COLUMNS = (
    "id, hall, grp, item_code, start_at, end_at, state, expires_at, visitor_name, visitor_id, "
    "replaces, replaced_by, ticket, case_id, created_at, subject"
)


def _appointment(row: asyncpg.Record) -> AppointmentView:
    return AppointmentView(
        id=row["id"], hall=row["hall"], group=row["grp"], item_code=row["item_code"],
        start=row["start_at"].astimezone(BEIJING), end=row["end_at"].astimezone(BEIJING),
        state=row["state"], expires_at=row["expires_at"].astimezone(BEIJING),
        visitor_name=row["visitor_name"], visitor_id=row["visitor_id"], replaces=row["replaces"],
        replaced_by=row["replaced_by"], ticket=row["ticket"], case_id=row["case_id"],
        booked_at=row["created_at"].astimezone(BEIJING),
    )  # fmt: skip


def _hall(row: asyncpg.Record) -> HallView:
    config = _CONFIG.decode(row["config"])
    groups = tuple(
        GroupView(code=g.code, name=g.name, items=g.items, prefix=g.prefix, capacity=config.capacity(g.code))
        for g in config.groups
    )
    return HallView(
        code=row["code"], name=config.name, kind=config.kind, address=config.address, groups=groups,
        config=config, closed_days=_CLOSED.decode(row["closed"]),
    )  # fmt: skip


class AppointmentQueries:
    def __init__(self, pool: PoolSource, calendar: CalendarProvider, clock: Clock) -> None:
        self._pool, self.calendar, self.clock = pool, calendar, clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    async def halls(self) -> list[HallView]:
        return [
            _hall(r)
            for r in await self.pool.fetch("SELECT code, config, closed FROM booking_halls ORDER BY code")
        ]

    async def hall(self, code: str) -> HallView | None:
        row = await self.pool.fetchrow("SELECT code, config, closed FROM booking_halls WHERE code = $1", code)
        return None if row is None else _hall(row)

    async def day(self, hall: HallView, group: str, day: date) -> DayView:
        """Every slot of the day with the seats left now; `bookable` says whether it can be booked yet."""
        now = self.clock()
        config = hall.config
        start = datetime.combine(day, datetime.min.time(), BEIJING)
        rows = await self.pool.fetch(
            "SELECT s.start_at, s.capacity, count(t.appointment_id) FILTER "
            "(WHERE t.confirmed OR t.expires_at > $4) AS taken "
            "FROM booking_slots s LEFT JOIN booking_seats t USING (slot_id) "
            "WHERE s.hall = $1 AND s.grp = $2 AND s.start_at >= $3 AND s.start_at < $3 + interval '1 day' "
            "GROUP BY s.slot_id, s.start_at, s.capacity",
            hall.code, group, start, now,
        )  # fmt: skip
        taken = {r["start_at"]: (r["capacity"], r["taken"]) for r in rows}
        default = config.capacity(group)
        slots = []
        for time in slot_times(config, day):
            capacity, used = taken.get(time.start, (default, 0))
            slots.append(
                SlotView(start=time.start, end=time.end, capacity=capacity, left=max(capacity - used, 0))
            )
        bookable = day in bookable_days(now, self.calendar(), config, set(hall.closed_days))
        return DayView(
            hall=hall.code, group=group, day=day, bookable=bookable,
            closed_reason=hall.closed_days.get(day), slots=tuple(slots) if bookable else (),
        )  # fmt: skip

    async def bookable_days(self, hall: HallView) -> list[date]:
        return bookable_days(self.clock(), self.calendar(), hall.config, set(hall.closed_days))

    async def mine(
        self, subject: str, *, upcoming_only: bool = False, limit: int = 50
    ) -> list[AppointmentView]:
        since = self.clock() if upcoming_only else None
        rows = await self.pool.fetch(
            f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments "
            "WHERE subject = $1 AND ($2::timestamptz IS NULL OR end_at >= $2) "
            "ORDER BY start_at DESC LIMIT $3",
            subject, since, limit,
        )  # fmt: skip
        return [_appointment(r) for r in rows]

    async def appointment(self, appointment_id: UUID) -> tuple[AppointmentView, str] | None:
        """The appointment and the account that booked it (for the caller's check)."""
        row = await self.pool.fetchrow(
            f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments WHERE id = $1", appointment_id
        )
        return None if row is None else (_appointment(row), row["subject"])

    async def hall_day(self, hall: str, day: date) -> list[AppointmentView]:
        """The hall's bookings of one day, for its clerks: in slot order."""
        start = datetime.combine(day, datetime.min.time(), BEIJING)
        rows = await self.pool.fetch(
            f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments WHERE hall = $1 AND start_at >= $2 "
            "AND start_at < $2 + interval '1 day' AND state IN ('confirmed', 'checked_in', 'no_show') "
            "ORDER BY start_at, created_at",
            hall, start,
        )  # fmt: skip
        return [_appointment(r) for r in rows]
