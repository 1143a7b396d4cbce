"""Booking commands over the event store: load the aggregates a command needs, run it, append them at once.

Each command touches up to five aggregates (an appointment, its slot, the person's
`Booker`, and on a reschedule the old appointment and slot). They are appended in one
write with every expected version, so if any moved meanwhile the command runs again
on fresh state. Holds on one slot within this process also queue on an in-process
lock: in a rush, forty callers on one slot would otherwise load the same version,
and all but one would conflict and reload. Across processes the version check alone
keeps the slot from overbooking.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import date, datetime
from uuid import UUID, uuid4, uuid5

from backend.store.aggregates import AggregateStore
from backend.store.retries import KeyedLocks, retry_on_conflict
from domain.booking import (
    Appointment,
    Booker,
    Hall,
    HallConfig,
    NotBookableError,
    Slot,
    UnknownHallError,
    Visitor,
    booker_id,
    hall_id,
    slot_id,
)
from domain.booking import booking as ops
from domain.booking.hall import BOOKING_NAMESPACE
from domain.calendar import WorkingCalendar
from domain.case import Actor, Channel, Role
from domain.personal import IdNumber

log = logging.getLogger(__name__)


class AppointmentNotFoundError(LookupError):
    pass


class NotHallManagerError(PermissionError):
    """Only a manager of the hall (or an admin) may configure it."""


class PersonKeys:
    """The key a person's caps and bans are filed under: keyed, so an ID number cannot be guessed back."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __call__(self, id_number: IdNumber) -> str:
        return hmac.new(self._secret, f"booker:{id_number.number}".encode(), hashlib.sha256).hexdigest()


