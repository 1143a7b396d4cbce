"""Admin routes of the working calendar: publish a year (the November notice), list the known years."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

from litestar import Request, Response, Router, get, post
from litestar.params import JSONBody

from domain.calendar import InvalidYearError
from domain.workcalendar import PublishedYear, check_year
from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.error_handler import problem_response
from miniapp_api.principal import Role
from miniapp_api.problems import ProblemKind
from miniapp_api.schemas import ApiStruct

# Clients switch on the type: never rename this slug.
INVALID_YEAR = ProblemKind(422, "invalid-calendar-year", "The year's calendar is inconsistent")


class KnownYear(Protocol):
    """One year of the calendar in effect; backend.calendars.KnownYear is the real one."""

    @property
    def year(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def published(self) -> bool: ...
    @property
    def holidays(self) -> Sequence[date]: ...
    @property
    def makeup_days(self) -> Sequence[date]: ...


class CalendarAdmin(Protocol):
    """backend.calendars.CalendarService is the real one."""

    async def publish_year(self, year: PublishedYear, actor_subject: str) -> KnownYear: ...

    async def known_years(self) -> Sequence[KnownYear]: ...


class YearIn(ApiStruct, forbid_unknown_fields=True):
    """A year file: `holidays` lists every day off (weekend days inside a holiday period included)."""

    year: int
    holidays: list[date]
    makeup_days: list[date]  # weekend days that become working days (调休)
    source: str  # the notice, e.g. 国办发明电〔2026〕…


class YearOut(ApiStruct):
    year: int
    source: str
    published: bool  # False: packaged with the national calendar; True: published here
    holidays: list[date]
    makeup_days: list[date]


class YearsOut(ApiStruct):
    years: list[YearOut]
    # Deadlines reaching this year or later are provisional (weekends only) until it is published.
    first_provisional_year: int | None


def _out(year: KnownYear) -> YearOut:
    return YearOut(
        year=year.year,
        source=year.source,
        published=year.published,
        holidays=list(year.holidays),
        makeup_days=list(year.makeup_days),
    )


def admin_calendar_router(calendar: CalendarAdmin) -> Router:
    @post("/years", status_code=201, summary="Publish one year's working calendar")
    async def publish(
        request: Request[Any, Any, Any], data: JSONBody[YearIn], principal: CurrentPrincipal
    ) -> Response[Any]:
        try:
            checked = check_year(data.year, data.holidays, data.makeup_days, data.source)
        except InvalidYearError as exc:
            # Answered here, so bad input never reaches the store whatever the problem map holds.
            return problem_response(request, INVALID_YEAR, detail=str(exc))
        published = await calendar.publish_year(checked, principal.subject)
        return Response(_out(published), status_code=201)

    @get("/years", summary="Years the working calendar knows")
    async def years() -> YearsOut:
        known = await calendar.known_years()
        numbers = {k.year for k in known}
        first_gap = None
        if numbers:
            first_gap = next(y for y in range(min(numbers), max(numbers) + 2) if y not in numbers)
        return YearsOut(years=[_out(k) for k in known], first_provisional_year=first_gap)

    return Router(
        path="/api/v1/admin/calendar",
        route_handlers=[publish, years],
        guards=[require_roles(Role.ADMIN)],
        tags=["admin"],
    )
