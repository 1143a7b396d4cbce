"""Our own public keys as we publish them at /federation/v1/keys; the first is the one we sign with."""

from __future__ import annotations

from collections.abc import Sequence

from backend.federation.signing import SigningKey
from miniapp_api.partner_schemas import PublishedKey


def published_keys(keys: Sequence[tuple[str, bytes]]) -> list[PublishedKey]:
    """From settings.federation.keys: (key id, Ed25519 seed) pairs, the signing one first.

    Every configured key is published, so that during a rotation partners accept both the
    key we signed with until now and the one we are about to sign with.
    """
    return [
        PublishedKey(kid=kid, public_key=SigningKey.from_seed(kid, seed).public_text(), signing=n == 0)
        for n, (kid, seed) in enumerate(keys)
    ]
