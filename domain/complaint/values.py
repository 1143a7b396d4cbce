"""What a complaint speaks in: its categories and states, a routing step, its refusals and argument checks."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal, TypeAlias

import msgspec

from domain.case.checks import beijing_time
from domain.personal import Phone

TITLE_LIMIT = 60
TEXT_LIMIT = 2000  # description, reply, comment and reason alike: free text a person wrote
NAME_LIMIT = 100  # department, hall and item code: short labels, not prose

LightColour: TypeAlias = Literal["green", "yellow", "red"]
# DOMAIN.md "Time limits": yellow at 2 working days left or less.
YELLOW_AT = 2


class ComplaintError(Exception):
    """Base of every refusal by a complaint; a refused command appends nothing."""


class ComplaintStateError(ComplaintError):
    """The complaint is not in a state for this command (answering a withdrawn complaint)."""


class NotAuthorisedError(ComplaintError):
    """This actor may not issue this command: wrong role, another department, another account."""


class InvalidComplaintError(ComplaintError):
    """The command's arguments are malformed (a blank reply, a title too long, a due date already past)."""


class ComplaintCategory(StrEnum):
    CANNOT_GET_DONE = "cannot_get_done"
    ATTITUDE = "attitude"
    EFFICIENCY = "efficiency"
    POLICY = "policy"
    PLATFORM = "platform"
    OTHER = "other"

    @property
    def label(self) -> str:
        return _CATEGORY_LABELS[self]


_CATEGORY_LABELS = {
    ComplaintCategory.CANNOT_GET_DONE: "办不成事",
    ComplaintCategory.ATTITUDE: "服务态度",
    ComplaintCategory.EFFICIENCY: "办事效率",
    ComplaintCategory.POLICY: "政策咨询",
    ComplaintCategory.PLATFORM: "平台问题",
    ComplaintCategory.OTHER: "其他",
}


class ComplaintState(StrEnum):
    SUBMITTED = "submitted"  # waiting for the desk to route it
    ROUTED = "routed"  # with a department that has not signed for it yet
    ACCEPTED = "accepted"  # 签收: the department is working on it
    ANSWERED = "answered"  # waiting for the citizen to confirm
    REOPENED = "reopened"  # 重办: the citizen was not satisfied, back with the department
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]


_STATE_LABELS = {
    ComplaintState.SUBMITTED: "已提交",
    ComplaintState.ROUTED: "已转办",
    ComplaintState.ACCEPTED: "已签收",
    ComplaintState.ANSWERED: "已答复",
    ComplaintState.REOPENED: "重新办理",
    ComplaintState.CLOSED: "已办结",
    ComplaintState.WITHDRAWN: "已撤回",
}

# A department holds it and owes an answer by the due date: the deadline clock runs.
WITH_DEPARTMENT = frozenset({ComplaintState.ROUTED, ComplaintState.ACCEPTED, ComplaintState.REOPENED})
ENDED = frozenset({ComplaintState.CLOSED, ComplaintState.WITHDRAWN})


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """What the citizen reported, kept exactly as written: the read models scrub ID and phone numbers."""

    category: ComplaintCategory
    title: str
    description: str
    hall: str | None = None
    department_hint: str | None = None  # the citizen's guess; the desk decides where it goes
    item_code: str | None = None  # 事项编码, when the problem concerns one service item
    contact: Phone | None = None
    anonymous_to_staff: bool = False


class Routing(msgspec.Struct, frozen=True, kw_only=True):
    """One step of the routing history: which department, owing an answer by when, and why it moved."""

    department: str
    due: date
    at: datetime
    by: str  # the routing desk's actor id; staff ids are not personal information
    reason: str | None = None  # None for the first routing


# Argument checks. Each raises InvalidComplaintError naming what was wrong, never echoing free text.


def moment(at: datetime) -> datetime:
    """`at` in Beijing time; a naive datetime is refused here so the refusal is a ComplaintError."""
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidComplaintError("a command's time must be a datetime with a time zone")
    return beijing_time(at)


def text(value: object, what: str, limit: int = TEXT_LIMIT) -> str:
    """Free text is kept exactly as written; only blank or overlong text is refused."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidComplaintError(f"{what} is required")
    if len(value) > limit:
        raise InvalidComplaintError(f"{what} has {len(value)} characters; at most {limit} are allowed")
    return value


def optional_text(value: object, what: str, limit: int = TEXT_LIMIT) -> str | None:
    return None if value is None else text(value, what, limit)


def due_date(value: object, at: datetime, what: str = "due date") -> date:
    # A datetime is a date too; refuse it, since its hour would be silently dropped.
    if type(value) is not date:
        raise InvalidComplaintError(f"{what} must be a date")
    if value < at.date():
        raise InvalidComplaintError(f"{what} {value} is before today ({at.date()})")
    return value


def checked(report: Report) -> Report:
    """The report as the citizen may submit it. Checked here, not in __post_init__, so that
    events already stored still decode if these rules ever tighten."""
    try:
        category = ComplaintCategory(report.category)
    except ValueError:
        raise InvalidComplaintError(f"unknown complaint category {report.category!r}") from None
    text(report.title, "title", TITLE_LIMIT)
    text(report.description, "description")
    optional_text(report.hall, "hall", NAME_LIMIT)
    optional_text(report.department_hint, "department hint", NAME_LIMIT)
    optional_text(report.item_code, "item code", NAME_LIMIT)
    # msgspec does not check types on construction, and the store seals personal values by their
    # type: a contact number passed as a bare str would be kept in clear.
    if report.contact is not None and not isinstance(report.contact, Phone):
        raise InvalidComplaintError("contact must be a Phone")
    if not isinstance(report.anonymous_to_staff, bool):
        raise InvalidComplaintError("anonymous_to_staff must be true or false")
    return msgspec.structs.replace(report, category=category)


def complaint_number(value: object) -> str:
    # The number is drawn outside (its format is a setting), so only its shape is checked here.
    if not isinstance(value, str) or not value or not value.isprintable() or any(c.isspace() for c in value):
        raise InvalidComplaintError("a complaint number is required, printable and without spaces")
    return value
