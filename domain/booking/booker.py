"""One person's bookings and 爽约 record, keyed on their ID number: where the caps and bans hold.

The aggregate id is derived from a keyed hash of the ID number (computed outside the
domain), so the store never holds the number in an id, and two accounts of one person
share one record. Caps count bookings that were made and not given back: held (until
the hold runs out), confirmed, attended, or missed. Cancelled, expired and rescheduled
ones do not count.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate

from domain.booking.errors import BookingBannedError, CapReachedError
from domain.booking.hall import BOOKING_NAMESPACE, BookingRules
from domain.booking.schedule import add_months
from domain.case.checks import beijing_time


def booker_id(person_key: str) -> UUID:
    return uuid5(BOOKING_NAMESPACE, f"booker:{person_key}")


class Booking(msgspec.Struct, frozen=True, kw_only=True):
    appointment_id: UUID
    hall: str
    day: date
    confirmed: bool
    expires_at: datetime

    def counts(self, at: datetime) -> bool:
        return self.confirmed or at < self.expires_at


class Booker(Aggregate):
    class Started(Aggregate.Created):
        pass

    class BookingHeld(Aggregate.Event):
        appointment_id: UUID
        hall: str
        day: date
        expires_at: datetime

        def apply(self, booker: Booker) -> None:
            booking = Booking(
                appointment_id=self.appointment_id,
                hall=self.hall,
                day=self.day,
                confirmed=False,
                expires_at=self.expires_at,
            )
            booker.bookings = {**booker.bookings, self.appointment_id: booking}

    class BookingConfirmed(Aggregate.Event):
        appointment_id: UUID

        def apply(self, booker: Booker) -> None:
            booking = msgspec.structs.replace(booker.bookings[self.appointment_id], confirmed=True)
            booker.bookings = {**booker.bookings, self.appointment_id: booking}

    class BookingGivenBack(Aggregate.Event):
        appointment_id: UUID
        why: str  # cancelled, expired, rescheduled

        def apply(self, booker: Booker) -> None:
            booker.bookings = {k: v for k, v in booker.bookings.items() if k != self.appointment_id}

    class NoShowRecorded(Aggregate.Event):
        appointment_id: UUID
        day: date

        def apply(self, booker: Booker) -> None:
            booker.no_shows = (*booker.no_shows, self.day)

    class Banned(Aggregate.Event):
        since: date
        until: date  # first day on which booking is allowed again

        def apply(self, booker: Booker) -> None:
            booker.banned_until = self.until

    @classmethod
    def start(cls, person_key: str, *, at: datetime) -> Booker:
        return cls._create(cls.Started, id=booker_id(person_key), timestamp=beijing_time(at))

    def __init__(self) -> None:
        self.bookings: dict[UUID, Booking] = {}
        self.no_shows: tuple[date, ...] = ()
        self.banned_until: date | None = None

    def banned_on(self, day: date) -> bool:
        return self.banned_until is not None and day < self.banned_until

    def check_allowed(
        self, hall: str, day: date, rules: BookingRules, *, at: datetime, instead_of: UUID | None = None
    ) -> None:
        """Refuse a booking past a cap or under a ban; `instead_of` is the booking a reschedule gives back."""
        today = beijing_time(at).date()
        if self.banned_on(today):
            raise BookingBannedError(
                f"爽约 {rules.no_show_limit} times within {rules.no_show_window_days} days: "
                f"no booking before {self.banned_until}",
                until=self.banned_until or today,
            )
        active = [b for b in self.bookings.values() if b.counts(at) and b.appointment_id != instead_of]
        week = day.isocalendar()[:2]
        if sum(1 for b in active if b.hall == hall and b.day == day) >= rules.per_hall_per_day:
            raise CapReachedError(
                f"at most {rules.per_hall_per_day} booking(s) per hall per day", period="day"
            )
        if sum(1 for b in active if b.day.isocalendar()[:2] == week) >= rules.per_week:
            raise CapReachedError(f"at most {rules.per_week} bookings a week", period="week")
        if sum(1 for b in active if (b.day.year, b.day.month) == (day.year, day.month)) >= rules.per_month:
            raise CapReachedError(f"at most {rules.per_month} bookings a month", period="month")

    def hold(
        self,
        appointment_id: UUID,
        hall: str,
        day: date,
        expires_at: datetime,
        rules: BookingRules,
        *,
        at: datetime,
        instead_of: UUID | None = None,
    ) -> None:
        self.check_allowed(hall, day, rules, at=at, instead_of=instead_of)
        self.trigger_event(
            self.BookingHeld,
            appointment_id=appointment_id,
            hall=hall,
            day=day,
            expires_at=expires_at,
            timestamp=beijing_time(at),
        )

    def confirm(self, appointment_id: UUID, *, at: datetime) -> None:
        booking = self.bookings.get(appointment_id)
        if booking is not None and not booking.confirmed:
            self.trigger_event(
                self.BookingConfirmed, appointment_id=appointment_id, timestamp=beijing_time(at)
            )

    def give_back(self, appointment_id: UUID, why: str, *, at: datetime) -> None:
        if appointment_id in self.bookings:
            self.trigger_event(
                self.BookingGivenBack, appointment_id=appointment_id, why=why, timestamp=beijing_time(at)
            )

    def record_no_show(self, appointment_id: UUID, day: date, rules: BookingRules, *, at: datetime) -> None:
        """爽约: counted against the rolling window; reaching the limit bans from today for ban_months."""
        at = beijing_time(at)
        self.trigger_event(self.NoShowRecorded, appointment_id=appointment_id, day=day, timestamp=at)
        today = at.date()
        since = today - timedelta(days=rules.no_show_window_days)
        recent = sum(1 for d in self.no_shows if d > since)
        if recent >= rules.no_show_limit and not self.banned_on(today):
            until = add_months(today, rules.ban_months)
            self.trigger_event(self.Banned, since=today, until=until, timestamp=at)
