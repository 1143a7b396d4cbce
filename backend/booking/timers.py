"""The booking timers: a hold's expiry and the 爽约 check when a slot ends, both scheduled from the log.

Both timers are set when the hold is made, since its event knows both times, so the
consumer keeps no table of its own. A confirmed hold's expiry and an ended
appointment's 爽约 check are cancelled; a timer that fires anyway finds the
appointment moved on, and its command records nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic

from backend.booking.service import AppointmentNotFoundError, BookingService
from backend.consumers.base import Envelope
from backend.timers import TimerChanges, TimerHandler
from domain.booking import Appointment

log = logging.getLogger(__name__)

HOLD_EXPIRY = "booking_hold_expiry"
NO_SHOW = "booking_no_show"
_ENDED = (Appointment.Cancelled, Appointment.Expired, Appointment.Rescheduled, Appointment.CheckedIn)


def hold_key(appointment_id: UUID) -> str:
    return f"{HOLD_EXPIRY}:{appointment_id}"


def no_show_key(appointment_id: UUID) -> str:
    return f"{NO_SHOW}:{appointment_id}"


class BookingTimers:
    """Consumer of appointment events (the runner's Consumer protocol, by shape); it owns no tables."""

    name: str = "booking_timers"
    topics: frozenset[str] | None = frozenset(
        get_topic(cls) for cls in (Appointment.Held, Appointment.Confirmed, *_ENDED)
    )
    tables: Sequence[str] = ()

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        return None

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        timers = TimerChanges()
        for envelope in envelopes:
            event: Any = envelope.event
            appointment = envelope.originator_id
            payload = {"appointment_id": str(appointment)}
            if isinstance(event, Appointment.Held):
                timers.schedule(hold_key(appointment), HOLD_EXPIRY, event.expires_at, payload)
                timers.schedule(no_show_key(appointment), NO_SHOW, event.no_show_after, payload)
            elif isinstance(event, Appointment.Confirmed):
                timers.cancel(hold_key(appointment))
            elif isinstance(event, _ENDED):
                timers.cancel(hold_key(appointment))
                timers.cancel(no_show_key(appointment))
        await timers.write(conn)


def booking_handlers(service: BookingService) -> dict[str, TimerHandler]:
    async def expire(key: str, payload: Any) -> None:
        try:
            await service.expire(UUID(payload["appointment_id"]))
        except AppointmentNotFoundError:
            log.warning("timer %s: no such appointment; nothing to expire", key)

    async def no_show(key: str, payload: Any) -> None:
        try:
            await service.no_show(UUID(payload["appointment_id"]), "not_checked_in")
        except AppointmentNotFoundError:
            log.warning("timer %s: no such appointment; nothing to check", key)

    return {HOLD_EXPIRY: expire, NO_SHOW: no_show}