class BookingService:
    def __init__(
        self,
        aggregates: AggregateStore | Callable[[], AggregateStore],
        *,
        calendar: Callable[[], WorkingCalendar],
        clock: Callable[[], datetime],
        person_key: Callable[[IdNumber], str],
    ) -> None:
        self._aggregates = aggregates
        self.calendar, self.clock, self.person_key = calendar, clock, person_key
        self._slot_locks = KeyedLocks()

    @property
    def aggregates(self) -> AggregateStore:
        a = self._aggregates
        return a if isinstance(a, AggregateStore) else a()

    # Halls.

    async def configure_hall(self, actor: Actor, code: str, config: HallConfig) -> tuple[Hall, bool]:
        """Register the hall, or record its new configuration; the bool says whether anything changed."""
        _manager_of(actor, code)
        now = self.clock()

        async def run() -> tuple[Hall, bool]:
            hall = await self.aggregates.find(hall_id(code))
            if hall is None:
                hall = Hall.register(code, config, by=actor.id, at=now)
                changed = True
            else:
                changed = hall.reconfigure(config, by=actor.id, at=now)
            await self.aggregates.save(hall)
            return hall, changed

        return await retry_on_conflict(run)

    async def close_day(
        self, actor: Actor, code: str, day: date, reason: str, *, reopen: bool = False
    ) -> Hall:
        _manager_of(actor, code)

        async def run() -> Hall:
            hall = await self.hall(code)
            if reopen:
                hall.reopen_day(day, by=actor.id, at=self.clock())
            else:
                hall.close_day(day, reason, by=actor.id, at=self.clock())
            await self.aggregates.save(hall)
            return hall

        return await retry_on_conflict(run)

    async def hall(self, code: str) -> Hall:
        hall = await self.aggregates.find(hall_id(code))
        if not isinstance(hall, Hall):
            raise UnknownHallError(f"no hall {code}")
        return hall

    # Appointments.

    async def hold(
        self,
        actor: Actor,
        channel: Channel,
        *,
        hall_code: str,
        item_code: str,
        start: datetime,
        visitor: Visitor,
        request_id: str | None = None,
        replaces: UUID | None = None,
        case_id: UUID | None = None,
    ) -> Appointment:
        """占号. A repeated `request_id` from the same account answers with the appointment it made."""
        appointment_id = (
            uuid4() if request_id is None else uuid5(BOOKING_NAMESPACE, f"{actor.id}:{request_id}")
        )
        hall = await self.hall(hall_code)
        group = hall.config.group_of_item(item_code)
        if group is None:
            raise NotBookableError(f"hall {hall_code} takes no bookings for item {item_code}")
        if replaces is not None:
            # A reschedule keeps the person: the caps and bans are theirs.
            visitor = (await self.appointment(replaces)).visitor
        key = self.person_key(visitor.id_number)
        slot = slot_id(hall_code, group.code, start)

        async def run() -> Appointment:
            made, current, booker, old = await asyncio.gather(
                self.aggregates.find(appointment_id),
                self.aggregates.find(slot),
                self.aggregates.find(booker_id(key)),
                self.appointment(replaces) if replaces is not None else _none(),
            )
            if isinstance(made, Appointment):
                return made  # the same request again, or its retry after a conflict
            appointment, taken, booker = ops.hold(
                appointment_id,
                hall=hall,
                slot=current,
                booker=booker,
                person_key=key,
                group=group.code,
                start=start,
                item_code=item_code,
                visitor=visitor,
                actor=actor,
                channel=channel,
                now=self.clock(),
                calendar=self.calendar(),
                replaces=old,
                case_id=case_id,
            )
            await self.aggregates.save(appointment, taken, booker)
            return appointment

        async with self._slot_locks(slot):
            return await retry_on_conflict(run)

    async def confirm(self, actor: Actor, channel: Channel, appointment_id: UUID) -> Appointment:
        async def run() -> Appointment:
            appointment = await self.appointment(appointment_id)
            slot, booker = await self._seat_of(appointment)
            replaced = None
            if appointment.replaces is not None:
                old = await self.appointment(appointment.replaces)
                replaced = (old, await self.aggregates.get(old.slot_id))
            if ops.confirm(
                appointment, slot, booker, actor=actor, channel=channel, now=self.clock(), replaced=replaced
            ):
                await self.aggregates.save(appointment, slot, booker, *(replaced or ()))
            return appointment

        return await retry_on_conflict(run)

    async def cancel(
        self, actor: Actor, channel: Channel, appointment_id: UUID, reason: str = ""
    ) -> Appointment:
        async def run() -> Appointment:
            appointment = await self.appointment(appointment_id)
            slot, booker = await self._seat_of(appointment)
            hall = await self.hall(appointment.hall)
            now = self.clock()
            if ops.cancel(
                appointment, slot, booker, hall.config, actor=actor, channel=channel, now=now, reason=reason
            ):
                await self.aggregates.save(appointment, slot, booker)
            return appointment

        return await retry_on_conflict(run)

    async def expire(self, appointment_id: UUID) -> bool:
        """The hold timer; False when the hold was confirmed, cancelled or expired already."""

        async def run() -> bool:
            appointment = await self.appointment(appointment_id)
            slot, booker = await self._seat_of(appointment)
            if not ops.expire(appointment, slot, booker, now=self.clock()):
                return False
            await self.aggregates.save(appointment, slot, booker)
            return True

        return await retry_on_conflict(run)

    async def no_show(self, appointment_id: UUID, how: str) -> bool:
        """爽约: the slot ended before a check-in (the timer), or the ticket was missed at the window."""

        async def run() -> bool:
            appointment = await self.appointment(appointment_id)
            booker = await self.aggregates.get(appointment.booker)
            hall = await self.hall(appointment.hall)
            if not ops.no_show(appointment, booker, hall.config, how=how, now=self.clock()):
                return False
            await self.aggregates.save(appointment, booker)
            return True

        return await retry_on_conflict(run)

    async def appointment(self, appointment_id: UUID) -> Appointment:
        found = await self.aggregates.find(appointment_id)
        if not isinstance(found, Appointment):
            raise AppointmentNotFoundError(f"no appointment {appointment_id}")
        return found

    async def _seat_of(self, appointment: Appointment) -> tuple[Slot, Booker]:
        slot, booker = await asyncio.gather(
            self.aggregates.get(appointment.slot_id), self.aggregates.get(appointment.booker)
        )
        return slot, booker


async def _none() -> None:
    return None


def _manager_of(actor: Actor, code: str) -> None:
    if actor.role is Role.SYSTEM:
        return
    if actor.role is not Role.MANAGER or (actor.hall is not None and actor.hall != code):
        raise NotHallManagerError(f"only a manager of hall {code} may change its configuration")
