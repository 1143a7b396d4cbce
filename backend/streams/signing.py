"""Webhook signatures: `Citypass-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.

The timestamp is signed with the body, so a captured delivery cannot be replayed
once it is older than the receiver's tolerance. Pure functions: receivers may copy
this module as it is.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Citypass-Signature"
DELIVERY_HEADER = "Citypass-Delivery"
SUBSCRIPTION_HEADER = "Citypass-Subscription"
SCHEME = "v1"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under the secret."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the Citypass-Signature header for this body, signed at `timestamp` (Unix seconds)."""
    return f"t={timestamp},{SCHEME}={signature(secret, timestamp, body)}"


def verify_signature(
    secret: str, header: str | None, body: bytes, now: float, tolerance_seconds: float = 300
) -> bool:
    """True only if the header signs exactly this body with this secret, within the tolerance of `now`.

    A header may carry several v1 values (one per secret while a secret is rotated); one
    matching is enough. Anything malformed is simply not a valid signature.
    """
    if not header:
        return False
    timestamp: int | None = None
    candidates = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return False
            timestamp = int(value)
        elif key == SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance_seconds:
        return False
    expected = signature(secret, timestamp, body)
    # Every candidate is compared, in constant time, so timing reveals nothing about which failed.
    matched = [hmac.compare_digest(expected.encode(), c.encode("utf-8", "replace")) for c in candidates]
    return any(matched)
