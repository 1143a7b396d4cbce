"""What the audit routes answer: unmasked histories, past states and chain verdicts, for auditors only.

`what` and `state` hold the domain's own field names (snake_case), as the events and the
case record them; only the schema's own fields are camelCase.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from miniapp_api.schemas import ApiStruct


class ActorOut(ApiStruct):
    id: str
    role: str
    name: str | None
    department: str | None
    hall: str | None


class HistoryEntryOut(ApiStruct):
    version: int
    position: int  # the global position (notification id)
    type: str  # the stable name: case.accepted
    topic: str  # as stored, covered by the hash
    label: str | None  # in the timeline's words: 一次性告知补正材料
    occurred_at: datetime | None  # the event's own time; null when the stored state does not decode
    recorded_at: datetime  # when the store committed it
    actor: ActorOut | None
    channel: str | None
    what: dict[str, Any] | None  # the event's facts, personal values revealed
    hash: str  # hex: sha256(previous hash || topic || state)
    previous_hash: str  # hex; "" for the first event (the genesis)
    intact: bool  # this event's link holds
    unreadable: str | None  # why the stored state did not decode


class CaseHistoryOut(ApiStruct):
    case_id: UUID
    number: str | None
    head_version: int
    intact: bool  # every link holds
    entries: list[HistoryEntryOut]


class CaseStateOut(ApiStruct):
    case_id: UUID
    number: str | None
    version: int  # the version reached
    head_version: int
    at: datetime  # when that version's event occurred
    status: str
    status_label: str
    item_code: str
    intact: bool  # every link of the case holds (a forged event shows only on the link after it)
    state: dict[str, Any]  # the whole case as it stood: applicant, tasks, acceptance, conclusion …


class BrokenEventOut(ApiStruct):
    """The first event whose link fails: altered, or following a deleted one."""

    position: int
    aggregate_id: UUID
    case_id: UUID | None  # set when the aggregate is a case
    case_number: str | None
    version: int
    type: str | None
    reason: str


class ChainHeadOut(ApiStruct):
    version: int
    hash: str  # hex: the case's last line in an export must carry it


class VerificationOut(ApiStruct):
    scope: str  # case or store
    ok: bool
    events_checked: int
    aggregates_checked: int
    first_broken: BrokenEventOut | None
    case_id: UUID | None = None
    case_number: str | None = None
    head: ChainHeadOut | None = None
