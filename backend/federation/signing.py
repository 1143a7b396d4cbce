"""Signed messages between city deployments (跨城通办): Ed25519 over method, path, time, body hash and id.

Every request one city sends another carries five headers:

    Citypass-Region:     the sender's 6-digit region code (430100)
    Citypass-Key-Id:     which of the sender's keys signed (keys rotate; two may be valid at once)
    Citypass-Timestamp:  Unix seconds when it was signed
    Citypass-Message-Id: the message's id, the receiver's dedupe key (a UUID)
    Citypass-Signature:  base64 of Ed25519(private key, canonical string)

The canonical string joins, with "\\n": the method in upper case, the path (with its
query, as sent), the timestamp, the hex SHA-256 of the body, and the message id. The
body hash binds the content; the path and method bind what is asked; the timestamp
bounds replays to the freshness window, and the message id catches a replay inside it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

REGION_HEADER = "Citypass-Region"
KEY_HEADER = "Citypass-Key-Id"
TIMESTAMP_HEADER = "Citypass-Timestamp"
MESSAGE_HEADER = "Citypass-Message-Id"
SIGNATURE_HEADER = "Citypass-Signature"
FRESHNESS_SECONDS = 300  # how far a message's time may be from ours, either way

_REGION = re.compile(r"^\d{6}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_MESSAGE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class SignatureError(Exception):
    """A message that must not be accepted; `kind` is the stable reason, the message says more."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def canonical(method: str, path: str, timestamp: int, body: bytes, message_id: str) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, str(timestamp), digest, message_id)).encode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One of our own keys: its id and the Ed25519 private key."""

    kid: str
    private: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, kid: str, seed: bytes) -> SigningKey:
        if not _KEY_ID.match(kid):
            raise ValueError(f"a key id is 1 to 64 letters, digits, '.', '_' or '-', not {kid!r}")
        if len(seed) != 32:
            raise ValueError("an Ed25519 private key is 32 bytes")
        return cls(kid, Ed25519PrivateKey.from_private_bytes(seed))

    def public_text(self) -> str:
        """The public key as partners configure it: base64 of its 32 raw bytes."""
        return public_key_text(self.private.public_key())

    def headers(
        self, region: str, method: str, path: str, body: bytes, message_id: str, now: int
    ) -> dict[str, str]:
        signature = self.private.sign(canonical(method, path, now, body, message_id))
        return {
            REGION_HEADER: region,
            KEY_HEADER: self.kid,
            TIMESTAMP_HEADER: str(now),
            MESSAGE_HEADER: message_id,
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        }


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A partner's public key from base64 of its 32 raw bytes; ValueError if it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("a public key is base64 of 32 bytes") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True, slots=True)
class SignedBy:
    """Who signed a message that verified: the partner's region, the key, the message id and time."""

    region: str
    kid: str
    message_id: str
    timestamp: int


def read_headers(headers: Mapping[str, str]) -> SignedBy:
    """The signing headers, checked for form only; SignatureError('malformed') otherwise."""

    def field(name: str, pattern: re.Pattern[str]) -> str:
        value = headers.get(name) or headers.get(name.lower()) or ""
        if not pattern.match(value):
            raise SignatureError("malformed", f"{name} is missing or malformed")
        return value

    region = field(REGION_HEADER, _REGION)
    kid = field(KEY_HEADER, _KEY_ID)
    stamp = field(TIMESTAMP_HEADER, re.compile(r"^\d{1,12}$"))
    message_id = field(MESSAGE_HEADER, _MESSAGE_ID)
    return SignedBy(region, kid, message_id, int(stamp))


def verify(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    keys: Mapping[str, Ed25519PublicKey],
    now: int,
    freshness: int = FRESHNESS_SECONDS,
) -> SignedBy:
    """Check a message against the sender's valid keys (by key id); return who signed, or raise.

    The caller has looked the sender up by `read_headers(headers).region` and passes its keys;
    an unknown sender is the caller's to refuse.
    """
    signed = read_headers(headers)
    if abs(now - signed.timestamp) > freshness:
        raise SignatureError("stale", f"signed at {signed.timestamp}, {now - signed.timestamp:+d} s from now")
    key = keys.get(signed.kid)
    if key is None:
        raise SignatureError("unknown-key", f"{signed.region} has no valid key {signed.kid!r}")
    given = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()) or ""
    try:
        signature = base64.b64decode(given, validate=True)
        key.verify(signature, canonical(method, path, signed.timestamp, body, signed.message_id))
    except (ValueError, InvalidSignature):
        raise SignatureError("bad-signature", "the signature does not match the message") from None
    return signed
