"""Notification routes on the caller's own account: devices, WeChat grants, preferences, the inbox.

Everything under /me acts on the caller's own account, whatever the role. Which
templates and channels exist, and what may be switched off, is the notifications
context's to decide: its refusals reach the client through the app's ProblemMap.
Its answers are converted here by field name, so this module imports none of it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Literal, Protocol, TypeVar
from uuid import UUID

import msgspec
from litestar import Router, delete, get, post, put
from litestar.datastructures import CacheControlHeader
from litestar.params import JSONBody, PathParameter, QueryParameter
from msgspec import Meta

from miniapp_api.auth import CurrentPrincipal
from miniapp_api.schemas import ApiStruct


class ContactBook(Protocol):
    """notifications.contacts.Contacts is the real one."""

    async def register_device(
        self, subject: str, *, role: str, department: str | None, installation_id: str, platform: str
    ) -> object: ...
    async def devices(self, subject: str) -> Sequence[object]: ...
    async def remove_device(self, subject: str, installation_id: str) -> None: ...
    async def record_grants(
        self, subject: str, openid: str, results: Mapping[str, str]
    ) -> Sequence[object]: ...
    async def grants(self, subject: str) -> Sequence[object]: ...
    async def preferences(self, subject: str) -> Sequence[object]: ...
    async def set_preferences(
        self, subject: str, changes: Sequence[tuple[str, str, bool]]
    ) -> Sequence[object]: ...


class InboxReader(Protocol):
    """notifications.inbox.InboxQueries is the real one."""

    async def list(self, subject: str, limit: int = 20, before: str | None = None) -> object: ...
    async def mark_read(self, subject: str, keys: Collection[str]) -> int: ...
    async def unread(self, subject: str) -> int: ...


# Wire shapes.

Platform = Literal["android", "ios", "harmony", "web"]
InstallationId = Annotated[
    str, PathParameter(pattern=r"^[A-Za-z0-9_:-]{1,200}$", description="the Firebase installation id")
]
NotificationKey = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
KeyParameter = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{64}$", description="the notification's key")]
Before = Annotated[
    str | None, QueryParameter(pattern=r"^[0-9a-f]{64}$", description="the last key of the previous page")
]


class DeviceIn(ApiStruct, forbid_unknown_fields=True):
    platform: Platform


class DeviceOut(ApiStruct):
    installation_id: str
    platform: str
    role: str
    department: str | None
    registered_at: datetime
    last_seen_at: datetime


class GrantsIn(ApiStruct, forbid_unknown_fields=True):
    """What wx.requestSubscribeMessage answered, without its errMsg: template id -> the user's choice."""

    openid: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    results: Annotated[
        dict[Annotated[str, Meta(max_length=64)], Literal["accept", "reject", "ban", "filter"]],
        Meta(min_length=1, max_length=20),
    ]


class GrantOut(ApiStruct):
    template_id: str
    purposes: list[str]
    open: int  # accepted and not yet spent: messages of this template that may still be sent


class GrantsOut(ApiStruct):
    grants: list[GrantOut]


class PreferenceIn(ApiStruct, forbid_unknown_fields=True):
    purpose: Annotated[str, Meta(max_length=64)]
    channel: Annotated[str, Meta(max_length=16)]
    enabled: bool


class PreferencesIn(ApiStruct, forbid_unknown_fields=True):
    preferences: Annotated[list[PreferenceIn], Meta(min_length=1, max_length=100)]


class PreferenceOut(ApiStruct):
    purpose: str
    channel: str
    enabled: bool


class PreferencesOut(ApiStruct):
    preferences: list[PreferenceOut]  # every purpose and channel that may be switched off
    inbox_always_on: bool = True  # the in-app inbox holds every notice, whatever is switched off


class InboxEntryOut(ApiStruct):
    key: str
    purpose: str
    title: str
    body: str
    case_id: UUID | None
    occurred_at: datetime
    read_at: datetime | None


class InboxPageOut(ApiStruct):
    items: list[InboxEntryOut]  # newest first
    unread: int  # of all the caller's entries
    next_before: str | None


