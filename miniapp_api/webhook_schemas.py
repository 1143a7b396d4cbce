"""Webhook subscription schemas: what a department registers, and the status it reads back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from miniapp_api.principal import DepartmentCode
from miniapp_api.schemas import ApiStruct

WebhookUrl = Annotated[
    str,
    Meta(min_length=1, max_length=2048, description="https:// (http:// only where the deployment allows it)"),
]
WebhookSecret = Annotated[
    str,
    Meta(
        min_length=32,
        max_length=256,
        description="The shared HMAC-SHA256 key of the Citypass-Signature header; never shown again",
    ),
]
Position = Annotated[int, Meta(ge=0, description="A position of the stream: delivery starts after it")]


class WebhookIn(ApiStruct, forbid_unknown_fields=True):
    url: WebhookUrl
    secret: WebhookSecret
    department: DepartmentCode | None = None  # admins only; None: every department. Officers get their own
    personal_data: bool = False  # personal data in the clear: only for callers entitled to it
    after: Position | None = None  # None: the current head, so only events from now on


class RedriveIn(ApiStruct, forbid_unknown_fields=True):
    after: Position


class WebhookAttemptOut(ApiStruct):
    at: datetime
    delivery_id: UUID
    status_code: int | None  # None: no answer (refused, timed out)
    error: str | None  # None: acknowledged with a 2xx
    events: int
    cursor: int  # the last position in the batch
    duration_ms: int


class WebhookOut(ApiStruct):
    id: UUID
    url: str
    department: str | None  # None: every department
    personal_data: bool
    status: Literal["active", "paused"]
    paused_reason: str | None
    cursor: int  # every event up to this position was acknowledged
    head: int  # the last position the stream has published
    lag: int  # head - cursor, in positions
    consecutive_failures: int
    next_attempt_at: datetime | None  # None while paused
    last_success_at: datetime | None
    last_error: str | None
    last_status: int | None
    delivered_events: int
    created_by: str
    created_at: datetime


class WebhookDetailOut(WebhookOut):
    attempts: list[WebhookAttemptOut]  # the latest first
