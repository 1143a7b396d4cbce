"""A hall, a calendar and visitors for the booking domain tests: a plain week in December 2026."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from domain.booking import (
    Appointment,
    Booker,
    BookingRules,
    Hall,
    HallConfig,
    ItemGroup,
    Session,
    Slot,
    Visitor,
    Window,
    slot_id,
)
from domain.booking import booking as ops
from domain.calendar import WorkingCalendar
from domain.case import Actor, Channel, Role
from domain.case.checks import BEIJING
from domain.personal import IdNumber, PersonName, id_check_char

# Weekends only: the tests name their days by hand.
CALENDAR = WorkingCalendar(holidays=frozenset(), makeup_days=frozenset(), known_years=frozenset())
MONDAY = date(2026, 12, 7)
ITEM = "11430100006182474N010100300000"


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), BEIJING)


def config(capacity: int | None = None, **rules: Any) -> HallConfig:
    return HallConfig(
        name="长沙市政务服务中心",
        kind="行政服务中心",
        address="长沙市岳麓区",
        windows=(Window(code="W1", groups=("A",)), Window(code="W2", groups=("A",))),
        groups=(ItemGroup(code="A", name="市场准入", items=(ITEM,), prefix="A", capacity=capacity),),
        sessions=(Session(start=time(9), end=time(12)), Session(start=time(13, 30), end=time(17))),
        rules=BookingRules(**rules),
    )


def hall(capacity: int | None = None, **rules: Any) -> Hall:
    return Hall.register("H1", config(capacity, **rules), by="manager-1", at=at(MONDAY, 7))


_serial = itertools.count(1)


def id_number() -> IdNumber:
    first17 = f"43010219900101{next(_serial) % 1000:03d}"
    return IdNumber(first17 + id_check_char(first17))


def citizen(subject: str | None = None) -> Actor:
    return Actor(id=subject or f"citizen-{uuid.uuid4()}", role=Role.CITIZEN)


class Desk:
    """Books through the domain functions and keeps every aggregate, as the store would."""

    def __init__(self, the_hall: Hall) -> None:
        self.hall = the_hall
        self.slots: dict[uuid.UUID, Slot] = {}
        self.bookers: dict[str, Booker] = {}
        self.appointments: dict[uuid.UUID, Appointment] = {}

    def hold(
        self,
        start: datetime,
        now: datetime,
        *,
        actor: Actor | None = None,
        person: IdNumber | None = None,
        replaces: Appointment | None = None,
    ) -> Appointment:
        person = person or id_number()
        key = person.number
        appointment_id = uuid.uuid4()
        existing = self.slots.get(slot_id("H1", "A", start))
        appointment, slot, booker = ops.hold(
            appointment_id,
            hall=self.hall,
            slot=existing,
            booker=self.bookers.get(key),
            person_key=key,
            group="A",
            start=start,
            item_code=ITEM,
            visitor=Visitor(name=PersonName("张三"), id_number=person),
            actor=actor or citizen(),
            channel=Channel.MINIAPP,
            now=now,
            calendar=CALENDAR,
            replaces=replaces,
        )
        self.slots[slot.id], self.bookers[key], self.appointments[appointment.id] = slot, booker, appointment
        return appointment

    def book(self, start: datetime, now: datetime, **how: Any) -> Appointment:
        appointment = self.hold(start, now, **how)
        self.confirm(appointment, now)
        return appointment

    def confirm(self, appointment: Appointment, now: datetime) -> bool:
        replaced = None
        if appointment.replaces is not None:
            old = self.appointments[appointment.replaces]
            replaced = (old, self.slots[old.slot_id])
        return ops.confirm(
            appointment,
            self.slots[appointment.slot_id],
            self.booker_of(appointment),
            actor=appointment.booked_by,
            channel=Channel.MINIAPP,
            now=now,
            replaced=replaced,
        )

    def cancel(self, appointment: Appointment, actor: Actor, now: datetime) -> bool:
        return ops.cancel(
            appointment,
            self.slot_of(appointment),
            self.booker_of(appointment),
            self.hall.config,
            actor=actor,
            channel=Channel.MINIAPP,
            now=now,
            reason="",
        )

    def booker_of(self, appointment: Appointment) -> Booker:
        return self.bookers[appointment.visitor.id_number.number]

    def slot_of(self, appointment: Appointment) -> Slot:
        return self.slots[appointment.slot_id]


def later(moment: datetime, **delta: float) -> datetime:
    return moment + timedelta(**delta)
