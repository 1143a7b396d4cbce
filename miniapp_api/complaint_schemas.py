"""The wire shapes of complaints (请你来找茬 / 办不成事); camelCase on the wire, domain values inside."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from msgspec import Meta

from domain.complaint import Complaint, ComplaintCategory
from domain.complaint.values import NAME_LIMIT, TEXT_LIMIT, TITLE_LIMIT
from miniapp_api.principal import DepartmentCode
from miniapp_api.schemas import ApiStruct

Title = Annotated[str, Meta(min_length=1, max_length=TITLE_LIMIT)]
Text = Annotated[str, Meta(min_length=1, max_length=TEXT_LIMIT)]
Name = Annotated[str, Meta(min_length=1, max_length=NAME_LIMIT)]
RequestId = Annotated[str, Meta(min_length=1, max_length=64)]


class ComplaintIn(ApiStruct, forbid_unknown_fields=True):
    category: ComplaintCategory
    title: Title
    description: Text
    hall: Name | None = None
    department_hint: Name | None = None
    item_code: Name | None = None
    contact: Annotated[str, Meta(min_length=5, max_length=20)] | None = None  # a phone number
    anonymous_to_staff: bool = False  # staff never learn who complained
    client_request_id: RequestId | None = None  # the same id again returns the same complaint


class ConfirmationIn(ApiStruct, forbid_unknown_fields=True):
    satisfied: bool
    comment: Text | None = None


class WithdrawalIn(ApiStruct, forbid_unknown_fields=True):
    reason: Text


class RoutingIn(ApiStruct, forbid_unknown_fields=True):
    department: DepartmentCode
    reason: Text | None = None  # required when moving it from another department, refused otherwise


class AnswerIn(ApiStruct, forbid_unknown_fields=True):
    reply: Text
    resolved: bool


class ComplaintOut(ApiStruct):
    """What a command did: the complaint's state afterwards."""

    complaint_id: UUID
    number: str
    state: str
    state_label: str
    department: str | None
    due: date | None
    reopened: int
    escalated: bool
    version: int


def complaint_out(c: Complaint) -> ComplaintOut:
    return ComplaintOut(
        complaint_id=c.id,
        number=c.number,
        state=c.state.value,
        state_label=c.state.label,
        department=c.department,
        due=c.due,
        reopened=c.reopened,
        escalated=c.escalated,
        version=c.version,
    )


class ComplaintRowOut(ApiStruct):
    """A complaint as a list shows it; free text with ID and mobile numbers masked."""

    complaint_id: UUID
    number: str
    category: str
    category_label: str
    title: str
    description: str
    hall: str | None
    department_hint: str | None
    item_code: str | None
    contact: str | None  # masked; absent for staff when anonymous
    submitter: str | None  # absent for staff when anonymous
    anonymous: bool
    state: str
    state_label: str
    department: str | None
    due: date | None
    working_days_left: int | None
    light: str  # green, yellow or red: the department's warning light
    overdue: bool
    reopened: int
    submitted_at: datetime
    answered_at: datetime | None
    reply: str | None
    resolved: bool | None
    comment: str | None
    satisfied: bool | None
    closed_by_default: bool
    escalated: bool
