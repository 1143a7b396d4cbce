"""Case deadlines (限时办结): a time limit run from acceptance, stopped while suspended, extended on approval.

The clock counts days strictly after the day it starts from (see `domain.calendar`).
A working-day limit ends on the n-th counted working day. A natural-day limit
ends on the n-th counted day, moved on to the next working day when that is a
rest day (民法典 第二百零三条). Days inside a suspension are not counted in either
unit, and a deadline never falls on a suspended day. Each extension runs from the
end of the period before it, in its own unit, by the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

import msgspec

from domain.calendar import InvalidPeriodError, WorkingCalendar

_DAY = timedelta(days=1)

Unit = Literal["working", "natural"]
Light = Literal["green", "yellow", "red"]
Suspension = tuple[date, date | None]


class Duration(msgspec.Struct, frozen=True):
    """A time limit: so many 工作日 (working) or 自然日 (natural) days."""

    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        if self.unit not in ("working", "natural"):
            raise InvalidPeriodError(f"unit must be 'working' or 'natural', not {self.unit!r}")
        if self.amount < 0:
            raise InvalidPeriodError(f"a time limit cannot be negative: {self.amount}")


class Deadline(msgspec.Struct, frozen=True):
    """A computed deadline; provisional when it relied on years whose calendar is not yet published."""

    due: date
    provisional: bool
    years_assumed: tuple[int, ...]


class _Clock:
    """Walks days for one deadline, skipping suspended days and noting years it had to assume."""

    def __init__(self, calendar: WorkingCalendar, stopped: Sequence[tuple[date, date]]) -> None:
        self.calendar = calendar
        self.stopped = stopped
        self.assumed: set[int] = set()

    def is_stopped(self, d: date) -> bool:
        return any(start <= d < end for start, end in self.stopped)

    def is_working(self, d: date) -> bool:
        if not self.calendar.is_known(d.year):
            self.assumed.add(d.year)
        return self.calendar.is_working_day(d)

    def open_day(self, d: date) -> date:
        # Suspension is checked first, so a suspended day's year is never looked up needlessly.
        while self.is_stopped(d) or not self.is_working(d):
            d += _DAY
        return d

    def run(self, after: date, limit: Duration) -> date:
        d, left = after, limit.amount
        while left:
            d += _DAY
            if not self.is_stopped(d) and (limit.unit == "natural" or self.is_working(d)):
                left -= 1
        return self.open_day(d) if limit.unit == "natural" else d


def _stopped_ranges(suspensions: Sequence[Suspension], today: date) -> list[tuple[date, date]]:
    # Half-open [start, end): the day of resumption counts again, so a suspension
    # lifted the day it began costs nothing, and an open one ending `today` gives
    # the deadline the case would have if it resumed today.
    ranges = []
    for start, end in suspensions:
        end = today if end is None else end
        if end < start:
            raise InvalidPeriodError(f"suspension ends ({end}) before it starts ({start})")
        ranges.append((start, end))
    return ranges


def deadline(
    start: date,
    limit: Duration,
    calendar: WorkingCalendar,
    *,
    today: date,
    suspensions: Sequence[Suspension] = (),
    extensions: Sequence[Duration] = (),
) -> Deadline:
    """The deadline of a case accepted on `start` (an open suspension is taken to end `today`)."""
    clock = _Clock(calendar, _stopped_ranges(suspensions, today))
    due = start
    for period in (limit, *extensions):
        due = clock.run(due, period)
    # Only a zero limit (即办) can still stand on a rest or suspended day here.
    due = clock.open_day(due)
    years = tuple(sorted(clock.assumed))
    return Deadline(due=due, provisional=bool(years), years_assumed=years)


def light(deadline: date, today: date, calendar: WorkingCalendar, *, yellow_within: int = 2) -> Light:
    """Red when today is past the deadline, yellow with `yellow_within` working days left or fewer."""
    if today > deadline:
        return "red"
    return "yellow" if calendar.working_days_between(today, deadline) <= yellow_within else "green"
