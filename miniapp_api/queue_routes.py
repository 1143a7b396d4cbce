"""Hall-queue routes: 取号 (visitors and staff), the windows' calls (staff), the hall screen (public).

A command answers with the ticket as the event store has it, so a visitor sees their
ticket at once; the screen and "my tickets" read the read model. The screen's stream
polls the read model's version of the day, one primary-key probe every half second,
and sends the whole screen when it moved: a screen that missed a frame is whole again
with the next one, and there is no per-connection state to lose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol
from uuid import UUID

import msgspec
from litestar import Router, get, post
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage

from domain.booking import GeoPoint
from domain.case import Actor, Channel
from domain.case import Role as DomainRole
from domain.hall_queue import (
    AlreadyCheckedInError,
    HallQueueError,
    InvalidCommandError,
    InvalidQueueConfigError,
    NothingToCallError,
    NoTicketInHandError,
    TicketNotWaitingError,
    UnknownQueueError,
    UnknownTicketError,
    UnknownWindowError,
    WindowBusyError,
    WindowClosedError,
)
from miniapp_api.auth import EXCLUDE_FROM_AUTH, CurrentPrincipal, require_roles
from miniapp_api.booking_routes import actor_of
from miniapp_api.principal import Role
from miniapp_api.problems import ProblemMap
from miniapp_api.queue_schemas import CheckInIn, DisplayOut, TicketOut, TransferIn, WindowOut, out
from projections.hall_queue_reads import HallQueueQueries, TicketStatus, WindowStatus

_PUBLIC = {EXCLUDE_FROM_AUTH: True}
_PRIVATE = CacheControlHeader(private=True, no_store=True)
_FRESH = CacheControlHeader(no_cache=True)  # the screen changes with every call
_TAKERS = require_roles(Role.CITIZEN, Role.CLERK, Role.MANAGER, Role.ADMIN)
_STAFF = require_roles(Role.CLERK, Role.MANAGER, Role.ADMIN)
_CITIZENS = require_roles(Role.CITIZEN)
_WINDOW = "/halls/{hall:str}/windows/{window:str}"


class QueueCommands(Protocol):
    """What the routes ask of the hall-queue service (backend.hall_queue.service is the adapter)."""

    async def check_in(
        self,
        actor: Actor,
        channel: Channel,
        *,
        hall: str,
        group: str | None = None,
        item_code: str | None = None,
        appointment_id: UUID | None = None,
        case_id: UUID | None = None,
        location: GeoPoint | None = None,
    ) -> TicketStatus: ...
    async def call_next(self, actor: Actor, hall: str, window: str) -> TicketStatus: ...
    async def recall(self, actor: Actor, hall: str, window: str) -> TicketStatus: ...
    async def serve(self, actor: Actor, hall: str, window: str) -> TicketStatus: ...
    async def transfer(self, actor: Actor, hall: str, window: str, to_queue: str) -> TicketStatus: ...
    async def open_window(self, actor: Actor, hall: str, window: str) -> WindowStatus: ...
    async def close_window(self, actor: Actor, hall: str, window: str) -> WindowStatus: ...


def queue_router(
    service: QueueCommands,
    queries: HallQueueQueries,
    *,
    poll_seconds: float = 0.5,
    heartbeat_seconds: float = 15.0,
) -> Router:
    @post(
        "/halls/{hall:str}/check-ins",
        guards=[_TAKERS],
        status_code=201,
        tags=["hall queue"],
        summary="取号: a ticket for an appointment or a walk-in",
    )
    async def check_in(
        hall: FromPath[str], data: JSONBody[CheckInIn], principal: CurrentPrincipal
    ) -> TicketOut:
        actor, channel = actor_of(principal)
        if data.channel is not None:
            if actor.role is DomainRole.CITIZEN:
                raise PermissionDeniedException("a visitor checks in from the mini-program, with a location")
            channel = Channel(data.channel.value)
        status = await service.check_in(
            actor, channel, hall=hall, group=data.group, item_code=data.item_code,
            appointment_id=data.appointment_id, case_id=data.case_id, location=data.location_point(),
        )  # fmt: skip
        return out(status, TicketOut)

    @post(f"{_WINDOW}/call-next", guards=[_STAFF], status_code=200, tags=["hall queue"], summary="叫号")
    async def call_next(hall: FromPath[str], window: FromPath[str], principal: CurrentPrincipal) -> TicketOut:
        return out(await service.call_next(actor_of(principal)[0], hall, window), TicketOut)

    @post(
        f"{_WINDOW}/recall",
        guards=[_STAFF],
        status_code=200,
        tags=["hall queue"],
        summary="Call the ticket in hand again; after the last call it is missed (过号)",
    )
    async def recall(hall: FromPath[str], window: FromPath[str], principal: CurrentPrincipal) -> TicketOut:
        return out(await service.recall(actor_of(principal)[0], hall, window), TicketOut)

    @post(
        f"{_WINDOW}/served",
        guards=[_STAFF],
        status_code=200,
        tags=["hall queue"],
        summary="The visitor in hand has been served",
    )
    async def served(hall: FromPath[str], window: FromPath[str], principal: CurrentPrincipal) -> TicketOut:
        return out(await service.serve(actor_of(principal)[0], hall, window), TicketOut)

    @post(
        f"{_WINDOW}/transfer",
        guards=[_STAFF],
        status_code=200,
        tags=["hall queue"],
        summary="转号: the ticket in hand to the head of another queue",
    )
    async def transfer(
        hall: FromPath[str], window: FromPath[str], data: JSONBody[TransferIn], principal: CurrentPrincipal
    ) -> TicketOut:
        actor = actor_of(principal)[0]
        return out(await service.transfer(actor, hall, window, data.to_queue), TicketOut)

    @post(f"{_WINDOW}/open", guards=[_STAFF], status_code=200, tags=["hall queue"], summary="Open a window")
    async def open_window(
        hall: FromPath[str], window: FromPath[str], principal: CurrentPrincipal
    ) -> WindowOut:
        return out(await service.open_window(actor_of(principal)[0], hall, window), WindowOut)

    @post(f"{_WINDOW}/close", guards=[_STAFF], status_code=200, tags=["hall queue"], summary="Close a window")
    async def close_window(
        hall: FromPath[str], window: FromPath[str], principal: CurrentPrincipal
    ) -> WindowOut:
        return out(await service.close_window(actor_of(principal)[0], hall, window), WindowOut)

    @get(
        "/halls/{hall:str}/display",
        opt=_PUBLIC,
        security=[{}],
        cache_control=_FRESH,
        tags=["hall queue"],
        summary="The hall screen: tickets at the windows, each line's next and its wait; names masked",
    )
    async def display(hall: FromPath[str]) -> DisplayOut:
        return out(await queries.display(hall, queries.today()), DisplayOut)

    @get(
        "/halls/{hall:str}/display/stream",
        opt=_PUBLIC,
        security=[{}],
        tags=["hall queue"],
        summary="The hall screen as Server-Sent Events: at connect, at every change, and a heartbeat",
    )
    async def display_stream(hall: FromPath[str]) -> ServerSentEvent:
        return ServerSentEvent(_frames(queries, hall, poll_seconds, heartbeat_seconds))

    @get(
        "/me/tickets",
        guards=[_CITIZENS],
        cache_control=_PRIVATE,
        tags=["hall queue"],
        summary="My tickets of today, with the tickets ahead and the estimated wait",
    )
    async def my_tickets(principal: CurrentPrincipal) -> list[TicketOut]:
        return [out(t, TicketOut) for t in await queries.my_tickets(principal.subject, queries.today())]

    handlers: list[HTTPRouteHandler] = [
        check_in, call_next, recall, served, transfer, open_window, close_window, display, display_stream,
        my_tickets,
    ]  # fmt: skip
    return Router(path="/api/v1", route_handlers=handlers)


async def _frames(
    queries: HallQueueQueries, hall: str, poll_seconds: float, heartbeat_seconds: float
) -> AsyncIterator[ServerSentEventMessage]:
    """The screen at connect and when the day's version moves; when quiet, a comment keeps proxies open."""
    loop = asyncio.get_running_loop()
    shown: tuple[object, int] | None = None
    quiet_since = loop.time()
    while True:
        day = queries.today()  # a screen left on overnight moves to the new day by itself
        if shown != (day, await queries.version(hall, day)):
            screen = await queries.display(hall, day)
            shown = (day, screen.version)
            data = msgspec.json.encode(out(screen, DisplayOut)).decode()
            yield ServerSentEventMessage(data=data, event="display", id=f"{day.isoformat()}:{screen.version}")
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= heartbeat_seconds:
            yield ServerSentEventMessage(data=None, comment="heartbeat")
            quiet_since = loop.time()
        await asyncio.sleep(poll_seconds)


