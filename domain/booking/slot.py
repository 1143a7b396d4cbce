"""One slot's seats: the consistency boundary that keeps a slot from being overbooked.

Each slot of each item group is an aggregate of its own, created by its first hold.
Holds on one slot are serialised by the store's version check on this aggregate
alone, so a rush on a popular slot never overbooks it, while holds on other slots
(or other halls) never wait for it. A hold counts against capacity until it expires;
an expired hold frees its seat at once, even before its timer records the expiry.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from domain.booking.errors import AppointmentStateError, HoldExpiredError, SlotFullError
from domain.booking.schedule import SlotTime, slot_id
from domain.case.checks import beijing_time


class Seat(msgspec.Struct, frozen=True, kw_only=True):
    appointment_id: UUID
    confirmed: bool
    expires_at: datetime  # of the hold; meaningless once confirmed

    def taken(self, at: datetime) -> bool:
        return self.confirmed or at < self.expires_at


class Slot(Aggregate):
    class Opened(Aggregate.Created):
        hall: str
        group: str
        start: datetime
        end: datetime
        capacity: int

    class SeatHeld(Aggregate.Event):
        appointment_id: UUID
        expires_at: datetime

        def apply(self, slot: Slot) -> None:
            seat = Seat(appointment_id=self.appointment_id, confirmed=False, expires_at=self.expires_at)
            slot.seats = {**slot.seats, self.appointment_id: seat}

    class SeatConfirmed(Aggregate.Event):
        appointment_id: UUID

        def apply(self, slot: Slot) -> None:
            seat = msgspec.structs.replace(slot.seats[self.appointment_id], confirmed=True)
            slot.seats = {**slot.seats, self.appointment_id: seat}

    class SeatFreed(Aggregate.Event):
        appointment_id: UUID
        why: str  # cancelled, expired, rescheduled

        def apply(self, slot: Slot) -> None:
            slot.seats = {k: v for k, v in slot.seats.items() if k != self.appointment_id}

    @staticmethod
    def create_id(hall: str, group: str, start: datetime, end: datetime, capacity: int) -> UUID:
        return slot_id(hall, group, start)

    @classmethod
    def open(cls, hall: str, group: str, time: SlotTime, capacity: int, *, at: datetime) -> Slot:
        return cls._create(
            cls.Opened,
            hall=hall,
            group=group,
            start=time.start,
            end=time.end,
            capacity=capacity,
            timestamp=beijing_time(at),
        )

    def __init__(self, hall: str, group: str, start: datetime, end: datetime, capacity: int) -> None:
        self.hall, self.group, self.start, self.end, self.capacity = hall, group, start, end, capacity
        self.seats: dict[UUID, Seat] = {}

    def taken(self, at: datetime) -> int:
        return sum(1 for seat in self.seats.values() if seat.taken(at))

    def left(self, at: datetime) -> int:
        return max(self.capacity - self.taken(at), 0)

    def hold(self, appointment_id: UUID, expires_at: datetime, *, at: datetime) -> None:
        if appointment_id in self.seats:
            raise AppointmentStateError(f"appointment {appointment_id} already holds a seat here")
        if self.taken(at) >= self.capacity:
            raise SlotFullError(f"slot {self.start:%Y-%m-%d %H:%M} of {self.group} at {self.hall} is full")
        self.trigger_event(
            self.SeatHeld, appointment_id=appointment_id, expires_at=expires_at, timestamp=beijing_time(at)
        )

    def confirm(self, appointment_id: UUID, *, at: datetime) -> None:
        seat = self.seats.get(appointment_id)
        if seat is None or not seat.taken(at):
            raise HoldExpiredError("the hold has run out; hold a seat again")
        if not seat.confirmed:
            self.trigger_event(self.SeatConfirmed, appointment_id=appointment_id, timestamp=beijing_time(at))

    def free(self, appointment_id: UUID, why: str, *, at: datetime) -> None:
        if appointment_id in self.seats:
            self.trigger_event(
                self.SeatFreed, appointment_id=appointment_id, why=why, timestamp=beijing_time(at)
            )
