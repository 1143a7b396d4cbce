"""Working days (工作日): which days offices work, and counting them forwards and backwards.

Counting convention, used everywhere in this package: the day an interval starts
from is not counted (民法典 第二百零一条: 开始的当日不计入，自下一日开始计算).
So n working days from an acceptance on day D ends on the n-th working day
strictly after D, and "working days between a and b" counts the working days in
(a, b]. A case accepted on Friday with 1 working day is due on Monday.
"""

from __future__ import annotations

from datetime import date, timedelta

import msgspec

_DAY = timedelta(days=1)
_SATURDAY = 5


class CalendarError(ValueError):
    """A calendar, duration or period makes no sense."""


class InvalidYearError(CalendarError):
    """A year's holidays and make-up days are inconsistent."""


class InvalidPeriodError(CalendarError):
    """A duration, suspension or extension is malformed."""


class InvalidRegionError(CalendarError):
    """Not a six-digit administrative division code (行政区划代码)."""


def is_weekend(d: date) -> bool:
    """Saturday or Sunday."""
    return d.weekday() >= _SATURDAY


class WorkingCalendar(msgspec.Struct, frozen=True):
    """Statutory holidays and 调休 make-up days for the years whose calendar has been published.

    A year outside `known_years` is assumed to have weekends off and nothing else;
    `deadline` reports when it had to rely on that assumption.
    """

    holidays: frozenset[date] = frozenset()
    makeup_days: frozenset[date] = frozenset()
    known_years: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if clash := self.holidays & self.makeup_days:
            raise InvalidYearError(f"both a holiday and a make-up working day: {sorted(clash)}")
        if weekdays := sorted(d for d in self.makeup_days if not is_weekend(d)):
            raise InvalidYearError(f"make-up working days must be weekend days: {weekdays}")
        # A holiday in an unpublished year would make a provisional answer look certain.
        if stray := sorted(d for d in self.holidays | self.makeup_days if d.year not in self.known_years):
            raise InvalidYearError(f"dates in years that are not marked known: {stray}")

    def is_known(self, year: int) -> bool:
        """Whether that year's official calendar is loaded (otherwise weekends only are assumed)."""
        return year in self.known_years

    def is_working_day(self, d: date) -> bool:
        """Whether government offices work on that day."""
        if d in self.makeup_days:
            return True
        return d not in self.holidays and not is_weekend(d)

    def with_year(
        self, year: int, holidays: frozenset[date], makeup_days: frozenset[date]
    ) -> WorkingCalendar:
        """This calendar with one year's entries replaced (a republished year overrides the old one)."""
        return WorkingCalendar(
            holidays=frozenset(d for d in self.holidays if d.year != year) | holidays,
            makeup_days=frozenset(d for d in self.makeup_days if d.year != year) | makeup_days,
            known_years=self.known_years | {year},
        )

    def next_working_day(self, d: date) -> date:
        """The day itself if it is a working day, otherwise the first working day after it."""
        while not self.is_working_day(d):
            d += _DAY
        return d

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after start (before it when n < 0); start itself when n == 0."""
        step = _DAY if n >= 0 else -_DAY
        d, left = start, abs(n)
        while left:
            d += step
            if self.is_working_day(d):
                left -= 1
        return d

    def add_natural_days(self, start: date, n: int) -> date:
        """The n-th calendar day after start, moved to the next working day if that is a rest day.

        民法典 第二百零三条: 期间的最后一日是法定休假日的，以法定休假日结束的次日为期间的最后一日
        (法定休假日 includes the weekly rest days). n must not be negative.
        """
        if n < 0:
            raise InvalidPeriodError(f"a period of natural days cannot be negative: {n}")
        return self.next_working_day(start + n * _DAY)

    def working_days_between(self, a: date, b: date) -> int:
        """Working days left from a until b: those in (a, b]; when b < a, minus those in [b, a).

        The two halves mirror each other so that
        working_days_between(a, add_working_days(a, n)) == n for every a and n.
        """
        if b < a:
            return -self._count(b - _DAY, a - _DAY)
        return self._count(a, b)

    def _count(self, after: date, until: date) -> int:
        # Day by day: intervals are weeks or months long, and the loop has no edge cases.
        count, d = 0, after + _DAY
        while d <= until:
            count += self.is_working_day(d)
            d += _DAY
        return count
