"""Webhook secrets at rest: AES-GCM under a key derived (HKDF) from a data key, bound to the subscription.

The first data key seals; every key of the keyring opens what it sealed, so secrets
survive a key rotation for as long as the old key is kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"citypass/webhook-secret/v1"  # the derived key serves this and nothing else
_NONCE = 12


class SecretUnreadableError(RuntimeError):
    """A stored secret whose key is gone from the keyring, or whose bytes were altered."""


class SecretBox:
    def __init__(self, data_keys: Sequence[tuple[str, bytes]]) -> None:
        if not data_keys:
            raise ValueError("a secret box needs at least one data key")
        self._keys = {
            kid: AESGCM(HKDF(algorithm=SHA256(), length=32, salt=None, info=_INFO).derive(key))
            for kid, key in data_keys
        }
        self._sealing = data_keys[0][0]

    def seal(self, subscription: UUID, secret: str) -> tuple[str, bytes]:
        """(key id, nonce + ciphertext) of the secret, bound to this subscription's id."""
        nonce = os.urandom(_NONCE)
        sealed = self._keys[self._sealing].encrypt(nonce, secret.encode("utf-8"), subscription.bytes)
        return self._sealing, nonce + sealed

    def open(self, subscription: UUID, kid: str, sealed: bytes) -> str:
        key = self._keys.get(kid)
        if key is None:
            raise SecretUnreadableError(
                f"the webhook secret of {subscription} is sealed with unknown key {kid!r}"
            )
        try:
            clear = key.decrypt(sealed[:_NONCE], sealed[_NONCE:], subscription.bytes)
        except InvalidTag:
            raise SecretUnreadableError(f"the webhook secret of {subscription} does not open") from None
        return clear.decode("utf-8")
