"""Bearer authentication, the `principal` dependency, and role and scope guards."""

from __future__ import annotations

import base64
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeAlias

import msgspec
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

# Async, so litestar calls them on the event loop instead of sending each to a worker thread.
Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]
ScopeKind = Literal["department", "hall", "region"]


class _Lifetime(msgspec.Struct):
    exp: float


_LIFETIME = msgspec.json.Decoder(_Lifetime)


class VerifiedTokens:
    """The principals of tokens that passed verification, each kept until its own `exp`.

    A token's signature, issuer and claims cannot change, so only its lifetime needs
    checking again: a kept token answers without a signature check, an expired one is
    dropped and decoded afresh, which refuses it. Bounded; the least recently used go first.
    A revocation list (by `jti`), once there is one, must be asked on every request, kept or not.
    """

    def __init__(self, size: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self._size, self._clock = size, clock
        self._kept: OrderedDict[str, tuple[Principal, int]] = OrderedDict()

    def get(self, token: str) -> Principal | None:
        kept = self._kept.get(token)
        if kept is None:
            return None
        principal, expires = kept
        if self._clock() >= expires:  # as pyjwt decides: valid while now < exp
            del self._kept[token]
            return None
        self._kept.move_to_end(token)
        return principal

    def keep(self, token: str, principal: Principal) -> None:
        """Only for a token decode_token has just accepted, so its payload is the signed one."""
        payload = token.split(".")[1]  # header.payload.signature
        try:
            claims = _LIFETIME.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            expires = int(claims.exp)  # pyjwt truncates a fractional exp the same way
        except (ValueError, OverflowError, msgspec.DecodeError):
            return  # not kept: decoded again next time
        self._kept[token] = (principal, expires)
        self._kept.move_to_end(token)
        if len(self._kept) > self._size:
            self._kept.popitem(last=False)


class BearerAuthMiddleware(ASGIMiddleware):
    """Decode `Authorization: Bearer …` into scope["user"], or answer 401."""

    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)
    exclude_opt_key = EXCLUDE_FROM_AUTH

    def __init__(
        self, config: ApiConfig, public_prefixes: Sequence[str] = (), *, tokens: VerifiedTokens | None = None
    ) -> None:
        self._config = config
        self._public_prefixes = tuple(public_prefixes)
        self._tokens = tokens or VerifiedTokens()

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
        token = token.strip()
        if (kept := self._tokens.get(token)) is not None:
            return kept
        try:
            principal = decode_token(self._config, token)
        except TokenError as exc:
            challenge = f'{BEARER_CHALLENGE}, error="invalid_token", error_description="{exc}"'
            raise NotAuthorizedException(str(exc), headers={"WWW-Authenticate": challenge}) from exc
        self._tokens.keep(token, principal)
        return principal


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

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
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

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        value = str(connection.path_params[name])
        require_scope(current_principal(connection), **{kind: value})

    return guard
