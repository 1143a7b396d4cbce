"""Working days and case deadlines on the real 2026 national calendar, and on a year not yet published."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from backend.calendar_data import base_calendar
from domain.calendar import InvalidPeriodError, InvalidYearError, WorkingCalendar
from domain.calendar_deadline import Deadline, Duration, deadline, light

pytestmark = pytest.mark.unit

CAL = base_calendar()
# A made-up 2027 元旦, as an administrator would publish it in November 2026.
CAL_2027 = CAL.with_year(2027, frozenset({date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)}), frozenset())
D = date


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (D(2026, 10, 1), False),  # 国庆
        (D(2026, 10, 7), False),
        (D(2026, 10, 8), True),
        (D(2026, 9, 20), True),  # Sunday, make-up day for 国庆
        (D(2026, 10, 10), True),  # Saturday, make-up day for 国庆
        (D(2026, 10, 11), False),  # an ordinary Sunday
        (D(2026, 2, 14), True),  # Saturday, make-up day for 春节
        (D(2026, 2, 15), False),
        (D(2026, 2, 23), False),  # a Monday inside 春节
        (D(2026, 2, 24), True),
        (D(2026, 2, 28), True),  # Saturday, make-up day for 春节
        (D(2026, 9, 25), False),  # 中秋, a Friday
        (D(2027, 1, 1), True),  # 2027 unpublished: only weekends are off
        (D(2027, 1, 2), False),
    ],
)
def test_working_days_of_2026(day: date, working: bool) -> None:
    assert CAL.is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (D(2026, 9, 30), 5, D(2026, 10, 13)),  # 10/8, 10/9, 10/10 (Sat), 10/12, 10/13
        (D(2026, 9, 18), 1, D(2026, 9, 20)),  # Friday + 1 lands on the make-up Sunday
        (D(2026, 9, 24), 1, D(2026, 9, 28)),  # over 中秋 and its weekend
        (D(2026, 2, 13), 1, D(2026, 2, 14)),  # the make-up Saturday before 春节
        (D(2026, 2, 13), 2, D(2026, 2, 24)),
        (D(2026, 2, 27), 1, D(2026, 2, 28)),
        (D(2026, 10, 3), 1, D(2026, 10, 8)),  # accepted during a holiday (视为受理): first working day after
        (D(2026, 10, 13), 0, D(2026, 10, 13)),
        (D(2026, 10, 12), -1, D(2026, 10, 10)),
        (D(2026, 10, 8), -1, D(2026, 9, 30)),
    ],
)
def test_add_working_days(start: date, n: int, due: date) -> None:
    assert CAL.add_working_days(start, n) == due
    assert CAL.working_days_between(start, due) == n


@pytest.mark.parametrize(
    ("a", "b", "left"),
    [
        (D(2026, 9, 30), D(2026, 10, 8), 1),
        (D(2026, 10, 8), D(2026, 10, 8), 0),
        (D(2026, 10, 9), D(2026, 10, 8), -1),  # one working day overdue
        (D(2026, 10, 12), D(2026, 10, 9), -2),  # 10/9 and the make-up 10/10 have passed
        (D(2026, 10, 11), D(2026, 10, 10), -1),  # overdue on a Sunday still counts the missed Saturday
    ],
)
def test_working_days_between(a: date, b: date, left: int) -> None:
    assert CAL.working_days_between(a, b) == left


def work(n: int) -> Duration:
    return Duration(n, "working")


def nat(n: int) -> Duration:
    return Duration(n, "natural")


ACCEPTED = D(2026, 11, 2)  # a Monday with an ordinary fortnight after it


@pytest.mark.parametrize(
    ("start", "limit", "options", "due"),
    [
        (D(2026, 9, 30), work(5), {}, D(2026, 10, 13)),
        (D(2026, 9, 1), work(20), {}, D(2026, 9, 29)),
        # Art. 42: +10 working days, counted on from 9/29 over 国庆.
        (D(2026, 9, 1), work(20), {"extensions": [work(10)]}, D(2026, 10, 19)),
        (D(2026, 9, 1), work(20), {"extensions": [work(10), work(15)]}, D(2026, 11, 9)),
        (D(2026, 9, 16), nat(3), {}, D(2026, 9, 20)),  # Saturday last day → the make-up Sunday
        (D(2026, 9, 17), nat(3), {}, D(2026, 9, 20)),  # lands on the make-up Sunday: it stands
        (D(2026, 9, 20), nat(11), {}, D(2026, 10, 8)),  # last day 10/1 → after 国庆
        (D(2026, 9, 20), nat(10), {}, D(2026, 9, 30)),
        (D(2026, 10, 8), work(0), {}, D(2026, 10, 8)),  # 即办
        (D(2026, 10, 3), work(0), {}, D(2026, 10, 8)),  # 即办 on a holiday: the next working day
        (ACCEPTED, work(5), {}, D(2026, 11, 9)),
        # Suspended 11/4 and 11/5, resumed 11/6 (the day of resumption counts again).
        (ACCEPTED, work(5), {"suspensions": [(D(2026, 11, 4), D(2026, 11, 6))]}, D(2026, 11, 11)),
        # Still suspended: as if it resumed today.
        (
            ACCEPTED,
            work(5),
            {"suspensions": [(D(2026, 11, 4), None)], "today": D(2026, 11, 6)},
            D(2026, 11, 11),
        ),
        (
            ACCEPTED,
            work(5),
            {"suspensions": [(D(2026, 11, 4), None)], "today": D(2026, 11, 20)},
            D(2026, 11, 25),
        ),
        (ACCEPTED, work(5), {"suspensions": [(D(2026, 11, 4), D(2026, 11, 4))]}, D(2026, 11, 9)),  # same day
        # A suspension over a weekend costs no working days.
        (ACCEPTED, work(5), {"suspensions": [(D(2026, 11, 7), D(2026, 11, 9))]}, D(2026, 11, 9)),
        # Natural days: the suspended 11/4–11/5 do not count; 11/2 + 5 counted days = 11/9.
        (ACCEPTED, nat(5), {"suspensions": [(D(2026, 11, 4), D(2026, 11, 6))]}, D(2026, 11, 9)),
        # Last counted day Saturday 11/7, next day suspended: due on the first open working day.
        (ACCEPTED, nat(5), {"suspensions": [(D(2026, 11, 9), D(2026, 11, 11))]}, D(2026, 11, 11)),
        (ACCEPTED, work(3), {"extensions": [nat(6)]}, D(2026, 11, 11)),  # 11/5, then 11/11
    ],
)
def test_deadlines(start: date, limit: Duration, options: dict[str, Any], due: date) -> None:
    options.setdefault("today", start)
    assert deadline(start, limit, CAL, **options) == Deadline(due=due, provisional=False, years_assumed=())


@pytest.mark.parametrize(
    ("start", "limit", "before", "after"),
    [
        # Dec 25, 28–31, then the unpublished Jan 1 (a Friday) counts until 元旦 2027 is loaded.
        (D(2026, 12, 24), work(7), D(2027, 1, 4), D(2027, 1, 5)),
        (D(2026, 12, 2), nat(30), D(2027, 1, 1), D(2027, 1, 4)),
        (D(2026, 12, 30), work(20), D(2027, 1, 27), D(2027, 1, 28)),
    ],
)
def test_a_deadline_in_an_unpublished_year_is_provisional_until_published(
    start: date, limit: Duration, before: date, after: date
) -> None:
    assert deadline(start, limit, CAL, today=start) == Deadline(before, True, (2027,))
    assert deadline(start, limit, CAL_2027, today=start) == Deadline(after, False, ())


def test_only_days_looked_at_make_a_deadline_provisional() -> None:
    # Natural days are counted without the calendar; only the last day is checked.
    assert deadline(D(2026, 11, 1), nat(30), CAL, today=D(2026, 11, 1)).provisional is False
    assert deadline(D(2026, 12, 31), work(0), CAL, today=D(2026, 12, 31)).provisional is False
    assert deadline(D(2026, 12, 31), work(1), CAL, today=D(2026, 12, 31)).years_assumed == (2027,)


@pytest.mark.parametrize(
    ("left", "colour"), [(3, "green"), (2, "yellow"), (1, "yellow"), (0, "yellow"), (-1, "red")]
)
def test_lights(left: int, colour: str) -> None:
    today = D(2026, 9, 29)  # three working days ahead spans 国庆: 9/30, 10/8, 10/9
    due = CAL.add_working_days(today, left)
    assert light(due, today, CAL) == colour


def test_red_on_the_rest_day_after_a_missed_deadline() -> None:
    assert light(D(2026, 10, 9), D(2026, 10, 11), CAL) == "red"
    assert light(D(2026, 10, 9), D(2026, 10, 4), CAL) == "yellow"  # five days away, two working days


@pytest.mark.parametrize(
    "make",
    [
        lambda: Duration(-1, "working"),
        lambda: Duration(3, "weeks"),  # type: ignore[arg-type]
        lambda: deadline(
            ACCEPTED, work(1), CAL, today=ACCEPTED, suspensions=[(D(2026, 11, 5), D(2026, 11, 4))]
        ),
        lambda: deadline(ACCEPTED, work(1), CAL, today=ACCEPTED, suspensions=[(D(2026, 11, 5), None)]),
        lambda: CAL.add_natural_days(ACCEPTED, -1),
    ],
)
def test_malformed_periods_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(InvalidPeriodError):
        make()


@pytest.mark.parametrize(
    "fields",
    [
        {"holidays": frozenset({D(2027, 1, 2)}), "makeup_days": frozenset({D(2027, 1, 2)})},
        {"makeup_days": frozenset({D(2027, 1, 4)})},  # a Monday
        {"holidays": frozenset({D(2028, 1, 3)})},  # 2028 is not marked known
    ],
)
def test_an_inconsistent_calendar_is_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(InvalidYearError):
        WorkingCalendar(known_years=frozenset({2027}), **fields)


def test_add_natural_days_applies_the_last_day_rule() -> None:
    assert CAL.add_natural_days(D(2026, 9, 20), 11) == D(2026, 10, 8)
    assert CAL.add_natural_days(D(2026, 9, 20), 0) == D(2026, 9, 20)
