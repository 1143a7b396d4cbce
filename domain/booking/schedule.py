"""Which slots a hall offers on which days, and when each day opens for booking: pure calendar maths.

The booking horizon moves at the release time of each working day. At 08:00 on a
working day the horizon-th working day after it opens, and the rush for its slots
begins; over a weekend the horizon stays where Friday's release left it. Today is
never bookable: a booking is made at least one working day ahead.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from uuid import UUID, uuid5

import msgspec

from domain.booking.hall import BOOKING_NAMESPACE, HallConfig
from domain.calendar import WorkingCalendar
from domain.case.checks import BEIJING, beijing_time


class SlotTime(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime


def slot_id(hall: str, group: str, start: datetime) -> UUID:
    """Every process derives the same id for the same seat list, so the first hold creates it once."""
    return uuid5(BOOKING_NAMESPACE, f"slot:{hall}:{group}:{beijing_time(start).isoformat()}")


def slot_times(config: HallConfig, day: date) -> list[SlotTime]:
    """The slots of one opening day: each session cut into whole slots; a short remainder is not offered."""
    length = timedelta(minutes=config.rules.slot_minutes)
    slots: list[SlotTime] = []
    for session in sorted(config.sessions, key=lambda s: s.start):
        start = datetime.combine(day, session.start, BEIJING)
        end = datetime.combine(day, session.end, BEIJING)
        while start + length <= end:
            slots.append(SlotTime(start=start, end=start + length))
            start += length
    return slots


def last_release_day(now: datetime, calendar: WorkingCalendar, config: HallConfig) -> date:
    """The working day whose release time was the latest to pass by `now`."""
    local = beijing_time(now)
    day = local.date()
    if calendar.is_working_day(day) and local.time() >= config.rules.release_at:
        return day
    day -= timedelta(days=1)
    while not calendar.is_working_day(day):
        day -= timedelta(days=1)
    return day


def bookable_days(
    now: datetime, calendar: WorkingCalendar, config: HallConfig, closed: frozenset[date] | set[date]
) -> list[date]:
    """The open working days after today up to the horizon as last released, closed days left out."""
    today = beijing_time(now).date()
    furthest = calendar.add_working_days(last_release_day(now, calendar, config), config.rules.horizon_days)
    days: list[date] = []
    day = calendar.next_working_day(today + timedelta(days=1))
    while day <= furthest:
        if day not in closed:
            days.append(day)
        day = calendar.next_working_day(day + timedelta(days=1))
    return days


def offered(
    now: datetime,
    calendar: WorkingCalendar,
    config: HallConfig,
    closed: frozenset[date] | set[date],
    group: str,
    start: datetime,
) -> SlotTime | None:
    """The slot starting at `start` if the hall offers it to be booked now, else None."""
    if config.group(group) is None:
        return None
    start = beijing_time(start)
    if start.date() not in bookable_days(now, calendar, config, closed):
        return None
    return next((s for s in slot_times(config, start.date()) if s.start == start), None)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter (31 Jan + 1 = 28/29 Feb)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine): plenty for 'within 500 m of the hall'."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))
