"""好差评 from the log: invitations when a case concludes or a visit is served, and the rating's clocks.

One consumer with no tables. A concluded case and a served hall visit each become a
timer due at once, whose handler invites the rating (the command's deterministic id
makes a repeat a no-op). An invited occasion gets its reminder (3 days on) and its
default (the day after the window's last) as timers, cancelled once it is rated; a
差评工单 gets its overdue timer, cancelled once it is resolved or excluded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic

from backend.consumers.base import Envelope
from backend.rating.service import RATED_RESULTS, RatingRules, RatingService
from backend.timers import TimerChanges, TimerHandler
from domain.case import Case
from domain.case.checks import BEIJING
from domain.hall_queue import HallQueue
from domain.rating import Rating, RectificationTicket

log = logging.getLogger(__name__)

INVITE_CASE = "rating_invite_case"
INVITE_VISIT = "rating_invite_visit"
REMIND = "rating_remind"
DEFAULT = "rating_default"
OVERDUE = "rating_ticket_overdue"
_EVENTS = (
    Case.Concluded, Case.InstantlyApproved, HallQueue.Served,
    Rating.Invited, Rating.Rated, Rating.Defaulted,
    RectificationTicket.Opened, RectificationTicket.Resolved, RectificationTicket.AppealDecided,
)  # fmt: skip


def _midnight_after(day: Any) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), BEIJING)


class RatingTimers:
    """Consumer of conclusions, visits, ratings and tickets (the runner's Consumer protocol, by shape)."""

    name: str = "rating_timers"
    topics: frozenset[str] | None = frozenset(get_topic(cls) for cls in _EVENTS)
    tables: Sequence[str] = ()

    def __init__(self, rules: RatingRules | None = None) -> None:
        self.rules = rules or RatingRules()

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        return None

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        timers = TimerChanges()
        for envelope in envelopes:
            event: Any = envelope.event
            origin = envelope.originator_id
            match event:
                case Case.Concluded() if event.result in RATED_RESULTS:
                    timers.schedule(
                        f"{INVITE_CASE}:{origin}", INVITE_CASE, event.timestamp, {"case_id": str(origin)}
                    )
                case Case.InstantlyApproved():
                    timers.schedule(
                        f"{INVITE_CASE}:{origin}", INVITE_CASE, event.timestamp, {"case_id": str(origin)}
                    )
                case HallQueue.Served():
                    payload = {"queue_id": str(origin), "ticket": event.ticket, "window": event.window,
                               "clerk": event.actor.id}  # fmt: skip
                    timers.schedule(
                        f"{INVITE_VISIT}:{origin}:{event.ticket}", INVITE_VISIT, event.timestamp, payload
                    )
                case Rating.Invited():
                    if event.occasion.case_id is not None and event.occasion.channel == "online":
                        timers.cancel(f"{INVITE_CASE}:{event.occasion.case_id}")  # invited already
                    payload = {"rating_id": str(origin)}
                    remind_at = event.timestamp + timedelta(days=self.rules.remind_after_days)
                    if remind_at.date() <= event.closes_on:
                        timers.schedule(f"{REMIND}:{origin}", REMIND, remind_at, payload)
                    timers.schedule(f"{DEFAULT}:{origin}", DEFAULT, _midnight_after(event.closes_on), payload)
                case Rating.Rated() | Rating.Defaulted():
                    timers.cancel(f"{REMIND}:{origin}")
                    timers.cancel(f"{DEFAULT}:{origin}")
                case RectificationTicket.Opened():
                    timers.schedule(
                        f"{OVERDUE}:{origin}", OVERDUE, _midnight_after(event.due), {"ticket": str(origin)}
                    )
                case RectificationTicket.Resolved():
                    timers.cancel(f"{OVERDUE}:{origin}")
                case RectificationTicket.AppealDecided() if event.upheld:
                    timers.cancel(f"{OVERDUE}:{origin}")
        await timers.write(conn)


def rating_handlers(service: RatingService) -> dict[str, TimerHandler]:
    async def invite_case(key: str, payload: Any) -> None:
        await service.invite_for_case(UUID(payload["case_id"]))

    async def invite_visit(key: str, payload: Any) -> None:
        await service.invite_for_visit(
            UUID(payload["queue_id"]), payload["ticket"], payload["window"], payload["clerk"]
        )

    async def remind(key: str, payload: Any) -> None:
        await service.remind(UUID(payload["rating_id"]))

    async def default(key: str, payload: Any) -> None:
        await service.default(UUID(payload["rating_id"]))

    async def overdue(key: str, payload: Any) -> None:
        await service.mark_overdue(UUID(payload["ticket"]))

    return {
        INVITE_CASE: invite_case,
        INVITE_VISIT: invite_visit,
        REMIND: remind,
        DEFAULT: default,
        OVERDUE: overdue,
    }
