"""Settings the HTTP layer needs, handed in by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

# HS256 with a shorter key is brute-forceable; RFC 7518 §3.2 asks for at least the hash size.
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """What create_app needs to know; the API never reads the environment itself."""

    jwt_secret: str = field(repr=False)
    token_ttl_seconds: int
    dev_login: bool
    max_body_bytes: int
    title: str = "citypass"
    version: str = "0.1.0"

    def __post_init__(self) -> None:
        # Fail at wiring time rather than on the first request.
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"jwt_secret must be at least {MIN_SECRET_BYTES} bytes")
        if self.token_ttl_seconds <= 0:
            raise ValueError("token_ttl_seconds must be positive")
        if self.max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
