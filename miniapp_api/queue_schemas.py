"""The wire shapes of the hall queue: check-in, transfer, tickets, windows and the hall screen; camelCase."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from msgspec import Meta

from domain.booking import GeoPoint
from miniapp_api.booking_schemas import Code, GeoPointIn
from miniapp_api.schemas import ApiStruct

Out = TypeVar("Out", bound=ApiStruct)


class CheckInChannel(StrEnum):
    """Where staff took the ticket: at the self-service kiosk they tend, or at their window."""

    KIOSK = "kiosk"
    HALL_WINDOW = "hall_window"


class CheckInIn(ApiStruct):
    """取号: an appointment, or a walk-in's group or item; a visitor in the mini-program sends a location."""

    group: Code | None = None
    item_code: Code | None = None
    appointment_id: UUID | None = None
    case_id: UUID | None = None
    location: GeoPointIn | None = None
    channel: CheckInChannel | None = None  # staff only; a citizen always checks in from the mini-program

    def location_point(self) -> GeoPoint | None:
        return None if self.location is None else GeoPoint(lat=self.location.lat, lon=self.location.lon)


class TransferIn(ApiStruct):
    to_queue: Annotated[str, Meta(pattern=r"^[0-9A-Za-z_-]{1,40}$")]


class TicketOut(ApiStruct):
    hall: str
    day: date
    ticket: str
    queue: str
    queue_name: str
    state: str  # waiting, called, served, missed
    window: str | None
    calls: int
    booked: bool
    appointment_id: UUID | None
    name: str | None  # masked: 张*
    ahead: int | None
    estimated_wait_seconds: float | None
    near_turn: bool
    issued_at: datetime
    called_at: datetime | None
    served_at: datetime | None


class WindowOut(ApiStruct):
    hall: str
    day: date
    window: str
    open: bool
    changed: bool
    ticket: str | None


class CallOut(ApiStruct):
    window: str
    ticket: str
    name: str | None
    called_at: datetime


class NextTicketOut(ApiStruct):
    ticket: str
    name: str | None
    booked: bool


class LineOut(ApiStruct):
    code: str
    name: str
    prefix: str
    waiting: int
    active_windows: int
    next: list[NextTicketOut]
    estimated_wait_seconds: float | None  # for a ticket taken now


class DisplayOut(ApiStruct):
    hall: str
    day: date
    version: int
    calls: list[CallOut]
    lines: list[LineOut]


def out(view: Any, shape: type[Out]) -> Out:
    """A read-model view in its wire shape: the fields have the same names, only the casing differs."""
    return msgspec.convert(view, shape, from_attributes=True)
