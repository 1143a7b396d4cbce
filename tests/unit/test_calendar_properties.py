"""Properties of working-day counting and deadlines, over published, unpublished and weekends-only years."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.calendar_data import base_calendar
from domain.calendar import WorkingCalendar
from domain.calendar_deadline import Duration, deadline

pytestmark = pytest.mark.unit

BASE = base_calendar()
CALENDARS = st.sampled_from(
    [
        BASE,
        BASE.with_year(2027, frozenset({date(2027, 1, 1), date(2027, 2, 8)}), frozenset({date(2027, 2, 6)})),
        WorkingCalendar(),
    ]
)
# Around the edge of the packaged data, so deadlines cross into years that are not published.
DAYS = st.dates(date(2025, 9, 1), date(2027, 3, 1))
LIMITS = st.builds(Duration, st.integers(0, 45), st.sampled_from(["working", "natural"]))
SUSPENSION = st.tuples(DAYS, st.integers(0, 40)).map(lambda s: (s[0], s[0] + timedelta(days=s[1])))


@given(CALENDARS, DAYS, LIMITS, st.lists(SUSPENSION, max_size=3), st.lists(LIMITS, max_size=2))
def test_a_deadline_falls_on_an_open_working_day(
    calendar: WorkingCalendar,
    start: date,
    limit: Duration,
    suspensions: list[tuple[date, date]],
    extensions: list[Duration],
) -> None:
    due = deadline(start, limit, calendar, today=start, suspensions=suspensions, extensions=extensions).due
    assert due >= start
    assert calendar.is_working_day(due)
    assert not any(s <= due < e for s, e in suspensions)


@given(CALENDARS, DAYS, DAYS, st.integers(0, 60), st.integers(0, 60))
def test_add_working_days_is_monotone(calendar: WorkingCalendar, a: date, b: date, m: int, n: int) -> None:
    a, b = min(a, b), max(a, b)
    m, n = min(m, n), max(m, n)
    assert calendar.add_working_days(a, n) <= calendar.add_working_days(b, n)
    assert calendar.add_working_days(a, m) <= calendar.add_working_days(a, n)


@given(CALENDARS, DAYS, st.integers(-60, 60))
def test_counting_back_what_was_added(calendar: WorkingCalendar, a: date, n: int) -> None:
    assert calendar.working_days_between(a, calendar.add_working_days(a, n)) == n


@given(CALENDARS, DAYS, LIMITS, SUSPENSION, st.lists(LIMITS, max_size=2))
def test_a_suspension_never_shortens_a_deadline(
    calendar: WorkingCalendar,
    start: date,
    limit: Duration,
    suspension: tuple[date, date],
    extensions: list[Duration],
) -> None:
    plain = deadline(start, limit, calendar, today=start, extensions=extensions).due
    suspended = deadline(
        start, limit, calendar, today=start, suspensions=[suspension], extensions=extensions
    ).due
    assert suspended >= plain


@given(CALENDARS, DAYS, LIMITS, SUSPENSION, st.integers(0, 30))
def test_an_open_suspension_is_one_that_resumes_today(
    calendar: WorkingCalendar, start: date, limit: Duration, suspension: tuple[date, date], later: int
) -> None:
    begun, today = suspension
    open_ = deadline(start, limit, calendar, today=today, suspensions=[(begun, None)])
    assert open_ == deadline(start, limit, calendar, today=today, suspensions=[(begun, today)])
    # Staying suspended longer never brings the deadline closer.
    longer = deadline(
        start, limit, calendar, today=today + timedelta(days=later), suspensions=[(begun, None)]
    )
    assert longer.due >= open_.due


@given(DAYS, LIMITS)
def test_provisional_exactly_when_an_unpublished_year_was_needed(start: date, limit: Duration) -> None:
    result = deadline(start, limit, BASE, today=start)
    assert result.provisional == bool(result.years_assumed)
    assert set(result.years_assumed) <= {2027}
    if result.due.year == 2027:
        assert result.provisional  # the last day itself had to be checked
