"""Where working calendars come from: the packaged national calendar, and year files an administrator loads.

A year file is JSON in the shape of `WorkCalendar.publish_year`:

    {"year": 2027, "holidays": ["2027-01-01", ...], "makeup_days": ["2027-02-06", ...],
     "source": "国办发明电〔2026〕…"}

`holidays` lists every day off, weekend days inside a holiday period included;
`makeup_days` lists the weekend days that become working days (调休).
"""

from __future__ import annotations

import functools
from datetime import date
from importlib.metadata import version
from pathlib import Path

import chinese_calendar
import msgspec

from domain.calendar import CalendarError, WorkingCalendar, is_weekend
from domain.workcalendar import check_year


class CalendarFileError(CalendarError):
    """A year file or packaged year that cannot be used, with the reason and where."""


class YearFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One year's calendar as it is exchanged with administrators."""

    year: int
    holidays: list[date]
    makeup_days: list[date]
    source: str


_decode = msgspec.json.Decoder(YearFile).decode
_PACKAGE = f"chinesecalendar {version('chinesecalendar')}"


@functools.cache
def base_calendar() -> WorkingCalendar:
    """The national calendar packaged with chinesecalendar (2004–2026 in 1.11.0), built once."""
    # chinese_calendar.holidays already holds the weekend days inside holiday periods;
    # its workdays holds only the in-lieu days, which are all weekend dates.
    holidays = frozenset(chinese_calendar.holidays)
    makeup = frozenset(d for d in chinese_calendar.workdays if is_weekend(d))
    return WorkingCalendar(
        holidays=holidays, makeup_days=makeup, known_years=frozenset(d.year for d in holidays)
    )


def export_year(year: int) -> YearFile:
    """One packaged year in the year-file shape, for an administrator to check or republish."""
    base = base_calendar()
    if not base.is_known(year):
        first, last = min(base.known_years), max(base.known_years)
        raise CalendarFileError(f"{_PACKAGE} has no calendar for {year} (it covers {first}–{last})")
    return YearFile(
        year=year,
        holidays=sorted(d for d in base.holidays if d.year == year),
        makeup_days=sorted(d for d in base.makeup_days if d.year == year),
        source=_PACKAGE,
    )


def encode_year(year: YearFile) -> bytes:
    """A year file as indented JSON, readable in a diff."""
    return msgspec.json.format(msgspec.json.encode(year), indent=2) + b"\n"


def decode_year(data: bytes | str, *, where: str = "year file") -> YearFile:
    """Parse and validate a year file; errors name `where` and the offending field or date."""
    try:
        parsed = _decode(data)
    except msgspec.DecodeError as exc:  # ValidationError included: msgspec names the JSON path
        raise CalendarFileError(f"{where}: {exc}") from exc
    try:
        checked = check_year(parsed.year, parsed.holidays, parsed.makeup_days, parsed.source)
    except CalendarError as exc:
        raise CalendarFileError(f"{where}: {exc}") from exc
    return YearFile(
        year=checked.year,
        holidays=list(checked.holidays),
        makeup_days=list(checked.makeup_days),
        source=checked.source,
    )


def load_year_file(path: Path) -> YearFile:
    """Read and validate a year file from disk."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CalendarFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return decode_year(data, where=str(path))
