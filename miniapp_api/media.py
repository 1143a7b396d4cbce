"""Refuse request bodies declared in a media type the handler does not decode."""

from __future__ import annotations

from litestar.datastructures import Headers
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import ClientException
from litestar.middleware import ASGIMiddleware
from litestar.params import BodyKwarg
from litestar.types import ASGIApp, Receive, Scope, Send


def _is_json(media_type: str) -> bool:
    return media_type == RequestEncodingType.JSON or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class JsonBodyOnly(ASGIMiddleware):
    """415 for a declared non-JSON body sent to a handler that reads JSON."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        # Without this, a form post to a JSON handler reads as "malformed JSON", which misleads.
        declared = Headers.from_scope(scope).get("content-type")
        if declared and _reads_json(scope):
            media_type = declared.partition(";")[0].strip().lower()
            if not _is_json(media_type):
                raise ClientException(f"send application/json, not {media_type}", status_code=415)
        await next_app(scope, receive, send)


def _reads_json(scope: Scope) -> bool:
    """True when the routed handler takes a `data` body it decodes as JSON."""
    body = scope["route_handler"].parsed_fn_signature.parameters.get("data")
    if body is None:
        return False
    kwarg = body.kwarg_definition
    expected = kwarg.media_type if isinstance(kwarg, BodyKwarg) else RequestEncodingType.JSON
    return expected == RequestEncodingType.JSON
