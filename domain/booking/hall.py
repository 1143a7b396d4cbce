"""A service hall's booking configuration, kept as events: windows, item groups, hours, closed days, rules.

A manager's change is a new `Reconfigured` event carrying the whole configuration, so
the history shows what the hall offered on any day. Closed days are events of their own,
since they are announced one at a time (a power cut, an inspection).
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, time
from uuid import UUID, uuid5

import msgspec
from eventsourcing.domain import Aggregate

from domain.booking.errors import InvalidHallConfigError
from domain.case.checks import beijing_time

# Fixed forever: hall, slot, appointment-holder and queue ids are derived from it.
BOOKING_NAMESPACE = UUID("8a4f3c2e-1d7b-5e9a-b6c4-430100000005")


def hall_id(code: str) -> UUID:
    return uuid5(BOOKING_NAMESPACE, f"hall:{code}")


class ItemGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Items served together at the same windows, with one ticket queue (prefix A, B …)."""

    code: str
    name: str
    items: tuple[str, ...]  # 事项编码
    prefix: str
    # Seats per slot; None: one per window serving the group (DOMAIN.md's default).
    capacity: int | None = None


class Window(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    groups: tuple[str, ...]


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """One opening period of a working day, such as 09:00–12:00; slots never straddle two."""

    start: time
    end: time


class GeoPoint(msgspec.Struct, frozen=True, kw_only=True):
    lat: float
    lon: float


class BookingRules(msgspec.Struct, frozen=True, kw_only=True):
    """DOMAIN.md's defaults; each one a setting a region may change."""

    slot_minutes: int = 30
    horizon_days: int = 5  # working days ahead that can be booked
    release_at: time = time(8, 0)  # when each working day's furthest day opens
    hold_minutes: int = 5
    cancel_cutoff_minutes: int = 120
    per_hall_per_day: int = 1
    per_week: int = 2
    per_month: int = 6
    no_show_limit: int = 2  # 爽约 within no_show_window_days that bans
    no_show_window_days: int = 90
    ban_months: int = 3
    no_show_grace_minutes: int = 0  # after the slot ends, an unchecked-in booking is a 爽约
    miss_after_calls: int = 3  # calls without answer before a ticket is missed
    checkin_radius_m: int = 500  # mini-program check-in only this near the hall


class HallConfig(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: str  # 行政服务中心, 市民之家, 便民服务中心
    address: str
    windows: tuple[Window, ...]
    groups: tuple[ItemGroup, ...]
    sessions: tuple[Session, ...]
    rules: BookingRules = BookingRules()
    location: GeoPoint | None = None

    def group(self, code: str) -> ItemGroup | None:
        return next((g for g in self.groups if g.code == code), None)

    def group_of_item(self, item_code: str) -> ItemGroup | None:
        return next((g for g in self.groups if item_code in g.items), None)

    def windows_serving(self, group: str) -> tuple[Window, ...]:
        return tuple(w for w in self.windows if group in w.groups)

    def capacity(self, group: str) -> int:
        g = self.group(group)
        if g is None:
            return 0
        return g.capacity if g.capacity is not None else len(self.windows_serving(group))


def check_config(config: HallConfig) -> None:
    """Refuse a configuration that could not be booked or queued as written."""
    if not config.name.strip():
        raise InvalidHallConfigError("a hall needs a name")
    codes = [g.code for g in config.groups]
    prefixes = [g.prefix for g in config.groups]
    if not codes:
        raise InvalidHallConfigError("a hall needs at least one item group")
    if len(set(codes)) != len(codes) or len(set(prefixes)) != len(prefixes):
        raise InvalidHallConfigError("item group codes and ticket prefixes must each be unique")
    if any(not (p.isascii() and p.isalpha() and p.isupper() and len(p) <= 2) for p in prefixes):
        raise InvalidHallConfigError("a ticket prefix is one or two capital letters (A, B, VA)")
    if len({w.code for w in config.windows}) != len(config.windows):
        raise InvalidHallConfigError("window codes must be unique")
    for w in config.windows:
        if unknown := set(w.groups) - set(codes):
            raise InvalidHallConfigError(f"window {w.code} serves unknown groups {sorted(unknown)}")
    for g in config.groups:
        if g.capacity is not None and g.capacity < 1:
            raise InvalidHallConfigError(f"group {g.code}: capacity must be at least 1")
        if config.capacity(g.code) < 1:
            raise InvalidHallConfigError(f"group {g.code}: no window serves it and it has no capacity")
    sessions = sorted(config.sessions, key=lambda s: s.start)
    if not sessions:
        raise InvalidHallConfigError("a hall needs opening hours")
    for s in sessions:
        if s.end <= s.start:
            raise InvalidHallConfigError(f"opening period {s.start}–{s.end} ends before it starts")
    for a, b in itertools.pairwise(sessions):
        if b.start < a.end:
            raise InvalidHallConfigError(f"opening periods {a.start}–{a.end} and {b.start}–{b.end} overlap")
    r = config.rules
    if not 10 <= r.slot_minutes <= 240:
        raise InvalidHallConfigError("slot_minutes must be between 10 and 240")
    positive = {
        "horizon_days": r.horizon_days,
        "hold_minutes": r.hold_minutes,
        "per_hall_per_day": r.per_hall_per_day,
        "per_week": r.per_week,
        "per_month": r.per_month,
        "no_show_limit": r.no_show_limit,
        "no_show_window_days": r.no_show_window_days,
        "ban_months": r.ban_months,
        "miss_after_calls": r.miss_after_calls,
        "checkin_radius_m": r.checkin_radius_m,
    }
    if bad := [name for name, value in positive.items() if value < 1]:
        raise InvalidHallConfigError(f"must be at least 1: {', '.join(bad)}")
    if r.cancel_cutoff_minutes < 0 or r.no_show_grace_minutes < 0:
        raise InvalidHallConfigError("cancel_cutoff_minutes and no_show_grace_minutes cannot be negative")


class Hall(Aggregate):
    """One hall (行政服务中心, 市民之家, 便民服务中心) as its manager configured it."""

    class Registered(Aggregate.Created):
        code: str
        config: HallConfig
        by: str

    class Reconfigured(Aggregate.Event):
        config: HallConfig
        by: str

        def apply(self, hall: Hall) -> None:
            hall.config = self.config

    class DayClosed(Aggregate.Event):
        day: date
        reason: str
        by: str

        def apply(self, hall: Hall) -> None:
            hall.closed_days = {**hall.closed_days, self.day: self.reason}

    class DayReopened(Aggregate.Event):
        day: date
        by: str

        def apply(self, hall: Hall) -> None:
            hall.closed_days = {d: r for d, r in hall.closed_days.items() if d != self.day}

    @staticmethod
    def create_id(code: str, config: HallConfig, by: str) -> UUID:
        return hall_id(code)

    @classmethod
    def register(cls, code: str, config: HallConfig, *, by: str, at: datetime) -> Hall:
        if not code or not code.isascii() or len(code) > 32:
            raise InvalidHallConfigError("a hall code is 1–32 ASCII characters")
        check_config(config)
        return cls._create(cls.Registered, code=code, config=config, by=by, timestamp=beijing_time(at))

    def __init__(self, code: str, config: HallConfig, by: str) -> None:
        self.code = code
        self.config = config
        self.closed_days: dict[date, str] = {}

    def reconfigure(self, config: HallConfig, *, by: str, at: datetime) -> bool:
        """Record the new configuration; False (and no event) when nothing changed."""
        check_config(config)
        if config == self.config:
            return False
        self.trigger_event(self.Reconfigured, config=config, by=by, timestamp=beijing_time(at))
        return True

    def close_day(self, day: date, reason: str, *, by: str, at: datetime) -> bool:
        if not reason.strip():
            raise InvalidHallConfigError("closing a day needs a reason the citizens will read")
        if day in self.closed_days:
            return False
        self.trigger_event(self.DayClosed, day=day, reason=reason, by=by, timestamp=beijing_time(at))
        return True

    def reopen_day(self, day: date, *, by: str, at: datetime) -> bool:
        if day not in self.closed_days:
            return False
        self.trigger_event(self.DayReopened, day=day, by=by, timestamp=beijing_time(at))
        return True

    def is_closed(self, day: date) -> bool:
        return day in self.closed_days
