"""Where an account can be reached and what it asked for: push devices, WeChat grants, preferences.

These are people's own acts, not derived from events, so they are plain tables
(0007_notification_delivery.sql) that the dispatcher reads. Every check runs before
the first write, so a refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final

import asyncpg
import msgspec

from notifications.intents import Purpose
from notifications.templates import CHANNELS, TEMPLATES, channels_for
from projections.catalogue import PoolSource

_PURPOSES: Final = frozenset(p.value for p in Purpose)
# What an account may switch off: the inbox holds every notice, whatever was asked.
SWITCHABLE: Final = tuple(c for c in CHANNELS if c != "inbox")
# Per purpose, the switchable channels it has a template on, in Purpose and CHANNELS order.
SWITCHES: Final = {p: on for p in Purpose if (on := tuple(c for c in channels_for(p) if c in SWITCHABLE))}


def _wechat_templates() -> dict[str, tuple[Purpose, ...]]:
    served: dict[str, tuple[Purpose, ...]] = {}
    for purpose in Purpose:
        if (t := TEMPLATES.get((purpose, "wechat"))) is not None:
            served[t.template_id] = (*served.get(t.template_id, ()), purpose)
    return served


# WeChat template id -> the purposes it serves. A user accepts a template, not a purpose.
WECHAT_TEMPLATES: Final = _wechat_templates()


class ContactError(Exception):
    """A request about devices, grants or preferences, refused before anything is written."""


class DeviceNotFoundError(ContactError, LookupError):
    """The caller has no device by that installation id; another account's device counts as none."""


class UnknownTemplateError(ContactError):
    """A grant names a template id that is none of our WeChat templates."""


class InvalidPreferenceError(ContactError):
    """A preference names an unknown purpose or channel, the inbox, or a channel the purpose lacks."""


class Device(msgspec.Struct, frozen=True, kw_only=True):
    installation_id: str  # Firebase installation id: FCM addresses the app instance by it
    platform: str
    role: str
    department: str | None
    registered_at: datetime  # when this account registered it; kept on refresh
    last_seen_at: datetime


class GrantCount(msgspec.Struct, frozen=True, kw_only=True):
    template_id: str
    purposes: list[str]
    open: int  # accepted and not yet spent: messages of this template that may still be sent


class Preference(msgspec.Struct, frozen=True, kw_only=True):
    purpose: str
    channel: str
    enabled: bool


_DEVICE = "installation_id, platform, role, department, registered_at, last_seen_at"
_REGISTER = (
    "INSERT INTO push_devices (installation_id, subject, role, department, platform, registered_at, "
    "last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (installation_id) DO UPDATE SET "
    "subject = EXCLUDED.subject, role = EXCLUDED.role, department = EXCLUDED.department, "
    "platform = EXCLUDED.platform, last_seen_at = EXCLUDED.last_seen_at, "
    # A refresh keeps the registration time; a phone signed in by another account is a new registration.
    "registered_at = CASE WHEN push_devices.subject = EXCLUDED.subject "
    "THEN push_devices.registered_at ELSE EXCLUDED.registered_at END "
    f"RETURNING {_DEVICE}"
)
_PREFERENCES = "SELECT purpose, channel, enabled FROM notification_preferences WHERE subject = $1"
_SET_PREFERENCES = (
    "INSERT INTO notification_preferences (subject, purpose, channel, enabled, updated_at) "
    "SELECT $1, p, c, e, $5 FROM unnest($2::text[], $3::text[], $4::boolean[]) AS t (p, c, e) "
    "ON CONFLICT (subject, purpose, channel) DO UPDATE SET enabled = EXCLUDED.enabled, "
    "updated_at = EXCLUDED.updated_at"
)


