"""A booked ticket missed at the window is a 爽约: recorded on the appointment from the log, by a timer.

Through the log rather than in the window's command, so the clerk's recall never
waits on, or fails with, the booking side: the consumer turns each missed booked
ticket into a timer due at once, and the timer worker records the 爽约 (with the
retries every timer has). The booking command is idempotent: an appointment that
is no longer checked in records nothing.
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
from domain.hall_queue import HallQueue

log = logging.getLogger(__name__)

MISSED_NO_SHOW = "hall_queue_missed"


def missed_key(appointment_id: UUID) -> str:
    return f"{MISSED_NO_SHOW}:{appointment_id}"


class QueueNoShows:
    """Consumer of missed tickets (the runner's Consumer protocol, by shape); it owns no tables."""

    name: str = "hall_queue_no_shows"
    topics: frozenset[str] | None = frozenset({get_topic(HallQueue.Missed)})
    tables: Sequence[str] = ()

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        return None

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        timers = TimerChanges()
        for envelope in envelopes:
            event: Any = envelope.event
            if isinstance(event, HallQueue.Missed) and event.booked and event.appointment_id is not None:
                payload = {"appointment_id": str(event.appointment_id)}
                timers.schedule(missed_key(event.appointment_id), MISSED_NO_SHOW, event.timestamp, payload)
        await timers.write(conn)


def queue_no_show_handlers(bookings: BookingService) -> dict[str, TimerHandler]:
    async def missed(key: str, payload: Any) -> None:
        try:
            await bookings.no_show(UUID(payload["appointment_id"]), "missed")
        except AppointmentNotFoundError:
            log.warning("timer %s: no such appointment; no 爽约 to record", key)

    return {MISSED_NO_SHOW: missed}
