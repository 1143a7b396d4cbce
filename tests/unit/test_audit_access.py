"""The record of an auditor's access: only an auditor, always with a reason, always naming what was read."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from domain.audit import (
    AuditAccess,
    InvalidScopeError,
    NotAnAuditorError,
    Period,
    ReasonRequiredError,
    Subject,
    Via,
)
from domain.case import Actor, InvalidCommandError, Role
from domain.case.checks import BEIJING

pytestmark = pytest.mark.unit

AT = datetime(2026, 10, 9, 9, 30, tzinfo=BEIJING)
AUDITOR = Actor(id="auditor-1", role=Role.AUDITOR, name="审计员甲")
CASE = uuid.UUID(int=7)
MARCH = Period(since=date(2026, 3, 1), until=date(2026, 3, 31))


def record(**overrides: object) -> AuditAccess:
    given: dict[str, object] = {
        "auditor": AUDITOR, "via": Via.API, "subject": Subject.HISTORY, "reason": "电子监察抽查",
        "at": AT, "case_id": CASE, "case_number": "430100202610090000001",
    }  # fmt: skip
    given.update(overrides)
    return AuditAccess.record(uuid.UUID(int=1), **given)  # type: ignore[arg-type]


def test_an_access_is_one_event_with_who_what_why_and_when() -> None:
    access = record(detail="version 3", subject=Subject.STATE)
    (event,) = access.collect_events()
    assert isinstance(event, AuditAccess.Recorded) and event.timestamp == AT
    assert (access.id, access.version, access.created_on) == (uuid.UUID(int=1), 1, AT)
    assert (access.auditor, access.via, access.subject) == (AUDITOR, Via.API, Subject.STATE)
    assert (access.case_id, access.case_number, access.detail) == (CASE, "430100202610090000001", "version 3")
    assert access.reason == "电子监察抽查" and access.period is None


def test_the_time_is_kept_in_beijing_time_and_must_say_its_zone() -> None:
    kept = record(at=AT.astimezone(UTC)).created_on
    assert kept == AT and kept.utcoffset() == timedelta(hours=8)
    with pytest.raises(InvalidCommandError):
        record(at=AT.replace(tzinfo=None))


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.AUDITOR])
def test_only_an_auditor_audits(role: Role) -> None:
    with pytest.raises(NotAnAuditorError):
        record(auditor=Actor(id="someone", role=role))


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("复核", "复核"),
        ("  纪检   移送 ", "纪检 移送"),
        ("申请人430102199003071234投诉", "申请人430***********1234投诉"),  # no personal value in the log
        ("回电13812341234", "回电138****1234"),
        ("x" * 200, "x" * 200),
    ],
)
def test_the_reason_is_kept_trimmed_and_masked(given: str, kept: str) -> None:
    assert record(reason=given).reason == kept


@pytest.mark.parametrize("reason", ["", "  ", "x", " x ", "x" * 201])
def test_a_reason_of_2_to_200_characters_is_required(reason: str) -> None:
    with pytest.raises(ReasonRequiredError, match="2 to 200"):
        record(reason=reason)


@pytest.mark.parametrize(
    ("subject", "case_id", "period", "ok"),
    [
        (Subject.HISTORY, CASE, None, True),
        (Subject.HISTORY, None, None, False),
        (Subject.HISTORY, None, MARCH, False),
        (Subject.STATE, CASE, None, True),
        (Subject.STATE, None, None, False),
        (Subject.EXPORT, CASE, None, True),
        (Subject.EXPORT, None, MARCH, True),
        (Subject.EXPORT, CASE, MARCH, False),
        (Subject.EXPORT, None, None, False),
        (Subject.VERIFICATION, CASE, None, True),
        (Subject.VERIFICATION, None, None, True),  # the whole store
        (Subject.VERIFICATION, None, MARCH, False),
    ],
)
def test_each_subject_names_its_scope(
    subject: Subject, case_id: uuid.UUID | None, period: Period | None, ok: bool
) -> None:
    attempt = lambda: record(subject=subject, case_id=case_id, period=period, case_number=None)  # noqa: E731
    if ok:
        assert attempt().subject is subject
    else:
        with pytest.raises(InvalidScopeError):
            attempt()


def test_a_period_runs_forward_and_covers_at_most_a_year() -> None:
    export = {"subject": Subject.EXPORT, "case_id": None, "case_number": None}
    with pytest.raises(InvalidScopeError, match="ends"):
        record(**export, period=Period(since=date(2026, 3, 2), until=date(2026, 3, 1)))
    one_day = record(**export, period=Period(since=date(2026, 3, 1), until=date(2026, 3, 1)))
    assert one_day.period == Period(since=date(2026, 3, 1), until=date(2026, 3, 1))
    assert record(**export, period=Period(since=date(2025, 3, 1), until=date(2026, 3, 1))).period is not None
    with pytest.raises(InvalidScopeError, match="at most 366 days"):
        record(**export, period=Period(since=date(2025, 3, 1), until=date(2026, 3, 2)))
