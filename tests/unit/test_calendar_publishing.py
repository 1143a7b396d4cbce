"""Publishing a year's calendar, and the packaged national calendar and year files behind it."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Snapshot

from backend.calendar_data import (
    CalendarFileError,
    base_calendar,
    decode_year,
    encode_year,
    export_year,
    load_year_file,
)
from backend.store.mapper import make_mapper
from domain.calendar import CalendarError, InvalidRegionError, InvalidYearError
from domain.calendar_deadline import Deadline, Duration, deadline
from domain.workcalendar import WorkCalendar

pytestmark = pytest.mark.unit

D = date
NEW_YEAR_2027 = [D(2027, 1, 1), D(2027, 1, 2), D(2027, 1, 3)]
SOURCE = "国办发明电〔2026〕7号 (test)"


def region() -> str:
    return f"{uuid4().int % 900000 + 100000}"


def published(*years: dict[str, Any]) -> WorkCalendar:
    calendar = WorkCalendar(region="430100")
    for year in years:
        calendar.publish_year(**year)
    calendar.collect_events()
    return calendar


def test_one_calendar_per_region() -> None:
    assert WorkCalendar(region="430100").id == WorkCalendar.create_id("430100")
    assert WorkCalendar.create_id("430100") != WorkCalendar.create_id("430200")
    with pytest.raises(InvalidRegionError):
        WorkCalendar.create_id("长沙")


def test_publishing_2027_settles_a_provisional_deadline() -> None:
    calendar = WorkCalendar(region=region())
    calendar.publish_year(2027, reversed(NEW_YEAR_2027), [], SOURCE)
    events = calendar.collect_events()
    assert [type(e).__qualname__ for e in events] == ["WorkCalendar.Registered", "WorkCalendar.YearPublished"]
    assert calendar.years[2027].holidays == tuple(NEW_YEAR_2027)  # sorted

    start, limit = D(2026, 12, 24), Duration(7, "working")
    assert deadline(start, limit, base_calendar(), today=start) == Deadline(D(2027, 1, 4), True, (2027,))
    merged = calendar.working_calendar(base_calendar())
    assert deadline(start, limit, merged, today=start) == Deadline(D(2027, 1, 5), False, ())


def test_republishing_a_year_replaces_it() -> None:
    calendar = published(
        {"year": 2027, "holidays": NEW_YEAR_2027, "makeup_days": [], "source": "first"},
    )
    calendar.publish_year(2027, [D(2027, 1, 1)], [D(2027, 1, 9)], "corrected")
    assert len(calendar.collect_events()) == 1
    merged = calendar.working_calendar(base_calendar())
    assert not merged.is_working_day(D(2027, 1, 1))
    assert merged.is_working_day(D(2027, 1, 9))
    assert calendar.years[2027].source == "corrected"


def test_a_published_year_overrides_the_packaged_one() -> None:
    calendar = published({"year": 2026, "holidays": [D(2026, 1, 1)], "makeup_days": [], "source": SOURCE})
    merged = calendar.working_calendar(base_calendar())
    assert merged.is_working_day(D(2026, 10, 1))  # gone from the republished 2026
    assert not merged.is_working_day(D(2025, 10, 1))  # other years untouched


@pytest.mark.parametrize(
    ("year", "holidays", "makeup_days", "source"),
    [
        (2027, [D(2026, 12, 31)], [], SOURCE),  # not in that year
        (2027, NEW_YEAR_2027, [D(2027, 1, 4)], SOURCE),  # make-up day on a Monday
        (2027, NEW_YEAR_2027, [D(2027, 1, 2)], SOURCE),  # both off and on
        (2027, [], [], SOURCE),  # no holidays at all
        (2027, NEW_YEAR_2027, [], "  "),  # no source
        (2027, [datetime(2027, 1, 1, 9, 0)], [], SOURCE),  # a time of day
        (2027, ["2027-01-01"], [], SOURCE),  # not a date
        (207, [D(207, 1, 1)], [], SOURCE),  # mistyped year
        ("2027", NEW_YEAR_2027, [], SOURCE),
    ],
)
def test_bad_input_raises_and_records_nothing(
    year: Any, holidays: Any, makeup_days: Any, source: str
) -> None:
    calendar = published()
    with pytest.raises(InvalidYearError):
        calendar.publish_year(year, holidays, makeup_days, source)
    assert calendar.collect_events() == []
    assert calendar.years == {} and calendar.version == 1


def test_events_and_snapshots_survive_the_store_mapper() -> None:
    calendar = WorkCalendar(region=region())
    calendar.publish_year(2027, NEW_YEAR_2027, [D(2027, 2, 6)], SOURCE)
    mapper = make_mapper()
    copy: Any = None
    for e in calendar.collect_events():
        copy = mapper.to_domain_event(mapper.to_stored_event(e)).mutate(copy)  # type: ignore[attr-defined]
    assert copy.years == calendar.years and copy.region == calendar.region
    snapshot = mapper.to_domain_event(mapper.to_stored_event(Snapshot.take(calendar)))
    assert snapshot.mutate(None).years == calendar.years  # type: ignore[attr-defined]


def test_the_packaged_calendar() -> None:
    base = base_calendar()
    assert base.known_years == frozenset(range(2004, 2027))
    year = export_year(2026)
    assert D(2026, 2, 23) in year.holidays and D(2026, 2, 21) in year.holidays  # weekend days of 春节 too
    assert year.makeup_days == [
        D(2026, 1, 4),
        D(2026, 2, 14),
        D(2026, 2, 28),
        D(2026, 5, 9),
        D(2026, 9, 20),
        D(2026, 10, 10),
    ]
    assert year.source.startswith("chinesecalendar ")
    with pytest.raises(CalendarFileError, match="2004–2026"):
        export_year(2027)


def test_an_exported_year_reads_back_and_republishes_unchanged() -> None:
    year = export_year(2025)
    assert decode_year(encode_year(year)) == year
    calendar = published(
        {"year": year.year, "holidays": year.holidays, "makeup_days": year.makeup_days, "source": year.source}
    )
    assert calendar.working_calendar(base_calendar()) == base_calendar()


def test_loading_a_year_file(tmp_path: Path) -> None:
    path = tmp_path / "2027.json"
    path.write_text(
        '{"year": 2027, "holidays": ["2027-01-01", "2027-01-02", "2027-01-01"], "makeup_days": [],'
        f' "source": "{SOURCE}"}}',
        encoding="utf-8",
    )
    year = load_year_file(path)
    assert year.holidays == [D(2027, 1, 1), D(2027, 1, 2)] and year.source == SOURCE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "malformed"),
        (
            '{"year": 2027, "holidays": ["2027-02-30"], "makeup_days": [], "source": "x"}',
            r"\$\.holidays\[0\]",
        ),
        ('{"year": 2027, "holidays": [], "makeup_days": []}', "source"),
        ('{"year": 2027, "holidays": [], "makeup_days": [], "source": "x", "note": 1}', "note"),
        (
            '{"year": 2027, "holidays": ["2027-01-01"], "makeup_days": ["2027-01-04"], "source": "x"}',
            "Saturdays",
        ),
    ],
)
def test_bad_year_files_name_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "2027.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarFileError, match=message) as caught:
        load_year_file(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, CalendarError)


def test_a_missing_year_file(tmp_path: Path) -> None:
    with pytest.raises(CalendarFileError, match="cannot read"):
        load_year_file(tmp_path / "missing.json")
