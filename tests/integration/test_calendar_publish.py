"""Publishing a year through CalendarService: the calendar in effect, and provisional case deadlines moved."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from backend.calendar_data import YearFile
from backend.calendars import CalendarService, publish_calendar_file
from domain.calendar import InvalidYearError
from tests.integration.case_deadlines_support import (  # noqa: F401 (fixture)
    SOCIETY,
    Harness,
    accepted,
    at,
    beijing,
    harness_fixture,
)

pytestmark = pytest.mark.integration

SOURCE = "国办发明电〔2026〕(test)"
NEW_YEAR_2027 = YearFile(
    year=2027, holidays=[date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)], makeup_days=[], source=SOURCE
)


async def test_publishing_2027_moves_a_provisional_overdue_timer(harness: Harness) -> None:
    case = accepted(at(2026, 12, 28), SOCIETY)  # 20 working days run into 2027
    await harness.save(case)
    # Weekends only in 2027: 12/29–12/31, then 17 weekdays of January from Friday 1/1.
    assert await harness.timers(case.id) == {
        "case.due_soon:2027-01-25": (beijing(date(2027, 1, 21)), False),
        "case.overdue:2027-01-25": (beijing(date(2027, 1, 26)), False),
    }
    facts = await harness.pool.fetchrow("SELECT facts FROM case_deadline_facts WHERE case_id = $1", case.id)
    assert json.loads(facts["facts"])["provisional"] is True

    assert await harness.calendars.publish(NEW_YEAR_2027, "admin-1") == 2  # Registered, YearPublished
    await harness.catch_up()
    # 元旦 on Friday 1/1 costs one working day.
    assert await harness.timers(case.id) == {
        "case.due_soon:2027-01-26": (beijing(date(2027, 1, 22)), False),
        "case.overdue:2027-01-26": (beijing(date(2027, 1, 27)), False),
    }
    facts = await harness.pool.fetchrow("SELECT facts FROM case_deadline_facts WHERE case_id = $1", case.id)
    assert json.loads(facts["facts"])["provisional"] is False


async def test_the_calendar_in_effect_follows_publications(harness: Harness) -> None:
    service: CalendarService = harness.calendars
    assert not service.provider().is_known(2027)
    assert not (await service.current()).is_known(2027)
    await service.publish(NEW_YEAR_2027, "admin-1")
    assert not service.provider().is_working_day(date(2027, 1, 1))
    # Another process's service sees it on its next look, without a restart.
    other = CalendarService(harness.store, "430100")
    assert (await other.current()).is_known(2027) and other.provider().is_known(2027)
    # Republishing replaces the year; the base years stay packaged.
    corrected = YearFile(year=2027, holidays=[date(2027, 1, 1)], makeup_days=[], source=SOURCE + " 更正")
    assert await service.publish(corrected, "admin-1") == 3
    assert (await other.current()).is_working_day(date(2027, 1, 2)) is False  # a Saturday all the same
    years = {y.year: y for y in await other.known_years()}
    assert (years[2027].published, years[2027].source, years[2027].holidays) == (
        True,
        SOURCE + " 更正",
        (date(2027, 1, 1),),
    )
    assert years[2026].published is False and date(2026, 10, 1) in years[2026].holidays
    # Another region's calendar is its own.
    assert not (await CalendarService(harness.store, "430200").current()).is_known(2027)


async def test_a_bad_year_appends_nothing(harness: Harness) -> None:
    weekday = YearFile(year=2027, holidays=[date(2027, 1, 1)], makeup_days=[date(2027, 1, 4)], source=SOURCE)
    with pytest.raises(InvalidYearError):
        await harness.calendars.publish(weekday, "admin-1")
    assert (
        await harness.pool.fetchval("SELECT count(*) FROM stored_events WHERE topic LIKE '%WorkCalendar%'")
        == 0
    )


async def test_the_cli_function_publishes_a_year_file(harness: Harness, tmp_path: Path) -> None:
    path = tmp_path / "2027.json"
    path.write_text(
        json.dumps({"year": 2027, "holidays": ["2027-01-01"], "makeup_days": [], "source": SOURCE})
    )
    runtime: Any = SimpleNamespace(aggregates=harness.store)
    said = await publish_calendar_file(runtime, path, "430100")
    assert said.startswith("published 2027 for 430100: 1 holidays, 0 make-up days")
    assert (await CalendarService(harness.store, "430100").current()).is_known(2027)
