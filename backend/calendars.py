"""The working calendar in effect: the packaged national calendar with the region's published years over it.

Deadlines everywhere read it: the case timers through `current()`, read models
through the zero-argument `provider()`. Publishing goes through the WorkCalendar
aggregate, so each published year is an event that the deadline timers react to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from backend.calendar_data import YearFile, base_calendar, load_year_file
from backend.store.aggregates import AggregateStore
from backend.store.errors import AggregateNotFoundError
from domain.calendar import WorkingCalendar
from domain.workcalendar import PublishedYear, WorkCalendar

if TYPE_CHECKING:
    from backend.runtime import Runtime

log = logging.getLogger(__name__)

Aggregates = AggregateStore | Callable[[], AggregateStore]


class KnownYear(msgspec.Struct, frozen=True, kw_only=True):
    """One year the calendar in effect knows, and where its entries come from."""

    year: int
    source: str
    published: bool  # True: published in this deployment; False: packaged with chinesecalendar
    holidays: tuple[date, ...]
    makeup_days: tuple[date, ...]


class CalendarService:
    """Publishes years for one region and answers the calendar in effect, cached by aggregate version."""

    def __init__(self, aggregates: Aggregates, region: str, *, base: WorkingCalendar | None = None) -> None:
        """`aggregates` may be a callable: the runtime creates its store only at start-up."""
        self._aggregates = aggregates
        self.region = region
        self.calendar_id = WorkCalendar.create_id(region)  # refuses a malformed region at once
        self._base = base if base is not None else base_calendar()
        self._calendar = self._base
        self._published: dict[int, PublishedYear] = {}
        self._version = 0  # version of the WorkCalendar the cache reflects; 0: none yet
        self._checked_at = float("-inf")  # monotonic time of the last look for newer events
        self._lock = asyncio.Lock()
        self._refresher: asyncio.Task[None] | None = None

    @property
    def aggregates(self) -> AggregateStore:
        a = self._aggregates
        return a if isinstance(a, AggregateStore) else a()

    async def publish(self, year_file: YearFile, actor_subject: str) -> int:
        """Append the year (creating the region's calendar if missing); return the calendar's new version.

        The YearPublished event has no actor field, so who published is logged here only.
        """

        def publish_year(calendar: WorkCalendar) -> int:
            calendar.publish_year(year_file.year, year_file.holidays, year_file.makeup_days, year_file.source)
            return int(calendar.version)

        try:
            version = await self.aggregates.execute(self.calendar_id, publish_year)
        except AggregateNotFoundError:
            calendar = WorkCalendar(region=self.region)
            version = publish_year(calendar)
            # A concurrent first publication conflicts here; the caller may simply retry.
            await self.aggregates.save(calendar)
        log.info(
            "calendar %s: %s published %d (%s)", self.region, actor_subject, year_file.year, year_file.source
        )
        await self.current()
        return version

    async def current(self) -> WorkingCalendar:
        """The calendar in effect; reloads only when the region's calendar has new events."""
        async with self._lock:
            self._checked_at = time.monotonic()
            newer = await self.aggregates.recorder.select_events(self.calendar_id, gt=self._version, limit=1)
            if newer:
                calendar: WorkCalendar = await self.aggregates.get(self.calendar_id)
                self._calendar = calendar.working_calendar(self._base)
                self._published = dict(calendar.years)
                self._version = int(calendar.version)
            return self._calendar

    async def recent(self, max_age_seconds: float = 60.0) -> WorkingCalendar:
        """The calendar in effect as of at most `max_age_seconds` ago: no query while that is fresh.

        For the notices, which state a deadline in passing: a year published a minute ago
        may be missing from a notice, never from a case's own deadline (see current()).
        """
        if time.monotonic() - self._checked_at < max_age_seconds:
            return self._calendar
        return await self.current()

    def provider(self) -> WorkingCalendar:
        """The last loaded calendar, for read models that need a zero-argument callable."""
        return self._calendar

    async def known_years(self) -> list[KnownYear]:
        """Every year the calendar in effect knows, oldest first; published years override packaged ones."""
        await self.current()
        base = self._base
        years = {
            y: KnownYear(
                year=y,
                source="chinesecalendar",
                published=False,
                holidays=tuple(sorted(d for d in base.holidays if d.year == y)),
                makeup_days=tuple(sorted(d for d in base.makeup_days if d.year == y)),
            )
            for y in base.known_years
        }
        for y, p in self._published.items():
            years[y] = KnownYear(
                year=y, source=p.source, published=True, holidays=p.holidays, makeup_days=p.makeup_days
            )
        return [years[y] for y in sorted(years)]

    async def publish_year(self, year: PublishedYear, actor_subject: str) -> KnownYear:
        """The API's entry: publish an already validated year and answer its summary."""
        year_file = YearFile(
            year=year.year,
            holidays=list(year.holidays),
            makeup_days=list(year.makeup_days),
            source=year.source,
        )
        await self.publish(year_file, actor_subject)
        return next(k for k in await self.known_years() if k.year == year.year)

    def start_refreshing(self, every_seconds: float = 60.0) -> None:
        """Keep `provider()` fresh in processes that publish nothing themselves (HTTP workers)."""

        async def loop() -> None:
            while True:
                try:
                    await self.current()
                except Exception:  # a transient database error must not end the loop
                    log.exception("could not refresh the working calendar; keeping the last one")
                await asyncio.sleep(every_seconds)

        self._refresher = asyncio.create_task(loop(), name="calendar-refresh")

    async def stop_refreshing(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None


async def publish_calendar_file(runtime: Runtime, path: Path | str, region: str) -> str:
    """`citypass calendar publish FILE`: validate a year file and publish it for the region."""
    year_file = load_year_file(Path(path))
    service = CalendarService(runtime.aggregates, region)
    version = await service.publish(year_file, "cli")
    return (
        f"published {year_file.year} for {region}: {len(year_file.holidays)} holidays, "
        f"{len(year_file.makeup_days)} make-up days ({year_file.source}); calendar version {version}"
    )
