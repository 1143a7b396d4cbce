"""/federation/v1: partner cities deliver signed messages and fetch handoffs' files; the admins' view.

The partner routes take no bearer token: the Ed25519 signature over the request (see
backend/federation/signing.py) authenticates the calling city. They read the path and
body as sent, since the signature covers those exact bytes, and leave every check to
their port: refusals arrive here as errors with their own problem types.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from miniapp_api.auth import EXCLUDE_FROM_AUTH, CurrentPrincipal, require_roles
from miniapp_api.federation_schemas import (
    InboxMessageOut,
    InboxSummaryOut,
    OutboxSummaryOut,
    ReceivedOut,
    RefusalOut,
    SkipIn,
)
from miniapp_api.notification_routes import PRIVATE_CACHE
from miniapp_api.principal import Role

T = TypeVar("T")
Limit = Annotated[int, QueryParameter(ge=1, le=500)]


class FederationInbox(Protocol):
    """backend.federation.inbox.Inbox is the adapter."""

    async def receive(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, remote: str | None
    ) -> bool:
        """True if stored now, False if it was here already; a refusal raises."""
        ...


class ServedMaterial(Protocol):
    @property
    def data(self) -> bytes: ...
    @property
    def sha256(self) -> str: ...
    @property
    def media_type(self) -> str: ...


class HandoffMaterialFiles(Protocol):
    """backend.federation.material_files.HandoffFiles is the adapter."""

    async def serve(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        handoff: UUID,
        sha256: str,
        remote: str | None,
    ) -> ServedMaterial:
        """The file, if the signing partner may have it; a refusal raises (404 for any file it may not)."""
        ...


class FederationAdmin(Protocol):
    """backend.federation.admin.FederationAdmin is the adapter."""

    async def refusals(self, limit: int) -> Sequence[object]: ...
    async def outbox(self, state: str | None, limit: int) -> object: ...
    async def inbox(self, state: str | None, limit: int) -> object: ...
    async def skip(self, partner: str, message_id: UUID, *, by: str, reason: str) -> object:
        """Give up on a message not yet applied nor skipped; unknown, settled or a bad reason raise."""
        ...


def _out(value: object, kind: type[T]) -> T:
    return msgspec.convert(value, kind, from_attributes=True)


def federation_messages_router(inbox: FederationInbox) -> Router:
    @post(
        "/messages",
        opt={EXCLUDE_FROM_AUTH: True},
        security=[{}],
        summary="Take a partner city's signed message (202 accepted, 200 duplicate)",
        description="Signed with the Citypass-Region, -Key-Id, -Timestamp, -Message-Id and -Signature "
        "headers; the body is a message envelope (kind, handoff, seq, sentAt, payload).",
    )
    async def message(request: Request[Any, Any, Any]) -> Response[ReceivedOut]:
        body = await request.body()
        remote = request.client.host if request.client else None
        stored = await inbox.receive(request.method, _as_sent(request), dict(request.headers), body, remote)
        if stored:
            return Response(ReceivedOut(status="accepted"), status_code=202)
        return Response(ReceivedOut(status="duplicate"), status_code=200)

    return Router(path="/federation/v1", route_handlers=[message], tags=["通办"])


def federation_files_router(files: HandoffMaterialFiles) -> Router:
    @get(
        "/handoffs/{handoff:uuid}/materials/{sha256:str}",
        opt={EXCLUDE_FROM_AUTH: True},
        security=[{}],
        summary="A material file of a handoff we sent the signing partner city",
        description="Signed as messages are, over GET, the path as sent and an empty body, with a fresh "
        "UUID as Citypass-Message-Id. 404 federation-material-not-found for any file not among those "
        "the case has held since it was handed to that partner.",
    )
    async def material(
        request: Request[Any, Any, Any], handoff: FromPath[UUID], sha256: FromPath[str]
    ) -> Response[bytes]:
        body = await request.body()
        remote = request.client.host if request.client else None
        served = await files.serve(
            request.method, _as_sent(request), dict(request.headers), body, handoff, sha256, remote
        )
        digest = base64.b64encode(bytes.fromhex(served.sha256)).decode()
        headers = {
            "Cache-Control": "private, no-store",
            "ETag": f'"{served.sha256}"',
            "Repr-Digest": f"sha-256=:{digest}:",  # RFC 9530
        }
        return Response(served.data, media_type=served.media_type, headers=headers)

    return Router(path="/federation/v1", route_handlers=[material], tags=["通办"])


def _as_sent(request: Request[Any, Any, Any]) -> str:
    """The path with its query, as the caller signed it."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    return str(request.scope["path"]) + (f"?{query}" if query else "")


def admin_federation_router(admin: FederationAdmin) -> Router:
    """/api/v1/admin/federation: what went out, what came in, what was refused; skipping a stuck message."""

    @get("/refusals", cache_control=PRIVATE_CACHE, summary="Messages refused at the inbox, newest first")
    async def refusals(limit: Limit = 50) -> list[RefusalOut]:
        return [_out(r, RefusalOut) for r in await admin.refusals(limit)]

    @get("/outbox", cache_control=PRIVATE_CACHE, summary="Our messages to partner cities: counts and latest")
    async def outbox(
        # `state` is a name litestar reserves (the app state), so the parameter is aliased.
        wanted: Annotated[Literal["pending", "delivered"] | None, QueryParameter(name="state")] = None,
        limit: Limit = 50,
    ) -> OutboxSummaryOut:
        return _out(await admin.outbox(wanted, limit), OutboxSummaryOut)

    @get("/inbox", cache_control=PRIVATE_CACHE, summary="Partner cities' messages to us: counts and latest")
    async def inbox(
        wanted: Annotated[
            Literal["pending", "applied", "failed", "skipped"] | None, QueryParameter(name="state")
        ] = None,
        limit: Limit = 50,
    ) -> InboxSummaryOut:
        return _out(await admin.inbox(wanted, limit), InboxSummaryOut)

    @post(
        "/inbox/{partner:str}/{message_id:uuid}/skip",
        status_code=200,
        summary="Give up on a partner's message that cannot be applied, so its handoff goes on",
        description="The message is never applied; the next seq of its handoff is applied as if it had "
        "been. Who skipped it, when and why are kept with it.",
    )
    async def skip(
        partner: FromPath[str],
        message_id: FromPath[UUID],
        data: JSONBody[SkipIn],
        principal: CurrentPrincipal,
    ) -> InboxMessageOut:
        skipped = await admin.skip(partner, message_id, by=principal.subject, reason=data.reason)
        return _out(skipped, InboxMessageOut)

    return Router(
        path="/api/v1/admin/federation",
        route_handlers=[refusals, outbox, inbox, skip],
        guards=[require_roles(Role.ADMIN)],
        tags=["admin"],
    )
