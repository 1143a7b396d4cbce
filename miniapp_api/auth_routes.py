"""Routes under /api/v1/auth: who am I, and a development-only login."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Router, get, post
from litestar.datastructures import CacheControlHeader
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody

from miniapp_api.auth import EXCLUDE_FROM_AUTH, CurrentPrincipal
from miniapp_api.config import ApiConfig
from miniapp_api.principal import (
    DepartmentCode,
    DisplayName,
    HallCode,
    Principal,
    RegionCode,
    Role,
    Subject,
)
from miniapp_api.schemas import ApiStruct
from miniapp_api.tokens import issue_token, token_expiry

# Tokens and identities must not sit in shared caches.
_NO_STORE = CacheControlHeader(no_store=True)


class DevLoginRequest(ApiStruct):
    """Any identity you like; only ever served in development mode."""

    subject: Subject
    role: Role
    name: DisplayName | None = None
    department: DepartmentCode | None = None
    hall: HallCode | None = None
    region: RegionCode | None = None
    personal_data: bool = False


class TokenResponse(ApiStruct):
    """A bearer token, when it stops working, and whom it speaks for."""

    token: str
    expires_at: datetime
    principal: Principal


def auth_router(config: ApiConfig) -> Router:
    """The auth routes; dev-login exists only when config.dev_login is set."""

    @get("/me", cache_control=_NO_STORE, summary="The caller's identity")
    async def me(principal: CurrentPrincipal) -> Principal:
        return principal

    @post(
        "/dev-login",
        status_code=200,
        opt={EXCLUDE_FROM_AUTH: True},
        security=[{}],
        cache_control=_NO_STORE,
        summary="Development login: a token for any identity",
    )
    async def dev_login(data: JSONBody[DevLoginRequest]) -> TokenResponse:
        principal = Principal(
            subject=data.subject,
            role=data.role,
            name=data.name,
            department=data.department,
            hall=data.hall,
            region=data.region,
            personal_data=data.personal_data,
        )
        now = datetime.now(UTC)
        return TokenResponse(
            token=issue_token(config, principal, now=now),
            expires_at=token_expiry(config, now),
            principal=principal,
        )

    handlers: list[HTTPRouteHandler] = [me]
    if config.dev_login:
        handlers.append(dev_login)
    return Router(path="/api/v1/auth", route_handlers=handlers, tags=["auth"])
