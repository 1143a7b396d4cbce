"""Notification intents: what is to be said, to whom, and why, before any channel or template is chosen.

A policy turns one event into intents; the outbox stores them under `Intent.key`;
a dispatcher renders and delivers them. The key is derived from the event's
position, the recipient and the purpose only, so replaying the log yields the same
keys and the outbox (and every provider that carries the key) drops the repeat.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

# Bumped only if the canonical form below changes; old keys then stop matching new ones.
KEY_SCHEME = "citypass.notify.v1"


class Purpose(StrEnum):
    """Why a notification is sent; one template per purpose and channel."""

    # Citizens, about their case.
    SUBMITTED = "submitted"
    MATERIALS_REQUESTED = "materials_requested"  # 补正告知, with the full list
    ACCEPTED = "accepted"  # receipt number and deadline
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    EXTENSION_APPROVED = "extension_approved"  # 延长办理时限: by how much, and the new deadline
    CONCLUDED = "concluded"  # the result, in plain words, and what comes next
    CERTIFICATE_READY = "certificate_ready"  # waiting at a window, or 电子证照 issued
    MAILED = "mailed"  # EMS waybill
    COMMITMENT_REVOKED = "commitment_revoked"  # 告知承诺 approval revoked: the reason and the remedies
    HANDOFF_REFUSED = "handoff_refused"  # 跨城通办: the handling city did not take the case on
    RATING_INVITATION = "rating_invitation"  # 好差评
    BAD_RATING_FOLLOW_UP = "bad_rating_follow_up"  # a 差评 received: the unit will call back
    RATING_OUTCOME = "rating_outcome"  # what the unit did about a 差评: rectified, explained, or not counted
    # Citizens, about an appointment: the appointments issue (5) produces these through its own policy.
    APPOINTMENT_REMINDER = "appointment_reminder"
    TURN_NEAR = "turn_near"
    # Department officers.
    NEW_TASK = "new_task"
    LIGHT_YELLOW = "light_yellow"
    LIGHT_RED = "light_red"  # 督办


_CASE = frozenset({"case_number", "item_name", "occurred_at"})
_CITIZEN = _CASE | {"applicant_name"}

# The variables each purpose carries: the contract between the policies that fill them
# and the templates that use them. Every value is display text, already masked.
PURPOSE_VARIABLES: dict[Purpose, frozenset[str]] = {
    Purpose.SUBMITTED: _CITIZEN,
    Purpose.MATERIALS_REQUESTED: _CITIZEN | {"materials", "material_count", "due"},
    Purpose.ACCEPTED: _CITIZEN | {"receipt_number", "acceptance_kind", "deadline", "note"},
    Purpose.SUSPENDED: _CITIZEN | {"procedure", "reason", "expected_end"},
    Purpose.RESUMED: _CITIZEN,
    Purpose.EXTENSION_APPROVED: _CITIZEN | {"extended_by", "deadline", "reason"},
    Purpose.CONCLUDED: _CITIZEN | {"result", "reason", "next_step"},
    Purpose.CERTIFICATE_READY: _CITIZEN | {"method", "reference", "instruction"},
    Purpose.MAILED: _CITIZEN | {"carrier", "waybill_number"},
    Purpose.COMMITMENT_REVOKED: _CITIZEN | {"reason", "next_step"},
    Purpose.HANDOFF_REFUSED: _CITIZEN | {"reason", "next_step"},
    Purpose.RATING_INVITATION: _CITIZEN,
    Purpose.BAD_RATING_FOLLOW_UP: _CITIZEN | {"handling_unit"},
    Purpose.RATING_OUTCOME: _CITIZEN | {"handling_unit", "outcome", "note"},
    Purpose.APPOINTMENT_REMINDER: frozenset({"applicant_name", "item_name", "hall", "appointment_time"}),
    Purpose.TURN_NEAR: frozenset({"applicant_name", "hall", "ticket_number", "waiting_ahead"}),
    Purpose.NEW_TASK: _CASE | {"department", "deadline"},
    Purpose.LIGHT_YELLOW: _CASE | {"department", "deadline"},
    Purpose.LIGHT_RED: _CASE | {"department", "deadline"},
}


class RecipientKind(StrEnum):
    CITIZEN = "citizen"  # one account, by its subject
    DEPARTMENT = "department"  # the officers of one department holding one role


class OfficerRole(StrEnum):
    HANDLER = "handler"  # the department's task handlers (承办)
    HEAD = "head"  # its head, who answers for 督办


@dataclass(frozen=True, slots=True)
class Recipient:
    kind: RecipientKind
    address: str  # the account subject, or the department code
    role: OfficerRole | None = None  # departments only

    def __post_init__(self) -> None:
        if not self.address:
            raise ValueError("a recipient needs an account subject or a department code")
        if (self.kind is RecipientKind.DEPARTMENT) != (self.role is not None):
            raise ValueError("a department recipient names an officer role; a citizen does not")

    @classmethod
    def citizen(cls, subject: str) -> Recipient:
        return cls(RecipientKind.CITIZEN, subject)

    @classmethod
    def department(cls, code: str, role: OfficerRole) -> Recipient:
        return cls(RecipientKind.DEPARTMENT, code, role)


@dataclass(frozen=True, slots=True)
class Intent:
    key: str  # idempotency key: see intent_key
    purpose: Purpose
    recipient: Recipient
    variables: dict[str, str]  # display values, already masked
    urgent: bool  # urgent intents are not deferred by quiet hours
    occurred_at: datetime  # when the event happened
    case_id: UUID | None  # None for intents about something other than a case (appointments)


def intent_key(position: tuple[UUID | str, int], recipient: Recipient, purpose: Purpose) -> str:
    """sha256 hex of the event's position (aggregate id, version), the recipient and the purpose."""
    aggregate_id, version = position
    canonical = [
        KEY_SCHEME,
        str(aggregate_id),
        version,
        recipient.kind.value,
        recipient.address,
        recipient.role.value if recipient.role is not None else "",
        purpose.value,
    ]
    # A JSON array cannot be confused by separators inside a subject or a department code.
    text = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
