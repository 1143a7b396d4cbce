"""The 通办 dashboard per partner city: volumes, what is in flight, delays, and the message backlog.

Volumes and delays count the handoffs whose hand-off (or receipt) fell on a Beijing day
in [since, until]; what is in flight, and the backlog of undelivered messages, are as of
now whatever the window. The figures are computed here from the rows, as the rating
boards are, so a rebuild of tongban_board gives identical figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from uuid import UUID

import asyncpg
import msgspec

from domain.case.checks import BEIJING
from projections.catalogue import PoolSource
from projections.partners import PartnerQueries

_DECIDED = ("approved", "denied")


class Delay(msgspec.Struct, frozen=True, kw_only=True):
    """Seconds from hand-off to a step, over the cases that reached it (nearest-rank percentiles)."""

    cases: int
    median_seconds: int | None
    p90_seconds: int | None
    max_seconds: int | None


class InFlight(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    handed_off_at: datetime
    waiting_seconds: int


class DirectionFigures(msgspec.Struct, frozen=True, kw_only=True):
    handed_off: int  # sent: handed to the partner; received: received from it
    taken_on: int  # sent only: the partner accepted it
    refused: int  # sent only: the partner sent it back
    concluded: int
    approved: int
    denied: int
    in_flight: int  # as of now: neither concluded nor refused, whenever handed off
    oldest_in_flight: InFlight | None
    to_acceptance: Delay
    to_decision: Delay  # approved or denied
    paper_in_transit: int  # as of now: paper originals posted, not yet archived by the 办理地
    oldest_paper_in_transit: InFlight | None  # handed_off_at is when the paper was posted
    paper_to_archive: Delay


class Backlog(msgspec.Struct, frozen=True, kw_only=True):
    """Our messages to the partner not yet delivered (federation_outbox)."""

    pending: int
    oldest_pending_at: datetime | None
    oldest_pending_seconds: int | None


class PartnerBoard(msgspec.Struct, frozen=True, kw_only=True):
    region: str
    name: str | None  # None: not in the partner registry
    sent: DirectionFigures
    received: DirectionFigures
    backlog: Backlog


class HandoffRow(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    partner: str
    direction: str
    handed_off_at: datetime
    accepted_at: datetime | None
    refused_at: datetime | None
    concluded_at: datetime | None
    result: str | None
    paper_posted_at: datetime | None = None
    paper_archived_at: datetime | None = None


def delay(seconds: Sequence[float]) -> Delay:
    ordered = sorted(int(s) for s in seconds)
    if not ordered:
        return Delay(cases=0, median_seconds=None, p90_seconds=None, max_seconds=None)

    def rank(p: float) -> int:
        return ordered[max(0, math.ceil(len(ordered) * p) - 1)]  # nearest rank

    return Delay(cases=len(ordered), median_seconds=rank(0.5), p90_seconds=rank(0.9), max_seconds=ordered[-1])


def figures(rows: Sequence[HandoffRow], since: date, until: date, now: datetime) -> DirectionFigures:
    """One partner's figures in one direction."""
    window = [r for r in rows if since <= r.handed_off_at.astimezone(BEIJING).date() <= until]
    open_ = sorted(
        (r for r in rows if r.concluded_at is None and r.refused_at is None), key=lambda r: r.handed_off_at
    )
    oldest = _oldest([(r.case_id, r.handed_off_at) for r in open_], now)
    in_transit = sorted(
        ((r.case_id, r.paper_posted_at) for r in rows if r.paper_posted_at and r.paper_archived_at is None),
        key=lambda pair: pair[1],
    )
    return DirectionFigures(
        handed_off=len(window),
        taken_on=sum(r.accepted_at is not None for r in window),
        refused=sum(r.refused_at is not None for r in window),
        concluded=sum(r.concluded_at is not None for r in window),
        approved=sum(r.result == "approved" for r in window),
        denied=sum(r.result == "denied" for r in window),
        in_flight=len(open_),
        oldest_in_flight=oldest,
        to_acceptance=delay(
            [(r.accepted_at - r.handed_off_at).total_seconds() for r in window if r.accepted_at is not None]
        ),
        to_decision=delay(
            [
                (r.concluded_at - r.handed_off_at).total_seconds()
                for r in window
                if r.concluded_at is not None and r.result in _DECIDED
            ]
        ),
        paper_in_transit=len(in_transit),
        oldest_paper_in_transit=_oldest(in_transit, now),
        paper_to_archive=delay(
            [
                (r.paper_archived_at - r.paper_posted_at).total_seconds()
                for r in window
                if r.paper_posted_at is not None and r.paper_archived_at is not None
            ]
        ),
    )


def _oldest(waiting: Sequence[tuple[UUID, datetime]], now: datetime) -> InFlight | None:
    """The first of (case, since) pairs, oldest first, and how long it has waited."""
    if not waiting:
        return None
    case_id, since = waiting[0]
    return InFlight(
        case_id=case_id,
        handed_off_at=since.astimezone(BEIJING),
        waiting_seconds=int((now - since).total_seconds()),
    )


class TongbanBoardQueries:
    def __init__(
        self, pool: PoolSource, clock: Callable[[], datetime], partners: PartnerQueries | None = None
    ) -> None:
        self._pool, self.clock, self._partners = pool, clock, partners

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    def today(self) -> date:
        return self.clock().astimezone(BEIJING).date()

    async def rows(self) -> list[HandoffRow]:
        found = await self.pool.fetch(
            "SELECT case_id, partner, direction, handed_off_at, accepted_at, refused_at, concluded_at, "
            "result, paper_posted_at, paper_archived_at FROM tongban_handoffs ORDER BY handed_off_at, handoff"
        )
        return [HandoffRow(**dict(r)) for r in found]

    async def dashboard(self, since: date, until: date) -> list[PartnerBoard]:
        """Every partner with a handoff, a pending message or a registry entry, by region."""
        now = self.clock()
        rows = await self.rows()
        backlog = {
            r["partner"]: (r["pending"], r["oldest"])
            for r in await self.pool.fetch(
                "SELECT partner, count(*) AS pending, min(created_at) AS oldest FROM federation_outbox "
                "WHERE delivered_at IS NULL GROUP BY partner"
            )
        }
        names = {p.region: p.name for p in await self._partners.all()} if self._partners else {}
        boards = []
        for region in sorted({r.partner for r in rows} | set(backlog) | set(names)):
            mine = [r for r in rows if r.partner == region]
            pending, oldest = backlog.get(region, (0, None))
            boards.append(
                PartnerBoard(
                    region=region,
                    name=names.get(region),
                    sent=figures([r for r in mine if r.direction == "sent"], since, until, now),
                    received=figures([r for r in mine if r.direction == "received"], since, until, now),
                    backlog=Backlog(
                        pending=pending,
                        oldest_pending_at=None if oldest is None else oldest.astimezone(BEIJING),
                        oldest_pending_seconds=None
                        if oldest is None
                        else int((now - oldest).total_seconds()),
                    ),
                )
            )
        return boards


def default_window(since: date | None, until: date | None, today: date) -> tuple[date, date]:
    """The last 30 days by default."""
    until = until or today
    return since or until - timedelta(days=29), until
