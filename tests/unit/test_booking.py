"""Booking rules in the domain: the horizon, holds and capacity, caps, bans, cut-off, reschedule, 爽约."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.booking import (
    AppointmentState,
    BookingBannedError,
    CancelTooLateError,
    CapReachedError,
    CheckInClosedError,
    HoldExpiredError,
    NotBookableError,
    NotYourAppointmentError,
    SlotFullError,
    bookable_days,
    slot_times,
)
from domain.booking import booking as ops
from domain.case import Actor, Channel, Role
from tests.unit.booking_builders import CALENDAR, MONDAY, Desk, at, citizen, config, hall, id_number, later

pytestmark = pytest.mark.unit

TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = (MONDAY + timedelta(days=n) for n in range(1, 5))
NEXT_MONDAY = MONDAY + timedelta(days=7)
OPEN = at(MONDAY, 8, 30)  # after Monday's release


@pytest.mark.parametrize(
    ("now", "first", "last", "count"),
    [
        # Before 08:00 on Monday the horizon is where Friday's release left it.
        (at(MONDAY, 7, 59), TUESDAY, FRIDAY, 4),
        # At 08:00 Monday releases the fifth working day ahead: next Monday.
        (at(MONDAY, 8), TUESDAY, NEXT_MONDAY, 5),
        # A Saturday: still Friday's release (Friday 4 Dec + 5 working days = Friday 11 Dec).
        (at(MONDAY - timedelta(days=2), 12), MONDAY, FRIDAY, 5),
    ],
)
def test_the_horizon_moves_at_each_working_days_release(now, first, last, count):
    days = bookable_days(now, CALENDAR, config(), set())
    assert (days[0], days[-1], len(days)) == (first, last, count)


def test_closed_days_and_today_are_never_bookable():
    days = bookable_days(at(MONDAY, 9), CALENDAR, config(), {WEDNESDAY})
    assert MONDAY not in days and WEDNESDAY not in days
    assert TUESDAY in days and THURSDAY in days


def test_slots_are_whole_periods_within_each_session():
    slots = slot_times(config(), TUESDAY)
    # 09:00–12:00 gives six half hours, 13:30–17:00 seven.
    assert len(slots) == 13
    assert (slots[5].start.hour, slots[5].end.hour) == (11, 12)
    assert (slots[6].start.hour, slots[6].start.minute) == (13, 30)
    assert len(slot_times(config(slot_minutes=45), TUESDAY)) == 4 + 4


def test_capacity_defaults_to_the_windows_serving_the_group():
    assert config().capacity("A") == 2
    assert config(capacity=4).capacity("A") == 4


def test_a_slot_never_takes_more_holds_than_its_capacity():
    desk = Desk(hall())
    start = at(TUESDAY, 9)
    desk.book(start, OPEN)
    desk.hold(start, OPEN)
    with pytest.raises(SlotFullError):
        desk.hold(start, OPEN)
    assert desk.slots[next(iter(desk.slots))].taken(OPEN) == 2


def test_an_expired_hold_frees_its_seat_before_any_timer_runs():
    desk = Desk(hall())
    start = at(TUESDAY, 9)
    desk.book(start, OPEN)
    lapsed = desk.hold(start, OPEN)
    five_minutes_on = later(OPEN, minutes=5)
    taker = desk.hold(start, five_minutes_on)
    assert desk.slot_of(taker).taken(five_minutes_on) == 2
    with pytest.raises(HoldExpiredError):
        desk.confirm(lapsed, five_minutes_on)
    assert lapsed.state is AppointmentState.HELD  # the timer records the expiry


def test_the_expiry_timer_gives_the_seat_and_the_cap_back():
    desk = Desk(hall())
    person = id_number()
    held = desk.hold(at(TUESDAY, 9), OPEN, person=person)
    slot, booker = desk.slot_of(held), desk.booker_of(held)
    assert not ops.expire(held, slot, booker, now=later(OPEN, minutes=4))
    assert ops.expire(held, slot, booker, now=later(OPEN, minutes=5))
    assert held.state is AppointmentState.EXPIRED and not slot.seats and not booker.bookings
    assert not ops.expire(held, slot, booker, now=later(OPEN, minutes=6))  # fired twice: once


def test_an_unbookable_time_is_refused_with_the_reason():
    desk = Desk(hall())
    for start in (at(TUESDAY, 9, 15), at(TUESDAY, 12), at(MONDAY, 10), at(NEXT_MONDAY, 9)):
        with pytest.raises(NotBookableError):
            desk.hold(start, at(MONDAY, 7))  # next Monday is released only at 08:00
    desk.hall.close_day(WEDNESDAY, "设备检修", by="m", at=OPEN)
    with pytest.raises(NotBookableError):
        desk.hold(at(WEDNESDAY, 9), OPEN)


@pytest.mark.parametrize(
    ("booked", "then", "period"),
    [
        ([at(TUESDAY, 9)], at(TUESDAY, 14), "day"),  # one per hall per day
        ([at(TUESDAY, 9), at(WEDNESDAY, 9)], at(THURSDAY, 9), "week"),  # two a week
    ],
)
def test_caps_per_person(booked, then, period):
    desk = Desk(hall(capacity=10))
    person = id_number()
    for start in booked:
        desk.book(start, OPEN, person=person)
    with pytest.raises(CapReachedError) as refused:
        desk.hold(then, OPEN, person=person)
    assert refused.value.period == period
    desk.hold(then, OPEN)  # someone else may


def test_six_a_month():
    # A long horizon so that one month holds more than six bookable weeks' worth.
    desk = Desk(hall(capacity=10, horizon_days=20, per_week=5))
    person = id_number()
    days = bookable_days(OPEN, CALENDAR, desk.hall.config, set())
    december = [d for d in days if d.month == 12]
    for day in december[:6]:
        desk.book(at(day, 9), OPEN, person=person)
    with pytest.raises(CapReachedError) as refused:
        desk.hold(at(december[6], 9), OPEN, person=person)
    assert refused.value.period == "month"


def test_cancelled_and_expired_bookings_do_not_count_against_the_caps():
    desk = Desk(hall(capacity=10))
    person = id_number()
    first = desk.book(at(TUESDAY, 9), OPEN, person=person)
    desk.cancel(first, first.booked_by, OPEN)
    desk.hold(at(TUESDAY, 10), OPEN, person=person)  # expires unconfirmed
    desk.book(at(TUESDAY, 14), later(OPEN, minutes=5), person=person)


def test_two_no_shows_in_90_days_ban_for_three_months():
    desk = Desk(hall(capacity=10))
    person = id_number()
    rules = desk.hall.config
    for start in (at(TUESDAY, 9), at(WEDNESDAY, 9)):
        missed = desk.book(start, OPEN, person=person)
        booker = desk.booker_of(missed)
        assert not ops.no_show(missed, booker, rules, how="not_checked_in", now=later(start, minutes=29))
        assert ops.no_show(missed, booker, rules, how="not_checked_in", now=later(start, minutes=30))
    # Banned from the day of the second 爽约 (Wednesday 9 December) for three months.
    assert booker.banned_until == date(2027, 3, 9)
    with pytest.raises(BookingBannedError) as refused:
        desk.hold(at(FRIDAY, 9), OPEN, person=person)
    assert refused.value.until == booker.banned_until


def test_one_no_show_bans_nobody_and_old_ones_age_out():
    desk = Desk(hall(capacity=10))
    person = id_number()
    first = desk.book(at(TUESDAY, 9), OPEN, person=person)
    booker = desk.booker_of(first)
    ops.no_show(first, booker, desk.hall.config, how="not_checked_in", now=at(TUESDAY, 10))
    assert booker.banned_until is None
    # 91 days later the first no longer counts.
    second_day = TUESDAY + timedelta(days=91)
    booker.record_no_show(first.id, second_day, desk.hall.config.rules, at=at(second_day, 10))
    assert booker.banned_until is None


def test_cancel_until_the_cutoff_and_staff_after_it():
    desk = Desk(hall())
    start = at(TUESDAY, 11)
    mine, theirs = desk.book(start, OPEN), desk.book(start, OPEN)
    cancel = desk.cancel

    with pytest.raises(CancelTooLateError):
        cancel(mine, mine.booked_by, at(TUESDAY, 9, 1))
    assert cancel(mine, mine.booked_by, at(TUESDAY, 9))  # exactly two hours before
    assert not cancel(mine, mine.booked_by, at(TUESDAY, 9))  # a retry changes nothing
    clerk = Actor(id="clerk-1", role=Role.CLERK, hall="H1")
    assert cancel(theirs, clerk, at(TUESDAY, 10, 30))
    assert desk.slot_of(mine).taken(at(TUESDAY, 10)) == 0


def test_only_the_booking_account_or_its_halls_staff_may_act():
    desk = Desk(hall())
    mine = desk.book(at(TUESDAY, 9), OPEN)
    for stranger in (citizen(), Actor(id="clerk-9", role=Role.CLERK, hall="H2")):
        with pytest.raises(NotYourAppointmentError):
            desk.cancel(mine, stranger, OPEN)
    assert mine.state is AppointmentState.CONFIRMED


def test_a_reschedule_holds_the_new_seat_and_gives_the_old_back_on_confirm():
    desk = Desk(hall())
    person = id_number()
    old = desk.book(at(TUESDAY, 9), OPEN, person=person)
    me = old.booked_by
    # Same day, same hall: the cap would refuse a second booking, but not its replacement.
    new = desk.hold(at(TUESDAY, 14), OPEN, actor=me, person=person, replaces=old)
    assert old.state is AppointmentState.CONFIRMED
    assert desk.slot_of(old).taken(OPEN) == 1
    assert desk.confirm(new, later(OPEN, minutes=1))
    assert (old.state, old.replaced_by, new.state) == (
        AppointmentState.RESCHEDULED, new.id, AppointmentState.CONFIRMED,
    )  # fmt: skip
    assert desk.slot_of(old).taken(OPEN) == 0
    assert set(desk.booker_of(new).bookings) == {new.id}


def test_a_reschedule_that_is_never_confirmed_keeps_the_old_booking():
    desk = Desk(hall())
    person = id_number()
    old = desk.book(at(TUESDAY, 9), OPEN, person=person)
    new = desk.hold(at(TUESDAY, 14), OPEN, actor=old.booked_by, person=person, replaces=old)
    ops.expire(new, desk.slot_of(new), desk.booker_of(new), now=later(OPEN, minutes=5))
    assert old.state is AppointmentState.CONFIRMED and desk.slot_of(old).taken(OPEN) == 1


def test_reschedule_refusals():
    desk = Desk(hall())
    person = id_number()
    old = desk.book(at(TUESDAY, 11), OPEN, person=person)
    with pytest.raises(NotBookableError):  # to the slot it is in
        desk.hold(at(TUESDAY, 11), OPEN, actor=old.booked_by, person=person, replaces=old)
    with pytest.raises(NotYourAppointmentError):
        desk.hold(at(TUESDAY, 14), OPEN, person=person, replaces=old)
    with pytest.raises(CancelTooLateError):
        desk.hold(at(WEDNESDAY, 9), at(TUESDAY, 9, 30), actor=old.booked_by, person=person, replaces=old)


def test_check_in_opens_an_hour_before_and_closes_at_the_slots_end():
    desk = Desk(hall())
    mine = desk.book(at(TUESDAY, 10), OPEN)

    def check_in(now):
        ops.check_in(mine, actor=mine.booked_by, channel=Channel.MINIAPP, now=now, ticket="A001")

    for too_early_or_late in (at(TUESDAY, 8, 59), at(TUESDAY, 10, 30)):
        with pytest.raises(CheckInClosedError):
            check_in(too_early_or_late)
    check_in(at(TUESDAY, 9))
    assert (mine.state, mine.ticket) == (AppointmentState.CHECKED_IN, "A001")
    # Checked in: not a 爽约 when the slot ends, but a missed call is one.
    booker = desk.booker_of(mine)
    assert not ops.no_show(mine, booker, desk.hall.config, how="not_checked_in", now=at(TUESDAY, 12))
    assert ops.no_show(mine, booker, desk.hall.config, how="missed", now=at(TUESDAY, 10, 20))
    assert booker.no_shows == (TUESDAY,)


def test_replaying_the_events_rebuilds_the_same_state():
    desk = Desk(hall())
    person = id_number()
    old = desk.book(at(TUESDAY, 9), OPEN, person=person)
    new = desk.hold(at(TUESDAY, 14), OPEN, actor=old.booked_by, person=person, replaces=old)
    desk.confirm(new, OPEN)
    for aggregate in (desk.slot_of(old), desk.slot_of(new), desk.booker_of(new), old, new, desk.hall):
        events = aggregate.collect_events()
        copy = None
        for event in events:
            copy = event.mutate(copy)
        assert copy is not None
        assert {k: v for k, v in vars(copy).items() if k != "_pending_events"} == {
            k: v for k, v in vars(aggregate).items() if k != "_pending_events"
        }
