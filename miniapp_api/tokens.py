"""Signed bearer tokens (JWT, HS256) that carry a Principal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import jwt
import msgspec

from miniapp_api.config import ApiConfig
from miniapp_api.principal import Principal

ALGORITHM = "HS256"
ISSUER = "citypass"
_SCOPE_CLAIMS = ("role", "name", "department", "hall", "region", "personal_data")
# Claims are named as the fields are (personal_data); the Principal decodes its camelCase names.
_WIRE_NAMES = dict(zip(Principal.__struct_fields__, Principal.__struct_encode_fields__, strict=True))
_REQUIRED_CLAIMS = ["iss", "sub", "iat", "exp", "jti", "role"]


class TokenError(Exception):
    """A bearer token that must not be accepted; the message is safe to show the caller."""


def token_expiry(config: ApiConfig, issued_at: datetime) -> datetime:
    """When a token issued at `issued_at` expires, to the second the `exp` claim can hold."""
    return (issued_at + timedelta(seconds=config.token_ttl_seconds)).replace(microsecond=0)


def issue_token(config: ApiConfig, principal: Principal, *, now: datetime | None = None) -> str:
    """Sign a token for `principal`, valid for the configured lifetime from `now`."""
    issued_at = now or datetime.now(UTC)
    scopes = {key: msgspec.to_builtins(getattr(principal, key)) for key in _SCOPE_CLAIMS}
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": principal.subject,
        "iat": issued_at,
        "exp": token_expiry(config, issued_at),
        # A unique id lets a later deny-list revoke one token.
        "jti": uuid4().hex,
        **{key: scopes[key] for key in _SCOPE_CLAIMS if scopes.get(key) not in (None, False)},
    }
    return jwt.encode(claims, config.jwt_secret, algorithm=ALGORITHM)


def decode_token(config: ApiConfig, token: str) -> Principal:
    """Verify signature, issuer and lifetime, and return the principal; raise TokenError."""
    try:
        claims = jwt.decode(
            token,
            config.jwt_secret,
            algorithms=[ALGORITHM],  # pinned, so "alg": "none" or RS/HS confusion cannot pass
            issuer=ISSUER,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("token invalid") from exc
    fields = {_WIRE_NAMES[key]: claims[key] for key in _SCOPE_CLAIMS if key in claims}
    try:
        return msgspec.convert({"subject": claims["sub"], **fields}, Principal)
    except msgspec.ValidationError as exc:
        raise TokenError("token claims invalid") from exc
