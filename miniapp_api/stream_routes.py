"""Department streams: the published case events as Server-Sent Events and as cursor pages.

Both forms carry the same integration events (projections/integration_events.py),
scoped the same way: an officer sees their own department's, an admin any one
department's or all of them; personal data stays masked unless the token grants it.
The global position is the cursor: it is each SSE event's id, so a reconnecting
EventSource resumes with Last-Event-ID, and it is what `after` takes.

An SSE connection first catches up from its cursor with pages, then subscribes to
the process's hub and reads one more page to close the gap; from then on every
event comes from the hub, and any at or below the cursor is skipped, so nothing is
missed or sent twice. A quiet connection gets a comment line every
`heartbeat_seconds`. A connection that falls behind by more than the hub's buffer is
dropped with an `event: dropped` naming the reason and the cursor to resume after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Protocol

import msgspec
from litestar import Request, Router, get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter
from litestar.response import Stream

from miniapp_api.auth import CurrentPrincipal, require_roles
from miniapp_api.principal import DepartmentCode, Principal, Role
from miniapp_api.problems import ProblemMap
from miniapp_api.schemas import ApiStruct
from projections.event_stream_reads import Published, StreamQueries, StreamScope
from projections.integration_events import DECODER, IntegrationEvent

_SUBSCRIBERS = require_roles(Role.OFFICER, Role.ADMIN)
_PRIVATE = CacheControlHeader(private=True, no_store=True)


class InvalidCursorError(ValueError):
    """Last-Event-ID or `after` is not a position."""


class Feed(Protocol):
    """One subscriber's view of the hub (backend.streams.hub.Subscription)."""

    dropped: str | None

    async def take(self, wait_seconds: float) -> list[Published]: ...
    def close(self) -> None: ...


class Hub(Protocol):
    """The process's fan-out of the published stream (backend.streams.hub.StreamHub)."""

    def subscribe(self, scope: StreamScope) -> Feed: ...


class StreamPageOut(ApiStruct):
    events: list[IntegrationEvent]
    next_cursor: int  # pass as `after` for the next page
    head: int  # the last position published so far


class _Dropped(msgspec.Struct, rename="camel"):
    reason: str
    resume_after: int


def stream_scope(principal: Principal, department: str | None) -> StreamScope:
    """An officer reads only their own department; an admin one department, or all when none is named."""
    if principal.role is Role.OFFICER:
        if principal.department is None:
            raise PermissionDeniedException("an officer's token must name their department")
        if department is not None and department != principal.department:
            raise PermissionDeniedException("an officer reads only their own department's stream")
        department = principal.department
    return StreamScope(department=department, personal=principal.personal_data)


def _cursor(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise InvalidCursorError("a cursor is a non-negative event position, such as 1234")
    return int(text)


def stream_router(queries: StreamQueries, hub: Hub, *, page_limit: int, heartbeat_seconds: float) -> Router:
    @get(
        "/streams/events",
        guards=[_SUBSCRIBERS],
        cache_control=_PRIVATE,
        tags=["streams"],
        summary="The next page of the caller's stream after a cursor",
    )
    async def pull(
        principal: CurrentPrincipal,
        after: Annotated[int, Parameter(ge=0, description="the cursor: the last position already read")] = 0,
        limit: Annotated[int, Parameter(ge=1, le=10_000)] = 100,
        department: Annotated[DepartmentCode | None, Parameter(description="admins: one department")] = None,
    ) -> StreamPageOut:
        page = await queries.page(stream_scope(principal, department), after, min(limit, page_limit))
        return StreamPageOut(
            events=[DECODER.decode(body) for body in page.events],
            next_cursor=page.next_cursor,
            head=page.head,
        )

    @get(
        "/streams/events/sse",
        guards=[_SUBSCRIBERS],
        tags=["streams"],
        summary="The caller's stream as Server-Sent Events, resumable with Last-Event-ID",
        description=(
            "Each event's `id` is its position, `event` its type and `data` the integration event. "
            "Without Last-Event-ID or `after` the stream starts at the head: only new events."
        ),
    )
    async def sse(
        request: Request[Any, Any, Any],
        principal: CurrentPrincipal,
        after: Annotated[str | None, Parameter(description="start after this position")] = None,
        department: Annotated[DepartmentCode | None, Parameter(description="admins: one department")] = None,
    ) -> Stream:
        scope = stream_scope(principal, department)
        cursor = _cursor(request.headers.get("last-event-id"))
        if cursor is None:
            cursor = _cursor(after)
        if cursor is None:
            cursor = await queries.head()
        return Stream(
            _frames(queries, hub, scope, cursor, page_limit, heartbeat_seconds),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    handlers: list[HTTPRouteHandler] = [pull, sse]
    return Router(path="/api/v1", route_handlers=handlers)


def _frame(event: Published, body: bytes) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.position, event.type.encode(), body)


async def _frames(
    queries: StreamQueries, hub: Hub, scope: StreamScope, cursor: int, limit: int, heartbeat: float
) -> AsyncIterator[bytes]:
    yield b"retry: 2000\n\n"

    async def catch_up() -> AsyncIterator[bytes]:
        nonlocal cursor
        while True:
            found = await queries.entries(scope, cursor, limit)
            if found:
                yield await _chunk(queries, scope, found)
                cursor = found[-1].position
            if len(found) < limit:
                return

    async for chunk in catch_up():
        yield chunk
    feed = hub.subscribe(scope)
    try:
        async for chunk in catch_up():  # what was published between the catch-up and the subscription
            yield chunk
        while True:
            taken = await feed.take(heartbeat)
            if feed.dropped is not None:
                reason = _Dropped(reason=feed.dropped, resume_after=cursor)
                yield b"event: dropped\ndata: %s\n\n" % msgspec.json.encode(reason)
                return
            fresh = [e for e in taken if e.position > cursor]
            if not fresh:
                yield b": heartbeat\n\n"
                continue
            yield await _chunk(queries, scope, fresh)
            cursor = fresh[-1].position
    finally:
        feed.close()


async def _chunk(queries: StreamQueries, scope: StreamScope, events: Sequence[Published]) -> bytes:
    bodies = await queries.bodies(scope, events)
    return b"".join(_frame(e, b) for e, b in zip(events, bodies, strict=True))


def register_stream_problems(problems: ProblemMap) -> ProblemMap:
    problems.register(InvalidCursorError, 400, "stream-cursor-invalid", "Not a stream position")
    return problems