class ReadIn(ApiStruct, forbid_unknown_fields=True):
    keys: Annotated[list[NotificationKey], Meta(min_length=1, max_length=500)]


class ReadOut(ApiStruct):
    marked: int  # entries that were unread until now
    unread: int


T = TypeVar("T")
PRIVATE_CACHE = CacheControlHeader(private=True, no_store=True)


def convert_by_name(value: object, kind: type[T]) -> T:
    # Same field names on both sides: only the wire spelling differs.
    return msgspec.convert(value, kind, from_attributes=True)


def _all(values: Sequence[object], kind: type[T]) -> list[T]:
    return [convert_by_name(v, kind) for v in values]


def my_notifications_router(contacts: ContactBook, inbox: InboxReader) -> Router:
    """/api/v1/me: any authenticated caller, on their own account."""

    @put("/devices/{installation_id:str}", summary="Register or refresh this app's push device")
    async def register_device(
        installation_id: InstallationId, data: JSONBody[DeviceIn], principal: CurrentPrincipal
    ) -> DeviceOut:
        device = await contacts.register_device(
            principal.subject,
            role=principal.role.value,
            department=principal.department,
            installation_id=installation_id,
            platform=data.platform,
        )
        return convert_by_name(device, DeviceOut)

    @get("/devices", cache_control=PRIVATE_CACHE, summary="My push devices")
    async def devices(principal: CurrentPrincipal) -> list[DeviceOut]:
        return _all(await contacts.devices(principal.subject), DeviceOut)

    @delete("/devices/{installation_id:str}", summary="Stop pushing to one of my devices")
    async def remove_device(installation_id: InstallationId, principal: CurrentPrincipal) -> None:
        await contacts.remove_device(principal.subject, installation_id)

    @post(
        "/wechat-grants",
        status_code=200,
        summary="Record what wx.requestSubscribeMessage answered: one grant per accept",
    )
    async def record_grants(data: JSONBody[GrantsIn], principal: CurrentPrincipal) -> GrantsOut:
        counts = await contacts.record_grants(principal.subject, data.openid, data.results)
        return GrantsOut(grants=_all(counts, GrantOut))

    @get("/wechat-grants", cache_control=PRIVATE_CACHE, summary="My open WeChat grants per template")
    async def grants(principal: CurrentPrincipal) -> GrantsOut:
        return GrantsOut(grants=_all(await contacts.grants(principal.subject), GrantOut))

    @get(
        "/notification-preferences",
        cache_control=PRIVATE_CACHE,
        summary="What I want, per purpose and channel",
    )
    async def preferences(principal: CurrentPrincipal) -> PreferencesOut:
        return PreferencesOut(preferences=_all(await contacts.preferences(principal.subject), PreferenceOut))

    @put("/notification-preferences", summary="Switch channels on or off, all or none")
    async def set_preferences(data: JSONBody[PreferencesIn], principal: CurrentPrincipal) -> PreferencesOut:
        changes = [(p.purpose, p.channel, p.enabled) for p in data.preferences]
        chosen = await contacts.set_preferences(principal.subject, changes)
        return PreferencesOut(preferences=_all(chosen, PreferenceOut))

    @get("/inbox", cache_control=PRIVATE_CACHE, summary="My in-app messages (站内消息), newest first")
    async def list_inbox(
        principal: CurrentPrincipal,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        before: Before = None,
    ) -> InboxPageOut:
        return convert_by_name(await inbox.list(principal.subject, limit, before), InboxPageOut)

    @post("/inbox/read", status_code=200, summary="Mark my messages read")
    async def mark_read(data: JSONBody[ReadIn], principal: CurrentPrincipal) -> ReadOut:
        marked = await inbox.mark_read(principal.subject, data.keys)
        return ReadOut(marked=marked, unread=await inbox.unread(principal.subject))

    return Router(
        path="/api/v1/me",
        route_handlers=[
            register_device,
            devices,
            remove_device,
            record_grants,
            grants,
            preferences,
            set_preferences,
            list_inbox,
            mark_read,
        ],
        tags=["notifications"],
    )
