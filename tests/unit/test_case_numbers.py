"""办件编号: the default format, configurable patterns, and the numbers that must be refused."""

from __future__ import annotations

from datetime import date

import pytest

from domain.case import CaseError, CaseNumberError, format_case_number

pytestmark = pytest.mark.unit

DAY = date(2026, 10, 10)  # a 调休 Saturday: numbering does not care


@pytest.mark.parametrize(
    ("region", "seq", "pattern", "expected"),
    [
        ("430100", 1, None, "43010020261010000001"),
        ("430100", 999_999, None, "43010020261010999999"),
        ("430200", 42, None, "43020020261010000042"),
        ("430100", 7, "{region}-{yyyy}-{seq:08d}", "430100-2026-00000007"),
        ("430300", 12, "XT{region}{yyyy}{mm}{dd}{seq:04d}", "XT430300202610100012"),
        ("430100", 1_234_567, "{region}{seq}", "4301001234567"),  # no padding, no width to overflow
    ],
)
def test_case_numbers_follow_the_pattern(region: str, seq: int, pattern: str | None, expected: str) -> None:
    number = (
        format_case_number(region, DAY, seq)
        if pattern is None
        else format_case_number(region, DAY, seq, pattern)
    )
    assert number == expected


@pytest.mark.parametrize(
    ("region", "seq", "pattern"),
    [
        ("430100", 1_000_000, "{region}{yyyymmdd}{seq:06d}"),  # would grow a seventh digit
        ("430100", 0, "{region}{yyyymmdd}{seq:06d}"),
        ("430100", -3, "{region}{yyyymmdd}{seq:06d}"),
        ("4301", 1, "{region}{yyyymmdd}{seq:06d}"),
        ("43O100", 1, "{region}{yyyymmdd}{seq:06d}"),
        ("430100", 1, "{region}{yyyymmdd}"),  # no sequence: every case of the day would share a number
        ("430100", 1, "{yyyymmdd}{seq:06d}"),  # no region: two cities' numbers would collide
        ("430100", 1, "{region}{seq:06d}{hall}"),
        ("430100", 1, "{region}{seq:06d"),
    ],
)
def test_numbers_that_cannot_be_unique_are_refused(region: str, seq: int, pattern: str) -> None:
    with pytest.raises(CaseNumberError):
        format_case_number(region, DAY, seq, pattern)


def test_a_case_number_error_is_a_case_error_and_a_value_error() -> None:
    assert issubclass(CaseNumberError, CaseError) and issubclass(CaseNumberError, ValueError)
