"""The booking commands, each across the three aggregates it must change together.

A hold takes a seat on the `Slot` (capacity), a booking on the `Booker` (caps and
bans) and creates the `Appointment`; confirm, cancel, expiry, reschedule and 爽约 move
all three as one. The caller appends every aggregate returned in a single atomic
write with each one's expected version, so a concurrent change to any of them makes
the whole command retry. Functions here are pure: the caller loads, passes `now`, and
saves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from domain.booking.appointment import Appointment, AppointmentState, Visitor
from domain.booking.booker import Booker, booker_id
from domain.booking.errors import (
    CancelTooLateError,
    CheckInClosedError,
    HoldExpiredError,
    NotBookableError,
)
from domain.booking.hall import Hall, HallConfig
from domain.booking.schedule import offered, slot_id
from domain.booking.slot import Slot
from domain.calendar import WorkingCalendar
from domain.case.checks import beijing_time
from domain.case.values import Actor, Channel, Role

CHECK_IN_EARLY = timedelta(hours=1)
SYSTEM = Actor(id="system:booking", role=Role.SYSTEM, name="预约计时器")


def hold(
    appointment_id: UUID,
    *,
    hall: Hall,
    slot: Slot | None,
    booker: Booker | None,
    person_key: str,
    group: str,
    start: datetime,
    item_code: str,
    visitor: Visitor,
    actor: Actor,
    channel: Channel,
    now: datetime,
    calendar: WorkingCalendar,
    replaces: Appointment | None = None,
    case_id: UUID | None = None,
) -> tuple[Appointment, Slot, Booker]:
    """占号: a seat held for `hold_minutes`; `replaces` makes it the first half of a reschedule."""
    config, now = hall.config, beijing_time(now)
    item_group = config.group(group)
    if item_group is None or item_code not in item_group.items:
        raise NotBookableError(f"item {item_code} is not booked in group {group} at hall {hall.code}")
    time = offered(now, calendar, config, set(hall.closed_days), group, start)
    if time is None:
        raise NotBookableError(
            f"{beijing_time(start):%Y-%m-%d %H:%M} is not a slot hall {hall.code} offers for booking now"
        )
    this_slot = slot_id(hall.code, group, time.start)
    if replaces is not None:
        replaces.admit(actor)
        replaces.require("reschedule", AppointmentState.CONFIRMED)
        _before_cutoff(replaces, config, now, "reschedule")
        if replaces.slot_id == this_slot:
            raise NotBookableError("the appointment is already in this slot")
    if slot is None:
        slot = Slot.open(hall.code, group, time, config.capacity(group), at=now)
    if booker is None:
        booker = Booker.start(person_key, at=now)
    expires_at = now + timedelta(minutes=config.rules.hold_minutes)
    # The seat first: in a rush, "full" is the answer most callers get, and the cheapest.
    slot.hold(appointment_id, expires_at, at=now)
    booker.hold(
        appointment_id,
        hall.code,
        time.start.date(),
        expires_at,
        config.rules,
        at=now,
        instead_of=None if replaces is None else replaces.id,
    )
    appointment = Appointment.hold(
        appointment_id,
        actor=actor,
        channel=channel,
        at=now,
        hall=hall.code,
        group=group,
        item_code=item_code,
        # Derived, not read off the loaded aggregates: their ids come back as the driver's own UUID type.
        slot_id=this_slot,
        slot=time,
        booker=booker_id(person_key),
        visitor=visitor,
        expires_at=expires_at,
        no_show_after=time.end + timedelta(minutes=config.rules.no_show_grace_minutes),
        replaces=None if replaces is None else replaces.id,
        case_id=case_id,
    )
    return appointment, slot, booker


def confirm(
    appointment: Appointment,
    slot: Slot,
    booker: Booker,
    *,
    actor: Actor,
    channel: Channel,
    now: datetime,
    replaced: tuple[Appointment, Slot] | None = None,
) -> bool:
    """确认预约; a reschedule's old appointment (`replaced`) gives its seat back in the same append.

    False when it was confirmed already: a client's retry is answered, not refused.
    """
    appointment.admit(actor)
    if appointment.state is AppointmentState.CONFIRMED:
        return False
    appointment.require("confirm", AppointmentState.HELD)
    if now >= appointment.expires_at:
        raise HoldExpiredError("the hold has run out; hold a seat again")
    slot.confirm(appointment.id, at=now)
    booker.confirm(appointment.id, at=now)
    appointment.record(Appointment.Confirmed, actor, channel, now)
    if replaced is not None:
        old, old_slot = replaced
        # Cancelled meanwhile: nothing is left to give back.
        if old.state is AppointmentState.CONFIRMED:
            old_slot.free(old.id, "rescheduled", at=now)
            booker.give_back(old.id, "rescheduled", at=now)
            old.record(Appointment.Rescheduled, actor, channel, now, to=appointment.id)
    return True


def cancel(
    appointment: Appointment,
    slot: Slot,
    booker: Booker,
    config: HallConfig,
    *,
    actor: Actor,
    channel: Channel,
    now: datetime,
    reason: str,
) -> bool:
    """取消预约, until the cut-off before the slot for the visitor; staff may cancel later (a closed hall)."""
    appointment.admit(actor)
    if appointment.state is AppointmentState.CANCELLED:
        return False
    appointment.require("cancel", AppointmentState.HELD, AppointmentState.CONFIRMED)
    if actor.role in (Role.CITIZEN, Role.AGENT) and appointment.state is AppointmentState.CONFIRMED:
        _before_cutoff(appointment, config, now, "cancel")
    slot.free(appointment.id, "cancelled", at=now)
    booker.give_back(appointment.id, "cancelled", at=now)
    appointment.record(Appointment.Cancelled, actor, channel, now, reason=reason.strip() or "本人取消")
    return True


def expire(appointment: Appointment, slot: Slot, booker: Booker, *, now: datetime) -> bool:
    """The hold timer: an unconfirmed hold gives its seat back. False if confirmed or ended meanwhile."""
    if appointment.state is not AppointmentState.HELD or now < appointment.expires_at:
        return False
    slot.free(appointment.id, "expired", at=now)
    booker.give_back(appointment.id, "expired", at=now)
    appointment.record(Appointment.Expired, SYSTEM, Channel.SYSTEM, now)
    return True


def no_show(appointment: Appointment, booker: Booker, config: HallConfig, *, how: str, now: datetime) -> bool:
    """爽约: a confirmed booking never checked in by the slot's end (plus grace), or a ticket missed."""
    if how == "not_checked_in":
        if appointment.state is not AppointmentState.CONFIRMED:
            return False
        if now < appointment.slot.end + timedelta(minutes=config.rules.no_show_grace_minutes):
            return False
    elif how == "missed":
        if appointment.state is not AppointmentState.CHECKED_IN:
            return False
    else:
        raise ValueError(f"unknown kind of 爽约: {how}")
    appointment.record(Appointment.NoShow, SYSTEM, Channel.SYSTEM, now, how=how)
    booker.record_no_show(appointment.id, appointment.slot.start.date(), config.rules, at=now)
    return True


def check_in(appointment: Appointment, *, actor: Actor, channel: Channel, now: datetime, ticket: str) -> None:
    """取号 with a booking: from an hour before the slot until it ends."""
    appointment.admit(actor)
    appointment.require("check in", AppointmentState.CONFIRMED)
    if not appointment.slot.start - CHECK_IN_EARLY <= now < appointment.slot.end:
        raise CheckInClosedError(
            f"check-in for the {appointment.slot.start:%H:%M} slot is open from "
            f"{appointment.slot.start - CHECK_IN_EARLY:%H:%M} until {appointment.slot.end:%H:%M}"
        )
    appointment.record(Appointment.CheckedIn, actor, channel, now, ticket=ticket)


def _before_cutoff(appointment: Appointment, config: HallConfig, now: datetime, what: str) -> None:
    cutoff = appointment.slot.start - timedelta(minutes=config.rules.cancel_cutoff_minutes)
    if now > cutoff:
        raise CancelTooLateError(
            f"too late to {what}: allowed until {cutoff:%Y-%m-%d %H:%M}, "
            f"{config.rules.cancel_cutoff_minutes} minutes before the slot"
        )
