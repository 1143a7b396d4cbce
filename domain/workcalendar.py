"""A region's published working calendars: the State Council announces each next year every November."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from uuid import UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate, event

from domain.calendar import InvalidRegionError, InvalidYearError, WorkingCalendar, is_weekend

# Never change: every region's calendar id is derived from it.
WORK_CALENDAR_NAMESPACE = UUID("c74a654c-54b7-5414-83bb-fe818d2862f7")

# Wide enough for any real calendar, narrow enough to catch a mistyped year (207, 20277).
_FIRST_YEAR, _LAST_YEAR = 2000, 2100


class PublishedYear(msgspec.Struct, frozen=True):
    """One year's holidays and make-up working days, and the notice they came from."""

    year: int
    holidays: tuple[date, ...]
    makeup_days: tuple[date, ...]
    source: str


def _dates(year: int, kind: str, values: Iterable[date]) -> tuple[date, ...]:
    out = set()
    for d in values:
        # datetime is a date subclass; a time of day here means the caller mixed up its types.
        if not isinstance(d, date) or isinstance(d, datetime):
            raise InvalidYearError(f"{kind}: {d!r} is not a date")
        if d.year != year:
            raise InvalidYearError(f"{kind}: {d} is not in {year}")
        out.add(d)
    return tuple(sorted(out))


def check_year(
    year: int, holidays: Iterable[date], makeup_days: Iterable[date], source: str
) -> PublishedYear:
    """Validate one year's calendar and return it in canonical form (sorted, without duplicates)."""
    if isinstance(year, bool) or not isinstance(year, int) or not _FIRST_YEAR <= year <= _LAST_YEAR:
        raise InvalidYearError(f"year must be an integer from {_FIRST_YEAR} to {_LAST_YEAR}, not {year!r}")
    off = _dates(year, "holidays", holidays)
    on = _dates(year, "makeup_days", makeup_days)
    if not off:
        # Every real year has 元旦 and 春节; an empty list would mark the year known with weekends only.
        raise InvalidYearError(f"{year}: no holidays given")
    if weekdays := [d for d in on if not is_weekend(d)]:
        raise InvalidYearError(f"makeup_days must be Saturdays or Sundays: {[str(d) for d in weekdays]}")
    if clash := sorted(set(off) & set(on)):
        raise InvalidYearError(f"both a holiday and a make-up day: {[str(d) for d in clash]}")
    if not isinstance(source, str) or not source.strip():
        raise InvalidYearError(
            "source must name the notice the calendar comes from (e.g. 国办发明电〔2026〕…)"
        )
    return PublishedYear(year=year, holidays=off, makeup_days=on, source=source.strip())


class WorkCalendar(Aggregate):
    """The working calendars an administrator has published for one region, by year."""

    @staticmethod
    def create_id(region: str) -> UUID:
        """One calendar per region, so its id follows from the region code."""
        if not (isinstance(region, str) and len(region) == 6 and region.isascii() and region.isdigit()):
            raise InvalidRegionError(
                f"region must be a six-digit division code such as 430100, not {region!r}"
            )
        return uuid5(WORK_CALENDAR_NAMESPACE, region)

    @event("Registered")
    def __init__(self, region: str) -> None:
        self.region = region
        self.years: dict[int, PublishedYear] = {}

    def publish_year(
        self, year: int, holidays: Iterable[date], makeup_days: Iterable[date], source: str
    ) -> None:
        """Publish (or republish, replacing) one year's calendar; nothing is recorded if it is invalid."""
        checked = check_year(year, holidays, makeup_days, source)
        self._year_published(checked.year, checked.holidays, checked.makeup_days, checked.source)

    @event("YearPublished")
    def _year_published(
        self, year: int, holidays: tuple[date, ...], makeup_days: tuple[date, ...], source: str
    ) -> None:
        self.years[year] = PublishedYear(year=year, holidays=holidays, makeup_days=makeup_days, source=source)

    def working_calendar(self, base: WorkingCalendar) -> WorkingCalendar:
        """The base table (the packaged national calendar) with every published year laid over it."""
        calendar = base
        for published in self.years.values():
            calendar = calendar.with_year(
                published.year, frozenset(published.holidays), frozenset(published.makeup_days)
            )
        return calendar
