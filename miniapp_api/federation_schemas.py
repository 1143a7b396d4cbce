"""The wire shapes of cross-city messaging: the inbox's answer and the admin summaries; camelCase."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from miniapp_api.schemas import ApiStruct


class ReceivedOut(ApiStruct):
    status: Literal["accepted", "duplicate"]  # duplicate: we had it already; it is not applied again


class RefusalOut(ApiStruct):
    at: datetime
    region: str | None  # as the sender claimed it: unverified
    message_id: UUID | None
    kind: str  # headers-invalid, partner-unknown, message-stale, key-unknown, signature-invalid ...
    detail: str
    remote: str | None  # the caller's address


class OutboxMessageOut(ApiStruct):
    message_id: UUID
    partner: str
    handoff: UUID
    seq: int
    kind: str
    created_at: datetime
    delivered_at: datetime | None
    attempts: int  # requests sent, answered or not
    consecutive_failures: int
    next_attempt_at: datetime | None  # None: delivered, or not tried yet
    last_error: str | None
    last_status: int | None


class OutboxSummaryOut(ApiStruct):
    pending: int
    delivered: int
    oldest_pending_at: datetime | None  # when the oldest undelivered message was enqueued
    items: list[OutboxMessageOut]  # of the state asked for (all if none), newest first


class InboxMessageOut(ApiStruct):
    partner: str
    message_id: UUID
    handoff: UUID
    seq: int
    kind: str
    received_at: datetime
    applied_at: datetime | None
    attempts: int  # handler runs that failed
    next_attempt_at: datetime | None  # after a failure: when it is tried again
    error: str | None
    skipped_at: datetime | None  # an administrator gave up on it: never applied, the next seq goes on
    skipped_by: str | None  # the administrator's subject
    skip_reason: str | None


class InboxSummaryOut(ApiStruct):
    pending: int  # not applied, no failure: waiting for its turn (or an earlier seq)
    applied: int
    failed: int  # not applied, its handler failed: retried with backoff
    skipped: int  # given up on by an administrator
    items: list[InboxMessageOut]  # of the state asked for (all if none), newest first


class SkipIn(ApiStruct, forbid_unknown_fields=True):
    # Checked by the admin port (blank or too long: federation-skip-reason), so one problem type says it.
    reason: Annotated[str, Meta(description="why the message is given up on, 1 to 500 characters; recorded")]
