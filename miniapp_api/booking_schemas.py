"""The wire shapes of halls, slots and appointments; camelCase on the wire, domain values inside."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta

from domain.booking import Appointment, BookingRules, GeoPoint, HallConfig, ItemGroup, Session, Window
from domain.personal import mask
from miniapp_api.schemas import ApiStruct
from projections.appointments import AppointmentView, DayView, HallView

ShortText = Annotated[str, Meta(min_length=1, max_length=200)]
Code = Annotated[str, Meta(pattern=r"^[0-9A-Za-z_-]{1,40}$")]
RequestId = Annotated[str, Meta(min_length=1, max_length=100)]
# Hall staff write times of day as on a notice board: 09:00 (seconds allowed but never needed).
ClockTime = Annotated[str, Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$", examples=["09:00"])]


def _time(text: str) -> time:
    return time.fromisoformat(text)


def _text(t: time) -> str:
    return t.strftime("%H:%M") if not t.second else t.isoformat()


class VisitorIn(ApiStruct):
    """The person who will come: booking is 实名 (by 居民身份证)."""

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    id_number: Annotated[str, Meta(min_length=15, max_length=20)]
    phone: Annotated[str, Meta(min_length=5, max_length=20)] | None = None


class HoldIn(ApiStruct):
    hall: Code
    item_code: Code
    start: datetime
    visitor: VisitorIn
    client_request_id: RequestId | None = None
    case_id: UUID | None = None


class RescheduleIn(ApiStruct):
    start: datetime
    client_request_id: RequestId | None = None


class CancelIn(ApiStruct):
    reason: Annotated[str, Meta(max_length=200)] = ""


class CloseDayIn(ApiStruct):
    reason: ShortText


class AppointmentOut(ApiStruct):
    id: UUID
    hall: str
    group: str
    item_code: str
    start: datetime
    end: datetime
    state: str
    state_label: str
    expires_at: datetime | None  # while held: confirm before this
    visitor_name: str  # masked
    visitor_id: str  # masked
    replaces: UUID | None = None
    replaced_by: UUID | None = None
    ticket: str | None = None
    case_id: UUID | None = None


_LABELS = {
    "held": "待确认",
    "confirmed": "已预约",
    "checked_in": "已取号",
    "cancelled": "已取消",
    "expired": "已过期",
    "rescheduled": "已改约",
    "no_show": "爽约",
}


def appointment_out(a: Appointment) -> AppointmentOut:
    return AppointmentOut(
        id=a.id, hall=a.hall, group=a.group, item_code=a.item_code, start=a.slot.start, end=a.slot.end,
        state=a.state.value, state_label=a.state.label,
        expires_at=a.expires_at if a.state.value == "held" else None,
        visitor_name=mask(a.visitor.name), visitor_id=mask(a.visitor.id_number),
        replaces=a.replaces, replaced_by=a.replaced_by, ticket=a.ticket, case_id=a.case_id,
    )  # fmt: skip


def appointment_view_out(a: AppointmentView) -> AppointmentOut:
    return AppointmentOut(
        id=a.id, hall=a.hall, group=a.group, item_code=a.item_code, start=a.start, end=a.end,
        state=a.state, state_label=_LABELS.get(a.state, a.state),
        expires_at=a.expires_at if a.state == "held" else None,
        visitor_name=a.visitor_name, visitor_id=a.visitor_id, replaces=a.replaces,
        replaced_by=a.replaced_by, ticket=a.ticket, case_id=a.case_id,
    )  # fmt: skip


class SlotOut(ApiStruct):
    start: datetime
    end: datetime
    capacity: int
    left: int


class DayOut(ApiStruct):
    hall: str
    group: str
    date: date
    bookable: bool
    closed_reason: str | None
    slots: list[SlotOut]


def day_out(d: DayView) -> DayOut:
    return DayOut(
        hall=d.hall, group=d.group, date=d.day, bookable=d.bookable, closed_reason=d.closed_reason,
        slots=[SlotOut(start=s.start, end=s.end, capacity=s.capacity, left=s.left) for s in d.slots],
    )  # fmt: skip


# Configuration, as a hall manager writes it: a misspelt rule is refused, never quietly ignored.


class ItemGroupIn(ApiStruct, forbid_unknown_fields=True):
    code: Code
    name: ShortText
    items: list[Code]
    prefix: Annotated[str, Meta(pattern=r"^[A-Z]{1,2}$")]
    capacity: Annotated[int, Meta(ge=1, le=1000)] | None = None


class WindowIn(ApiStruct, forbid_unknown_fields=True):
    code: Code
    groups: list[Code]


class SessionIn(ApiStruct, forbid_unknown_fields=True):
    start: ClockTime
    end: ClockTime


class RulesIn(ApiStruct, forbid_unknown_fields=True):
    slot_minutes: Annotated[int, Meta(ge=10, le=240)] = 30
    horizon_days: Annotated[int, Meta(ge=1, le=60)] = 5
    release_at: ClockTime = "08:00"
    hold_minutes: Annotated[int, Meta(ge=1, le=60)] = 5
    cancel_cutoff_minutes: Annotated[int, Meta(ge=0, le=10080)] = 120
    per_hall_per_day: Annotated[int, Meta(ge=1, le=10)] = 1
    per_week: Annotated[int, Meta(ge=1, le=50)] = 2
    per_month: Annotated[int, Meta(ge=1, le=200)] = 6
    no_show_limit: Annotated[int, Meta(ge=1, le=20)] = 2
    no_show_window_days: Annotated[int, Meta(ge=1, le=3650)] = 90
    ban_months: Annotated[int, Meta(ge=1, le=36)] = 3
    no_show_grace_minutes: Annotated[int, Meta(ge=0, le=600)] = 0
    miss_after_calls: Annotated[int, Meta(ge=1, le=10)] = 3
    checkin_radius_m: Annotated[int, Meta(ge=10, le=100000)] = 500


class GeoPointIn(ApiStruct, forbid_unknown_fields=True):
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]


class HallConfigIn(ApiStruct, forbid_unknown_fields=True):
    name: ShortText
    kind: ShortText  # 行政服务中心, 市民之家, 便民服务中心
    address: ShortText
    windows: list[WindowIn]
    groups: list[ItemGroupIn]
    sessions: list[SessionIn]
    rules: RulesIn = msgspec.field(default_factory=RulesIn)
    location: GeoPointIn | None = None

    def to_domain(self) -> HallConfig:
        return HallConfig(
            name=self.name,
            kind=self.kind,
            address=self.address,
            windows=tuple(Window(code=w.code, groups=tuple(w.groups)) for w in self.windows),
            groups=tuple(
                ItemGroup(
                    code=g.code, name=g.name, items=tuple(g.items), prefix=g.prefix, capacity=g.capacity
                )
                for g in self.groups
            ),
            sessions=tuple(Session(start=_time(s.start), end=_time(s.end)) for s in self.sessions),
            rules=BookingRules(
                **{f: getattr(self.rules, f) for f in self.rules.__struct_fields__ if f != "release_at"},
                release_at=_time(self.rules.release_at),
            ),
            location=None
            if self.location is None
            else GeoPoint(lat=self.location.lat, lon=self.location.lon),
        )


class GroupOut(ApiStruct):
    code: str
    name: str
    items: list[str]
    prefix: str
    capacity: int


class HallOut(ApiStruct):
    code: str
    name: str
    kind: str
    address: str
    groups: list[GroupOut]
    sessions: list[SessionIn]
    slot_minutes: int
    horizon_days: int
    release_at: ClockTime
    hold_minutes: int
    cancel_cutoff_minutes: int
    closed_days: dict[date, str]
    bookable_days: list[date]


def hall_out(h: HallView, bookable: list[date]) -> HallOut:
    r = h.config.rules
    return HallOut(
        code=h.code, name=h.name, kind=h.kind, address=h.address,
        groups=[GroupOut(code=g.code, name=g.name, items=list(g.items), prefix=g.prefix, capacity=g.capacity)
                for g in h.groups],
        sessions=[SessionIn(start=_text(s.start), end=_text(s.end)) for s in h.config.sessions],
        slot_minutes=r.slot_minutes, horizon_days=r.horizon_days, release_at=_text(r.release_at),
        hold_minutes=r.hold_minutes, cancel_cutoff_minutes=r.cancel_cutoff_minutes,
        closed_days=h.closed_days, bookable_days=bookable,
    )  # fmt: skip
