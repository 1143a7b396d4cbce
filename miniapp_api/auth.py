"""Bearer authentication, the `principal` dependency, and role and scope guards."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeAlias

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Headers
from litestar.di import NamedDependency
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from miniapp_api.config import ApiConfig
from miniapp_api.error_handler import BEARER_CHALLENGE
from miniapp_api.principal import Principal, Role, in_department, in_hall, in_region
from miniapp_api.tokens import TokenError, decode_token

# Handlers opt out of authentication with `opt={EXCLUDE_FROM_AUTH: True}`; everything else needs a token.
EXCLUDE_FROM_AUTH = "exclude_from_auth"

# Handlers take the caller as `principal: CurrentPrincipal`; the name is what injects it.
CurrentPrincipal: TypeAlias = NamedDependency[Principal]

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]
ScopeKind = Literal["department", "hall", "region"]


class BearerAuthMiddleware(ASGIMiddleware):
    """Decode `Authorization: Bearer …` into scope["user"], or answer 401."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = EXCLUDE_FROM_AUTH

    def __init__(self, config: ApiConfig, public_prefixes: Sequence[str] = ()) -> None:
        self._config = config
        self._public_prefixes = tuple(public_prefixes)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        # CORS preflights never carry credentials, so they cannot be asked for them.
        if scope.get("method") != "OPTIONS" and not self._is_public(scope["path"]):
            scope["user"] = self._authenticate(Headers.from_scope(scope).get("authorization"))
        await next_app(scope, receive, send)

    def _is_public(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self._public_prefixes)

    def _authenticate(self, header: str | None) -> Principal:
        if not header:
            raise NotAuthorizedException("missing bearer token")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException(
                "expected 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": f'{BEARER_CHALLENGE}, error="invalid_request"'},
            )
        try:
            return decode_token(self._config, token.strip())
        except TokenError as exc:
            challenge = f'{BEARER_CHALLENGE}, error="invalid_token", error_description="{exc}"'
            raise NotAuthorizedException(str(exc), headers={"WWW-Authenticate": challenge}) from exc


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller the middleware authenticated; 401 on routes that skipped authentication."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("this route does not authenticate its callers")
    return user


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """Dependency behind every handler parameter named `principal`."""
    return current_principal(request)


def require_roles(*roles: Role) -> Guard:
    """Guard: only callers holding one of `roles` may pass."""
    if not roles:
        raise ValueError("require_roles needs at least one role")
    allowed = frozenset(roles)
    names = ", ".join(sorted(allowed))

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if current_principal(connection).role not in allowed:
            raise PermissionDeniedException(f"requires role {names}")

    return guard


def require_scope(
    principal: Principal,
    *,
    department: str | None = None,
    hall: str | None = None,
    region: str | None = None,
) -> None:
    """Raise 403 unless the principal's scopes cover every value given."""
    if department is not None and not in_department(principal, department):
        raise PermissionDeniedException("outside the caller's department")
    if hall is not None and not in_hall(principal, hall):
        raise PermissionDeniedException("outside the caller's hall")
    if region is not None and not in_region(principal, region):
        raise PermissionDeniedException("outside the caller's region")


def require_path_scope(kind: ScopeKind, param: str | None = None) -> Guard:
    """Guard: the path parameter `param` (default: `kind`) must lie in the caller's scope."""
    name = param or kind

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        value = str(connection.path_params[name])
        require_scope(current_principal(connection), **{kind: value})

    return guard
