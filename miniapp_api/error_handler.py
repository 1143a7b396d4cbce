"""The one place where exceptions become problem-details responses."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    SerializationException,
    ValidationException,
)

from miniapp_api.problems import (
    INTERNAL,
    MALFORMED_JSON,
    PROBLEM_MEDIA_TYPE,
    VALIDATION,
    FieldError,
    Problem,
    ProblemKind,
    ProblemMap,
    kind_for_status,
)

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_MISSING_PARAMETER = re.compile(r"^Missing required (\w+) parameter '([^']+)'")
# RFC 6750 §3: every 401 for a bearer-protected resource names the scheme.
BEARER_CHALLENGE = 'Bearer realm="citypass"'

ExceptionHandler = Callable[[Request[Any, Any, Any], Exception], Response[bytes]]


def problem_response(
    request: Request[Any, Any, Any],
    kind: ProblemKind,
    *,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[bytes]:
    """Encode one problem; the request path becomes its `instance`."""
    problem = Problem(
        type=kind.type_uri,
        title=kind.title,
        status=kind.status,
        detail=detail or None,
        instance=request.url.path,
        errors=errors,
    )
    merged = dict(headers or {})
    if kind.status == HTTPStatus.UNAUTHORIZED:
        merged.setdefault("WWW-Authenticate", BEARER_CHALLENGE)
    return Response(
        content=_encoder.encode(problem),
        status_code=kind.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=merged,
    )


def exception_handler(problem_map: ProblemMap) -> ExceptionHandler:
    """Build the app-wide handler: registered errors first, then litestar's HTTP errors."""

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        if (kind := problem_map.lookup(exc)) is not None:
            if kind.status >= 500:
                log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
                return problem_response(request, kind)
            return problem_response(request, kind, detail=str(exc))
        if isinstance(exc, HTTPException):
            return _http_problem(request, exc)
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(request, INTERNAL)

    return handle


def _http_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, ValidationException):
        errors = field_errors(exc.extra) or _missing_parameter(exc.detail)
        # litestar's detail for field errors repeats the URL, query string included, which
        # may carry secrets; name the fields instead.
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) if errors else exc.detail
        return problem_response(request, VALIDATION, detail=detail, errors=errors)
    if isinstance(exc, ClientException) and isinstance(exc.__cause__, SerializationException):
        return problem_response(request, MALFORMED_JSON, detail=exc.detail)
    kind = kind_for_status(exc.status_code)
    if kind.status >= 500:
        # Server-side details stay in the log, never in the response.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return problem_response(request, kind)
    # litestar fills an empty detail with the status phrase, which says nothing the title does not.
    said_nothing = exc.detail in (_phrase(exc.status_code), kind.title)
    return problem_response(request, kind, detail=None if said_nothing else exc.detail, headers=exc.headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def field_errors(extra: Any) -> list[FieldError]:
    """Turn litestar's validation `extra` into field paths clients can point at."""
    items = extra if isinstance(extra, list) else [extra] if isinstance(extra, dict) else []
    errors = []
    for item in items:
        if not isinstance(item, dict) or "message" not in item:
            continue
        message = str(item["message"])
        field = str(item.get("key", ""))
        if message == f"'{field}'":
            message = "required value is missing"  # litestar reports the KeyError it caught
        if item.get("source") == "body" and field == "data":
            field = ""  # litestar names the whole body "data"
        if missing := _MISSING_FIELD.search(message):
            field = f"{field}.{missing.group(1)}" if field else missing.group(1)
        errors.append(FieldError(field=field or "body", message=message))
    return errors


def _missing_parameter(detail: str) -> list[FieldError]:
    """litestar reports an absent query, path, header or cookie parameter only in its detail."""
    if match := _MISSING_PARAMETER.match(detail):
        return [FieldError(field=match.group(2), message=f"required {match.group(1)} parameter")]
    return []
