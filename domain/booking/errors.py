"""Why a booking command was refused; a refused command records nothing."""

from __future__ import annotations

from datetime import date


class BookingError(Exception):
    """Base of every refusal in booking: the API maps each subclass to one stable problem type."""


class InvalidHallConfigError(BookingError):
    """A hall's configuration contradicts itself (a window serving an unknown group, overlapping hours)."""


class UnknownHallError(BookingError):
    pass


class NotBookableError(BookingError):
    """Not a slot the hall offers: closed day, outside opening hours, beyond the horizon, not yet released."""


class SlotFullError(BookingError):
    """Every seat of the slot is confirmed or held."""


class CapReachedError(BookingError):
    """The person already has as many bookings as the rules allow in that day, week or month."""

    def __init__(self, message: str, *, period: str) -> None:
        super().__init__(message)
        self.period = period  # "day", "week" or "month"


class BookingBannedError(BookingError):
    """爽约 too often: no booking until the ban ends."""

    def __init__(self, message: str, *, until: date) -> None:
        super().__init__(message)
        self.until = until


class HoldExpiredError(BookingError):
    """The hold ran out before it was confirmed; its seat may already be someone else's."""


class CancelTooLateError(BookingError):
    """Past the cut-off before the slot starts (2 hours by default)."""


class AppointmentStateError(BookingError):
    """The appointment is not in a state for this command (already cancelled, not confirmed …)."""


class NotYourAppointmentError(BookingError):
    """Only the account that booked (or staff of the hall) may act on an appointment."""


class CheckInClosedError(BookingError):
    """Check-in for a booking opens an hour before its slot and closes when the slot ends."""


class TooFarFromHallError(BookingError):
    """A mini-program check-in must be made near the hall."""
