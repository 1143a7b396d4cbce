"""The 通办 dashboard for admins and supervisors: per partner city, volumes, in flight, delays, backlog."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Protocol
from uuid import UUID

import msgspec
from litestar import Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from miniapp_api.auth import require_roles
from miniapp_api.principal import Role
from miniapp_api.schemas import ApiStruct
from projections.tongban_board_reads import PartnerBoard, default_window


class TongbanBoard(Protocol):
    """projections.tongban_board_reads.TongbanBoardQueries is the real one."""

    def today(self) -> date: ...
    async def dashboard(self, since: date, until: date) -> list[PartnerBoard]: ...


class DelayOut(ApiStruct):
    cases: int
    median_seconds: int | None
    p90_seconds: int | None
    max_seconds: int | None


class InFlightOut(ApiStruct):
    case_id: UUID
    handed_off_at: datetime
    waiting_seconds: int


class DirectionOut(ApiStruct):
    handed_off: int
    taken_on: int
    refused: int
    concluded: int
    approved: int
    denied: int
    in_flight: int
    oldest_in_flight: InFlightOut | None
    to_acceptance: DelayOut
    to_decision: DelayOut
    paper_in_transit: int  # 异地代收代办: paper originals posted, not yet archived by the handling city
    oldest_paper_in_transit: InFlightOut | None  # handedOffAt: when the paper was posted
    paper_to_archive: DelayOut  # from posting to archiving


class BacklogOut(ApiStruct):
    pending: int
    oldest_pending_at: datetime | None
    oldest_pending_seconds: int | None


class PartnerBoardOut(ApiStruct):
    region: str
    name: str | None
    sent: DirectionOut
    received: DirectionOut
    backlog: BacklogOut


class DashboardOut(ApiStruct):
    since: date
    until: date
    partners: list[PartnerBoardOut]


def tongban_router(board: TongbanBoard) -> Router:
    """/api/v1/admin/tongban: the per-partner dashboard."""

    @get(
        "/dashboard",
        cache_control=CacheControlHeader(private=True, no_store=True),
        summary="通办 per partner city: volumes and delays over Beijing days, in flight and backlog now",
    )
    async def dashboard(
        since: Annotated[date | None, QueryParameter()] = None,
        until: Annotated[date | None, QueryParameter()] = None,
    ) -> DashboardOut:
        since, until = default_window(since, until, board.today())
        if since > until:
            raise ValidationException("since is after until")
        partners = msgspec.convert(
            await board.dashboard(since, until), list[PartnerBoardOut], from_attributes=True
        )
        return DashboardOut(since=since, until=until, partners=partners)

    return Router(
        path="/api/v1/admin/tongban",
        route_handlers=[dashboard],
        guards=[require_roles(Role.ADMIN, Role.SUPERVISOR)],
    )
