"""An auditor's access (电子监察): each read of a history, a past state, an export or a chain is an event.

One `AuditAccess` per access, with a single event, so recording never contends
with anything: the id comes from outside (a fresh uuid4 in the service), and so
does the time. An access names what was read (a case, a period of submissions,
or the whole store) and why; without a reason there is no access.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from domain.case.checks import beijing_time
from domain.case.values import Actor, Role
from domain.personal import scrub

REASON_MIN, REASON_MAX = 2, 200
PERIOD_MAX_DAYS = 366  # one export covers at most a year of submissions


class AuditError(Exception):
    """Base of the refusals of an audit access."""


class NotAnAuditorError(AuditError):
    """Only an auditor (电子监察) replays, exports or verifies histories."""


class ReasonRequiredError(AuditError, ValueError):
    """The auditor must say why, in 2 to 200 characters."""


class InvalidScopeError(AuditError, ValueError):
    """What the access names does not fit what is read: a case, a period, or the whole store."""


class Subject(StrEnum):
    """What the auditor read."""

    HISTORY = "history"  # the ordered events of one case
    STATE = "state"  # one case as it stood at a version or a time
    EXPORT = "export"  # JSON Lines of one case, or of the cases submitted in a period
    VERIFICATION = "verification"  # the hash chain of one case, or of the whole store


class Via(StrEnum):
    """How the auditor reached the store."""

    API = "api"
    CLI = "cli"


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """Days of submission in Beijing time, both ends included."""

    since: date
    until: date


class AuditAccess(Aggregate):
    class Recorded(Aggregate.Created):
        auditor: Actor
        via: Via
        subject: Subject
        case_id: UUID | None
        case_number: str | None
        period: Period | None
        detail: str | None  # which part of the subject: "version 7", "at 2026-10-01T09:00:00+08:00"
        reason: str

    @classmethod
    def record(
        cls,
        access_id: UUID,
        *,
        auditor: Actor,
        via: Via,
        subject: Subject,
        reason: str,
        at: datetime,
        case_id: UUID | None = None,
        case_number: str | None = None,
        period: Period | None = None,
        detail: str | None = None,
    ) -> AuditAccess:
        """Record one access; refused unless an auditor names what is read and why."""
        if auditor.role is not Role.AUDITOR:
            raise NotAnAuditorError(f"an actor in the role {auditor.role!s} may not audit case histories")
        _check_scope(subject, case_id, period)
        return cls._create(
            cls.Recorded,
            id=access_id,
            auditor=auditor,
            via=via,
            subject=subject,
            case_id=case_id,
            case_number=case_number,
            period=period,
            detail=detail,
            reason=_reason(reason),
            timestamp=beijing_time(at),
        )

    def __init__(
        self,
        auditor: Actor,
        via: Via,
        subject: Subject,
        case_id: UUID | None,
        case_number: str | None,
        period: Period | None,
        detail: str | None,
        reason: str,
    ) -> None:
        self.auditor, self.via, self.subject = auditor, via, subject
        self.case_id, self.case_number, self.period = case_id, case_number, period
        self.detail, self.reason = detail, reason


def _reason(text: str) -> str:
    # An ID or mobile number typed into the reason stays masked: the access log is read widely.
    stated = " ".join(text.split())
    if not REASON_MIN <= len(stated) <= REASON_MAX:
        raise ReasonRequiredError(
            f"an auditor states why, in {REASON_MIN} to {REASON_MAX} characters ({len(stated)} given)"
        )
    return scrub(stated)


def _check_scope(subject: Subject, case_id: UUID | None, period: Period | None) -> None:
    if period is not None:
        if subject is not Subject.EXPORT:
            raise InvalidScopeError(f"a {subject} names a case, not a period")
        if case_id is not None:
            raise InvalidScopeError("an export names a case or a period, not both")
        if period.since > period.until:
            raise InvalidScopeError(f"the period ends ({period.until}) before it starts ({period.since})")
        if (period.until - period.since).days >= PERIOD_MAX_DAYS:
            raise InvalidScopeError(f"an export covers at most {PERIOD_MAX_DAYS} days")
    elif case_id is None and subject is not Subject.VERIFICATION:
        raise InvalidScopeError(
            f"a {subject} names a case" + (" or a period" if subject is Subject.EXPORT else "")
        )
