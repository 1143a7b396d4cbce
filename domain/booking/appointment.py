"""An appointment (预约) as the citizen sees it: who, which hall, item and slot, and what became of it.

The appointment carries the visitor's personal details (sealed at rest by the store)
and its lifecycle: held → confirmed → checked in, or cancelled, expired, rescheduled,
爽约. The seat it takes lives on its `Slot`, the caps on its `Booker`; every command
changes the three together, in one append (see domain.booking.booking).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from domain.booking.errors import AppointmentStateError, NotYourAppointmentError
from domain.booking.schedule import SlotTime
from domain.case.checks import beijing_time
from domain.case.values import Actor, Channel, Role
from domain.personal import IdNumber, PersonName, Phone


class Visitor(msgspec.Struct, frozen=True, kw_only=True):
    """The person who will come (实名预约): the ban and the caps are keyed on the ID number."""

    name: PersonName
    id_number: IdNumber
    phone: Phone | None = None


class AppointmentState(StrEnum):
    HELD = "held"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    RESCHEDULED = "rescheduled"
    NO_SHOW = "no_show"  # 爽约

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    AppointmentState.HELD: "待确认",
    AppointmentState.CONFIRMED: "已预约",
    AppointmentState.CHECKED_IN: "已取号",
    AppointmentState.CANCELLED: "已取消",
    AppointmentState.EXPIRED: "已过期",
    AppointmentState.RESCHEDULED: "已改约",
    AppointmentState.NO_SHOW: "爽约",
}
# Staff who may act for a visitor: a clerk at the window, a hall manager, the system's timers.
STAFF = (Role.CLERK, Role.MANAGER, Role.SYSTEM)


class Appointment(Aggregate):
    class Event(Aggregate.Event):
        actor: Actor
        channel: Channel

    class Held(Aggregate.Created):
        actor: Actor
        channel: Channel
        hall: str
        group: str
        item_code: str
        slot_id: UUID
        slot: SlotTime
        booker: UUID
        visitor: Visitor
        expires_at: datetime
        no_show_after: datetime  # the slot's end plus grace: not checked in by then is 爽约
        replaces: UUID | None
        case_id: UUID | None

    class Confirmed(Event):
        def apply(self, appointment: Appointment) -> None:
            appointment.state = AppointmentState.CONFIRMED

    class Cancelled(Event):
        reason: str

        def apply(self, appointment: Appointment) -> None:
            appointment.state = AppointmentState.CANCELLED

    class Expired(Event):
        def apply(self, appointment: Appointment) -> None:
            appointment.state = AppointmentState.EXPIRED

    class Rescheduled(Event):
        to: UUID  # the appointment that took its place

        def apply(self, appointment: Appointment) -> None:
            appointment.state = AppointmentState.RESCHEDULED
            appointment.replaced_by = self.to

    class CheckedIn(Event):
        ticket: str

        def apply(self, appointment: Appointment) -> None:
            appointment.state = AppointmentState.CHECKED_IN
            appointment.ticket = self.ticket

    class NoShow(Event):
        how: str  # not_checked_in: the slot ended first; missed: called at the window, never came

        def apply(self, appointment: Appointment) -> None:
            appointment.state = AppointmentState.NO_SHOW

    @classmethod
    def hold(
        cls,
        appointment_id: UUID,
        *,
        actor: Actor,
        channel: Channel,
        at: datetime,
        hall: str,
        group: str,
        item_code: str,
        slot_id: UUID,
        slot: SlotTime,
        booker: UUID,
        visitor: Visitor,
        expires_at: datetime,
        no_show_after: datetime,
        replaces: UUID | None = None,
        case_id: UUID | None = None,
    ) -> Appointment:
        if actor.role not in (Role.CITIZEN, Role.AGENT, Role.CLERK):
            raise NotYourAppointmentError(f"an actor in the role {actor.role!s} may not book")
        return cls._create(
            cls.Held,
            id=appointment_id,
            actor=actor,
            channel=channel,
            timestamp=beijing_time(at),
            hall=hall,
            group=group,
            item_code=item_code,
            slot_id=slot_id,
            slot=slot,
            booker=booker,
            visitor=visitor,
            expires_at=expires_at,
            no_show_after=no_show_after,
            replaces=replaces,
            case_id=case_id,
        )

    def __init__(
        self,
        actor: Actor,
        channel: Channel,
        hall: str,
        group: str,
        item_code: str,
        slot_id: UUID,
        slot: SlotTime,
        booker: UUID,
        visitor: Visitor,
        expires_at: datetime,
        no_show_after: datetime,
        replaces: UUID | None,
        case_id: UUID | None,
    ) -> None:
        self.booked_by = actor
        self.hall, self.group, self.item_code = hall, group, item_code
        self.slot_id, self.slot, self.booker, self.visitor = slot_id, slot, booker, visitor
        self.expires_at, self.no_show_after = expires_at, no_show_after
        self.replaces, self.case_id = replaces, case_id
        self.state = AppointmentState.HELD
        self.replaced_by: UUID | None = None
        self.ticket: str | None = None

    @property
    def subject(self) -> str:
        """The account that booked; it alone (besides staff) may act on the appointment."""
        return self.booked_by.id

    def admit(self, actor: Actor) -> None:
        """The booking account itself, or staff of the hall (or the system)."""
        if actor.role in STAFF:
            if actor.role is Role.CLERK and actor.hall is not None and actor.hall != self.hall:
                raise NotYourAppointmentError("a clerk acts only at their own hall")
            return
        if actor.id != self.subject:
            raise NotYourAppointmentError("this appointment was booked by another account")

    def require(self, command: str, *states: AppointmentState) -> None:
        if self.state not in states:
            raise AppointmentStateError(
                f"cannot {command}: the appointment is {self.state.label} ({self.state})"
            )

    def record(
        self,
        event_class: type[Appointment.Event],
        actor: Actor,
        channel: Channel,
        at: datetime,
        **facts: object,
    ) -> None:
        self.trigger_event(event_class, actor=actor, channel=channel, timestamp=beijing_time(at), **facts)