class Contacts:
    def __init__(self, pool: PoolSource, clock: Callable[[], datetime]) -> None:
        self._pool, self.clock = pool, clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    async def register_device(
        self, subject: str, *, role: str, department: str | None, installation_id: str, platform: str
    ) -> Device:
        """Register or refresh a device; one registered by another account moves to this one."""
        row = await self.pool.fetchrow(
            _REGISTER, installation_id, subject, role, department, platform, self.clock()
        )
        return Device(**dict(row))

    async def devices(self, subject: str) -> list[Device]:
        rows = await self.pool.fetch(
            f"SELECT {_DEVICE} FROM push_devices WHERE subject = $1 ORDER BY registered_at, installation_id",
            subject,
        )
        return [Device(**dict(r)) for r in rows]

    async def remove_device(self, subject: str, installation_id: str) -> None:
        deleted: str = await self.pool.execute(
            "DELETE FROM push_devices WHERE installation_id = $1 AND subject = $2", installation_id, subject
        )
        if deleted == "DELETE 0":
            raise DeviceNotFoundError(f"no device {installation_id} is registered to this account")

    async def record_grants(self, subject: str, openid: str, results: Mapping[str, str]) -> list[GrantCount]:
        """Keep one grant per "accept" in a wx.requestSubscribeMessage answer; the others grant nothing."""
        if unknown := sorted(set(results) - WECHAT_TEMPLATES.keys()):
            raise UnknownTemplateError(f"not a WeChat template of ours: {', '.join(unknown)}")
        accepted = [t for t, answer in results.items() if answer == "accept"]
        if accepted:
            await self.pool.execute(
                "INSERT INTO wechat_grants (subject, openid, template_id, granted_at) "
                "SELECT $1, $2, t, $4 FROM unnest($3::text[]) AS t",
                subject,
                openid,
                accepted,
                self.clock(),
            )
        return await self.grants(subject)

    async def grants(self, subject: str) -> list[GrantCount]:
        """Every WeChat template with the account's open grants of it (0 when none)."""
        rows = await self.pool.fetch(
            "SELECT template_id, count(*) AS n FROM wechat_grants "
            "WHERE subject = $1 AND spent_at IS NULL GROUP BY template_id",
            subject,
        )
        open_by_template = {r["template_id"]: r["n"] for r in rows}
        return [
            GrantCount(template_id=t, purposes=[p.value for p in served], open=open_by_template.get(t, 0))
            for t, served in WECHAT_TEMPLATES.items()
        ]

    async def preferences(self, subject: str) -> list[Preference]:
        """Every switchable (purpose, channel); without a row, wanted."""
        return _preferences(await self.pool.fetch(_PREFERENCES, subject))

    async def set_preferences(
        self, subject: str, changes: Sequence[tuple[str, str, bool]]
    ) -> list[Preference]:
        """Apply (purpose, channel, enabled) changes, all or none; answer every preference."""
        _check(changes)
        purposes = [p for p, _, _ in changes]
        channels = [c for _, c, _ in changes]
        enabled = [e for _, _, e in changes]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_SET_PREFERENCES, subject, purposes, channels, enabled, self.clock())
            return _preferences(await conn.fetch(_PREFERENCES, subject))


def _preferences(rows: Sequence[asyncpg.Record]) -> list[Preference]:
    chosen = {(r["purpose"], r["channel"]): r["enabled"] for r in rows}
    return [
        Preference(purpose=p.value, channel=c, enabled=chosen.get((p.value, c), True))
        for p, on in SWITCHES.items()
        for c in on
    ]


def _check(changes: Sequence[tuple[str, str, bool]]) -> None:
    faults: list[str] = []
    seen: set[tuple[str, str]] = set()
    for purpose, channel, _ in changes:
        if (purpose, channel) in seen:
            faults.append(f"{purpose}/{channel} is named twice")
        seen.add((purpose, channel))
        if purpose not in _PURPOSES:
            faults.append(f"{purpose}: no such purpose")
        elif channel == "inbox":
            faults.append(f"{purpose}/inbox: the inbox is always on")
        elif channel not in SWITCHABLE:
            faults.append(f"{purpose}/{channel}: no such channel (one of {', '.join(SWITCHABLE)})")
        elif channel not in SWITCHES.get(Purpose(purpose), ()):
            faults.append(f"{purpose}/{channel}: {purpose} is never sent by {channel}")
    if faults:
        raise InvalidPreferenceError("; ".join(faults))
