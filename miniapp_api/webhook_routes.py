"""/api/v1/streams/webhooks: a department's webhook subscriptions, registered and watched by its officers.

An officer manages their own department's subscriptions only; any other is answered
404, as if it did not exist. An admin manages every one, and may subscribe to every
department at once. Personal data in the clear needs a caller entitled to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar
from uuid import UUID

import msgspec
from litestar import Router, delete, get, post
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, JSONBody

from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.principal import Principal, Role
from miniapp_api.webhook_schemas import RedriveIn, WebhookDetailOut, WebhookIn, WebhookOut

T = TypeVar("T")

_PRIVATE = CacheControlHeader(private=True, no_store=True)


class WebhookSubscriptions(Protocol):
    """What the routes ask of the subscriptions (backend.streams.webhook_store is the adapter).

    `within` is the department the caller is limited to, None for an admin.
    """

    async def register(
        self, *, department: str | None, url: str, secret: str, personal: bool, after: int | None, by: str
    ) -> object: ...
    async def list(self, within: str | None) -> Sequence[object]: ...
    async def get(self, subscription: UUID, within: str | None) -> object: ...
    async def pause(self, subscription: UUID, within: str | None, by: str) -> object: ...
    async def resume(self, subscription: UUID, within: str | None) -> object: ...
    async def redrive(self, subscription: UUID, within: str | None, after: int) -> object: ...
    async def delete(self, subscription: UUID, within: str | None) -> None: ...


def _within(principal: Principal) -> str | None:
    if principal.role is Role.ADMIN:
        return None
    if principal.department is None:
        raise PermissionDeniedException("an officer without a department has no stream")
    return principal.department


def _department(principal: Principal, asked: str | None) -> str | None:
    """The department a new subscription follows: an admin's choice (None: all), else the officer's own."""
    own = _within(principal)
    if own is None:
        return asked
    if asked is not None and asked != own:
        raise PermissionDeniedException("an officer subscribes to their own department's stream only")
    return own


def _out(value: object, kind: type[T]) -> T:
    return msgspec.convert(value, kind, from_attributes=True)


def webhook_router(subscriptions: WebhookSubscriptions) -> Router:
    @post("/", status_code=201, summary="Subscribe a URL to the department's stream")
    async def register(data: JSONBody[WebhookIn], principal: CurrentPrincipal) -> WebhookOut:
        department = _department(principal, data.department)
        if data.personal_data and not principal.personal_data:
            raise PermissionDeniedException("this caller may not receive personal data in the clear")
        created = await subscriptions.register(
            department=department,
            url=data.url,
            secret=data.secret,
            personal=data.personal_data,
            after=data.after,
            by=principal.subject,
        )
        return _out(created, WebhookOut)

    @get("/", cache_control=_PRIVATE, summary="The department's subscriptions (an admin's: all)")
    async def listed(principal: CurrentPrincipal) -> list[WebhookOut]:
        return [_out(s, WebhookOut) for s in await subscriptions.list(_within(principal))]

    @get("/{subscription:uuid}", cache_control=_PRIVATE, summary="One subscription, with its latest attempts")
    async def shown(subscription: FromPath[UUID], principal: CurrentPrincipal) -> WebhookDetailOut:
        return _out(await subscriptions.get(subscription, _within(principal)), WebhookDetailOut)

    @post("/{subscription:uuid}/pause", status_code=200, summary="Stop delivering until resumed")
    async def pause(subscription: FromPath[UUID], principal: CurrentPrincipal) -> WebhookDetailOut:
        paused = await subscriptions.pause(subscription, _within(principal), principal.subject)
        return _out(paused, WebhookDetailOut)

    @post("/{subscription:uuid}/resume", status_code=200, summary="Deliver again from the cursor, now")
    async def resume(subscription: FromPath[UUID], principal: CurrentPrincipal) -> WebhookDetailOut:
        return _out(await subscriptions.resume(subscription, _within(principal)), WebhookDetailOut)

    @post(
        "/{subscription:uuid}/redrive",
        status_code=200,
        summary="Deliver again everything after a position, and resume",
    )
    async def redrive(
        subscription: FromPath[UUID], data: JSONBody[RedriveIn], principal: CurrentPrincipal
    ) -> WebhookDetailOut:
        moved = await subscriptions.redrive(subscription, _within(principal), data.after)
        return _out(moved, WebhookDetailOut)

    @delete("/{subscription:uuid}", status_code=204, summary="Unsubscribe")
    async def unsubscribe(subscription: FromPath[UUID], principal: CurrentPrincipal) -> None:
        await subscriptions.delete(subscription, _within(principal))

    return Router(
        path="/api/v1/streams/webhooks",
        route_handlers=[register, listed, shown, pause, resume, redrive, unsubscribe],
        guards=[require_roles(Role.OFFICER, Role.ADMIN)],
        tags=["streams"],
    )
