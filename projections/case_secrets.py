"""The 查询密码 hash and the 一人一档 applicant key: what the case read models keep instead of secrets.

The command side hashes the query password with `hash_query_password` before it
reaches the case (the case refuses anything that looks like a bare password); the
anonymous progress lookup checks it with `verify_query_password`. Both live here,
in the read side, because the read side is the one that verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt's interactive-login strength (RFC 7914 §2): ~16 MiB and tens of milliseconds per check,
# which makes guessing a short 查询密码 offline expensive and online slow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SALT_BYTES, _HASH_BYTES = 16, 32
_MAXMEM = 64 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=_HASH_BYTES)


def hash_query_password(password: str, salt: bytes | None = None) -> str:
    """'scrypt$n$r$p$salt$hash' (url-safe base64); a fresh random salt unless one is given (tests)."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_query_password(password: str, stored: str) -> bool:
    """True only for the right password; a malformed stored value never matches."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, expected = _unb64(parts[4]), _unb64(parts[5])
        actual = _scrypt(password, salt, n, r, p)
    except ValueError:  # bad numbers, bad base64, or parameters scrypt refuses
        return False
    return hmac.compare_digest(actual, expected)


# Checked when a receipt number is unknown, so a wrong receipt costs as long as a wrong password.
DUMMY_HASH = hash_query_password("", salt=b"\0" * _SALT_BYTES)


def applicant_key(id_type: str, id_number: str) -> str:
    """一人一档 / 一企一档: one stable key per identity document, never the number itself."""
    return hashlib.sha256(f"{id_type}:{id_number.strip().upper()}".encode()).hexdigest()
