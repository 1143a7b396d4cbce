"""Deadlines and lights computed when asked, never stored: a calendar published later changes them.

Rows keep only the facts (acceptance date, time limit, suspensions, extensions).
The calendar and the clock are injected, so a newly loaded year turns a provisional
deadline into a firm one on the next query, without touching the read model.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal

import msgspec

from domain.calendar import WorkingCalendar
from domain.calendar_deadline import Duration, deadline, light
from domain.case.checks import BEIJING
from projections.case_facts import CaseFacts

CalendarProvider = Callable[[], WorkingCalendar]
Clock = Callable[[], datetime]
Light = Literal["green", "yellow", "red"]
_UNIT = {"working_day": "working", "natural_day": "natural", "working": "working", "natural": "natural"}


class DeadlineView(msgspec.Struct, frozen=True, kw_only=True):
    start: date  # the day of acceptance; the clock counts from the next day
    limit_amount: int
    limit_unit: Literal["working", "natural"]
    due: date
    provisional: bool  # relies on a year whose calendar is not yet published
    years_assumed: tuple[int, ...]
    working_days_left: int | None  # None once the case is concluded
    light: Light | None  # None once the case is concluded
    suspended: bool  # the clock is stopped (特别程序)


def today_in_beijing(clock: Clock) -> date:
    return clock().astimezone(BEIJING).date()


def limit_from(row_amount: int | None, row_unit: str | None, catalogue_limit: Any) -> Duration | None:
    """The limit the acceptance recorded, else the catalogue's 承诺时限 (or a bundle's target)."""
    if row_amount is not None and row_unit is not None:
        return Duration(row_amount, _UNIT[row_unit])  # type: ignore[arg-type]
    if isinstance(catalogue_limit, str):
        catalogue_limit = msgspec.json.decode(catalogue_limit)
    if isinstance(catalogue_limit, dict) and "amount" in catalogue_limit:
        return Duration(int(catalogue_limit["amount"]), _UNIT[catalogue_limit["unit"]])  # type: ignore[arg-type]
    return None


def compute(
    facts: CaseFacts, limit: Duration | None, calendar: WorkingCalendar, today: date
) -> DeadlineView | None:
    """None before acceptance, or when no time limit is known for the item."""
    if facts.accepted_on is None or limit is None:
        return None
    computed = deadline(
        facts.accepted_on,
        limit,
        calendar,
        today=today,
        suspensions=facts.suspensions,
        extensions=[Duration(a, u) for a, u in facts.extensions],  # type: ignore[arg-type]
    )
    running = facts.clock_running
    return DeadlineView(
        start=facts.accepted_on,
        limit_amount=limit.amount,
        limit_unit=limit.unit,
        due=computed.due,
        provisional=computed.provisional,
        years_assumed=computed.years_assumed,
        working_days_left=calendar.working_days_between(today, computed.due) if running else None,
        light=light(computed.due, today, calendar) if running else None,
        suspended=facts.suspended,
    )


LIGHT_RANK = {"red": 0, "yellow": 1, "green": 2, None: 3}
