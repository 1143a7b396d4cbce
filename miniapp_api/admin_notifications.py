"""Admin routes over the notification outbox: delivery status, every attempt, dead letters and re-drive."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Literal, Protocol
from uuid import UUID

from litestar import Router, get, post
from litestar.params import JSONBody, QueryParameter
from msgspec import Meta

from miniapp_api.auth import require_roles
from miniapp_api.notification_routes import (
    PRIVATE_CACHE,
    Before,
    KeyParameter,
    NotificationKey,
    convert_by_name,
)
from miniapp_api.principal import Role
from miniapp_api.schemas import ApiStruct


class OutboxAdmin(Protocol):
    """notifications.admin.OutboxAdmin is the real one."""

    async def list(self, state: str | None = None, limit: int = 50, before: str | None = None) -> object: ...
    async def history(self, key: str) -> object: ...
    async def redrive(self, key: str) -> object: ...
    async def redrive_many(self, keys: Collection[str]) -> int: ...
    async def summary(self) -> object: ...


class OutboxRowOut(ApiStruct):
    key: str
    purpose: str
    recipient_kind: str
    recipient: str
    case_id: UUID | None
    state: str
    channel: str | None
    tried_channels: list[str]
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    deferred: str | None


class OutboxPageOut(ApiStruct):
    items: list[OutboxRowOut]  # newest first
    next_before: str | None


class AttemptOut(ApiStruct):
    attempt: int
    channel: str
    provider: str
    outcome: str
    detail: str
    provider_id: str | None
    at: datetime


class HistoryOut(ApiStruct):
    notification: OutboxRowOut
    variables: dict[str, str]  # display values, already masked
    attempts: list[AttemptOut]


class KeysIn(ApiStruct, forbid_unknown_fields=True):
    keys: Annotated[list[NotificationKey], Meta(min_length=1, max_length=1000)]


class RedrivenOut(ApiStruct):
    redriven: int  # the dead among the keys; the others were left alone


class SummaryOut(ApiStruct):
    pending: int
    delivered: int
    dead: int
    skipped: int
    oldest_pending_due: datetime | None


def admin_notifications_router(outbox: OutboxAdmin) -> Router:
    """/api/v1/admin/notifications: the outbox, its dead letters and their re-drive."""

    @get("/", cache_control=PRIVATE_CACHE, summary="Notifications newest first, of one state")
    async def list_outbox(
        # `state` is a name litestar reserves (the app state), so the parameter is aliased.
        outbox_state: Annotated[
            Literal["pending", "delivered", "dead", "skipped"] | None, QueryParameter(name="state")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
        before: Before = None,
    ) -> OutboxPageOut:
        return convert_by_name(await outbox.list(outbox_state, limit, before), OutboxPageOut)

    @get("/summary", cache_control=PRIVATE_CACHE, summary="Notifications per state; the oldest pending")
    async def summary() -> SummaryOut:
        return convert_by_name(await outbox.summary(), SummaryOut)

    @get("/{key:str}", cache_control=PRIVATE_CACHE, summary="One notification and every attempt to send it")
    async def history(key: KeyParameter) -> HistoryOut:
        return convert_by_name(await outbox.history(key), HistoryOut)

    @post("/{key:str}/redrive", status_code=200, summary="Send a dead notification again")
    async def redrive(key: KeyParameter) -> OutboxRowOut:
        return convert_by_name(await outbox.redrive(key), OutboxRowOut)

    @post("/redrive", status_code=200, summary="Send the dead among these notifications again")
    async def redrive_many(data: JSONBody[KeysIn]) -> RedrivenOut:
        return RedrivenOut(redriven=await outbox.redrive_many(data.keys))

    return Router(
        path="/api/v1/admin/notifications",
        route_handlers=[list_outbox, summary, history, redrive, redrive_many],
        guards=[require_roles(Role.ADMIN)],
        tags=["admin"],
    )
