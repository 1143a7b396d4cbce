"""Booking hall appointments (网上预约): halls, slots, the people who book, and their appointments."""

from domain.booking.appointment import Appointment, AppointmentState, Visitor
from domain.booking.booker import Booker, booker_id
from domain.booking.errors import (
    AppointmentStateError,
    BookingBannedError,
    BookingError,
    CancelTooLateError,
    CapReachedError,
    CheckInClosedError,
    HoldExpiredError,
    InvalidHallConfigError,
    NotBookableError,
    NotYourAppointmentError,
    SlotFullError,
    TooFarFromHallError,
    UnknownHallError,
)
from domain.booking.hall import BookingRules, GeoPoint, Hall, HallConfig, ItemGroup, Session, Window, hall_id
from domain.booking.schedule import SlotTime, bookable_days, offered, slot_id, slot_times
from domain.booking.slot import Slot

__all__ = [
    "Appointment",
    "AppointmentState",
    "AppointmentStateError",
    "Booker",
    "BookingBannedError",
    "BookingError",
    "BookingRules",
    "CancelTooLateError",
    "CapReachedError",
    "CheckInClosedError",
    "GeoPoint",
    "Hall",
    "HallConfig",
    "HoldExpiredError",
    "InvalidHallConfigError",
    "ItemGroup",
    "NotBookableError",
    "NotYourAppointmentError",
    "Session",
    "Slot",
    "SlotFullError",
    "SlotTime",
    "TooFarFromHallError",
    "UnknownHallError",
    "Visitor",
    "Window",
    "bookable_days",
    "booker_id",
    "hall_id",
    "offered",
    "slot_id",
    "slot_times",
]