def register_queue_problems(problems: ProblemMap) -> ProblemMap:
    """The queue's refusals: each a stable type a kiosk or a window client can switch on."""
    problems.register(
        InvalidQueueConfigError, 422, "queue-config-invalid", "The hall cannot queue as configured"
    )
    problems.register(InvalidCommandError, 422, "queue-command-invalid", "The queue command is malformed")
    problems.register(UnknownQueueError, 404, "queue-not-found", "No such queue in this hall")
    problems.register(UnknownWindowError, 404, "window-not-found", "No such window in this hall")
    problems.register(UnknownTicketError, 404, "ticket-not-found", "No such ticket today")
    problems.register(TicketNotWaitingError, 409, "ticket-not-waiting", "The ticket is no longer waiting")
    problems.register(WindowBusyError, 409, "window-busy", "The window has a ticket in hand")
    problems.register(WindowClosedError, 409, "window-closed", "The window is closed")
    problems.register(NothingToCallError, 409, "nobody-waiting", "Nobody is waiting for this window")
    problems.register(NoTicketInHandError, 409, "no-ticket-in-hand", "The window has no ticket in hand")
    problems.register(
        AlreadyCheckedInError, 409, "already-checked-in", "The appointment already has a ticket"
    )
    problems.register(HallQueueError, 409, "queue-refused", "The hall queue refused the command")
    return problems
