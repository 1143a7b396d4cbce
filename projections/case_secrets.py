"""The 查询密码 hash and the 一人一档 applicant key: what the case read models keep instead of secrets.

The command side hashes the query password with `QueryPasswords.hash` before it
reaches the case (the case refuses anything that looks like a bare password); the
anonymous progress lookup checks it with `QueryPasswords.verify`. Both live here,
in the read side, because the read side is the one that verifies.

A 查询密码 has only 10^6 values, so no affordable slow hash protects a leaked hash
from guessing; a secret key does. The hash is 'hmac-sha256$kid$salt$digest' (url-safe
base64): HMAC-SHA256 over salt || password under a password-MAC key derived with
HKDF from the data key `kid` of CITYPASS_DATA_KEYS. Without the keyring, a copy of the
events or the read model yields no password; with it, the personal data is open anyway.
Earlier releases stored 'scrypt$n$r$p$salt$hash'; those events are kept, so they verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_MAC_INFO = b"citypass/query-password/v1"  # HKDF info: the derived key serves this and nothing else
_SCHEME = "hmac-sha256"
_SALT_BYTES, _DIGEST_BYTES = 16, 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _password_mac_key(data_key: bytes) -> bytes:
    """The key that MACs 查询密码, derived so that the data key itself only ever seals."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=_MAC_INFO).derive(data_key)


class QueryPasswords:
    """Hashes with the first key of the keyring; verifies with any key in it, and legacy scrypt values."""

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        self._macs = {kid: _password_mac_key(key) for kid, key in keys}
        if not self._macs or any("$" in kid for kid in self._macs):
            raise ValueError("query passwords need at least one data key, and key ids without '$'")
        self.current_kid = next(iter(self._macs))
        # Checked when a receipt number is unknown, so a wrong receipt costs as long as a wrong password.
        self._dummy = self.hash("", salt=bytes(_SALT_BYTES))

    def hash(self, password: str, salt: bytes | None = None) -> str:
        """'hmac-sha256$kid$salt$digest'; a fresh random salt unless one is given (tests)."""
        salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
        digest = _mac(self._macs[self.current_kid], salt, password)
        return f"{_SCHEME}${self.current_kid}${_b64(salt)}${_b64(digest)}"

    def verify(self, password: str, stored: str | None) -> bool:
        """True only for the right password; None (no such receipt), an unknown key or a malformed value never
        matches. None is checked against a dummy hash first, so it costs what a wrong password costs."""
        if stored is None:
            self._verify(password, self._dummy)
            return False
        return self._verify(password, stored)

    def _verify(self, password: str, stored: str) -> bool:
        parts = stored.split("$")
        try:
            if len(parts) == 4 and parts[0] == _SCHEME:
                key = self._macs.get(parts[1])
                salt, expected = _unb64(parts[2]), _unb64(parts[3])
                if key is None or len(salt) != _SALT_BYTES:
                    return False
                return hmac.compare_digest(_mac(key, salt, password), expected)
            if len(parts) == 6 and parts[0] == "scrypt":
                return _verify_scrypt(password, parts)
        except (ValueError, TypeError):  # bad base64 or numbers, a password UTF-8 refuses, or scrypt refuses
            return False
        return False


def _mac(key: bytes, salt: bytes, password: str) -> bytes:
    return hmac.digest(key, salt + password.encode(), "sha256")


def _verify_scrypt(password: str, parts: list[str]) -> bool:
    """Earlier releases' 'scrypt$n$r$p$salt$hash': tens of milliseconds per check, by design then."""
    n, r, p = (int(x) for x in parts[1:4])
    salt, expected = _unb64(parts[4]), _unb64(parts[5])
    actual = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=_DIGEST_BYTES
    )
    return hmac.compare_digest(actual, expected)


def applicant_key(id_type: str, id_number: str) -> str:
    """一人一档 / 一企一档: one stable key per identity document, never the number itself."""
    return hashlib.sha256(f"{id_type}:{id_number.strip().upper()}".encode()).hexdigest()
