"""What the federation tests share: two cities' keys, an in-memory partner directory, envelopes, waiting."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from backend.federation.delivery import MESSAGES_PATH
from backend.federation.messages import ENCODER, Envelope
from backend.federation.signing import SigningKey, parse_public_key

T = TypeVar("T")

CHANGSHA, ZHUZHOU, XIANGTAN = "430100", "430200", "430300"
NOTED = "test.noted"


def key_of(region: str, kid: str = "k1") -> SigningKey:
    return SigningKey.from_seed(kid, hashlib.sha256(f"federation-test/{region}/{kid}".encode()).digest())


def public_keys(*keys: SigningKey) -> dict[str, Ed25519PublicKey]:
    return {k.kid: parse_public_key(k.public_text()) for k in keys}


@dataclass(frozen=True)
class PartnerEntry:
    region: str
    base_url: str
    keys: Mapping[str, str]


@dataclass
class Directory:
    """A PartnerDirectory in memory: the test adds and removes partners as an admin would."""

    partners: dict[str, PartnerEntry] = field(default_factory=dict)

    def add(self, region: str, base_url: str, *keys: SigningKey) -> None:
        self.partners[region] = PartnerEntry(region, base_url, {k.kid: k.public_text() for k in keys})

    async def find(self, region: str) -> PartnerEntry | None:
        return self.partners.get(region)


def now() -> datetime:
    return datetime.now(UTC)


def envelope(handoff: uuid.UUID, seq: int, kind: str = NOTED, **payload: object) -> Envelope:
    return Envelope(
        kind=kind,
        handoff=handoff,
        seq=seq,
        sent_at=now(),
        payload=msgspec.Raw(msgspec.json.encode(payload or {"n": seq})),
    )


def signed(
    key: SigningKey,
    region: str,
    message: Envelope | bytes,
    message_id: uuid.UUID | None = None,
    *,
    at: float | None = None,
    path: str = MESSAGES_PATH,
) -> tuple[dict[str, str], bytes, uuid.UUID]:
    """Headers and body as a partner's relay would send them (lower-case names, as servers pass them on)."""
    body = message if isinstance(message, bytes) else ENCODER.encode(message)
    message_id = message_id or uuid.uuid4()
    stamp = int(time.time() if at is None else at)
    headers = key.headers(region, "POST", path, body, str(message_id), stamp)
    return {name.lower(): value for name, value in headers.items()}, body, message_id


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, within: float = 20.0) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.02)
