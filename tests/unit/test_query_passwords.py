"""The 查询密码 hash: keyed by the data keys, salted, rotated with the keyring; old scrypt hashes open."""

from __future__ import annotations

import base64
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.bootstrap import query_passwords
from backend.settings import load_settings
from projections.case_secrets import QueryPasswords

pytestmark = pytest.mark.unit

K1 = ("k1", bytes(range(32)))
K2 = ("k2", bytes(range(32, 64)))
SALT = bytes(range(16))
# What an earlier release stored for 731731 (scrypt n=2^14, r=8, p=1, this salt): such events are kept.
LEGACY = "scrypt$16384$8$1$AAECAwQFBgcICQoLDA0ODw$BK-8Hfz6p3yqyxkLffVKydRue-_K6tdPUvLjrDLO63c"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_the_right_password_matches_and_no_other() -> None:
    passwords = QueryPasswords([K1])
    stored = passwords.hash("731731")
    assert passwords.verify("731731", stored)
    for wrong in ("731732", "", "0731731", "731731 ", "７３１７３１"):
        assert not passwords.verify(wrong, stored), wrong


def test_the_format_is_hmac_sha256_under_a_key_derived_from_the_data_key() -> None:
    # Worked out here from the spec, so a change to the derivation, which would strand every stored
    # hash, fails this test rather than passing unnoticed.
    prk = hmac.digest(bytes(32), K1[1], "sha256")  # HKDF-Extract, no salt: 32 zero bytes (RFC 5869)
    mac_key = hmac.digest(prk, b"citypass/query-password/v1\x01", "sha256")  # HKDF-Expand, one block
    digest = hmac.digest(mac_key, SALT + b"731731", "sha256")
    assert QueryPasswords([K1]).hash("731731", salt=SALT) == f"hmac-sha256$k1${b64(SALT)}${b64(digest)}"


def test_each_hash_has_its_own_salt() -> None:
    passwords = QueryPasswords([K1])
    first, second = passwords.hash("731731"), passwords.hash("731731")
    assert first != second and first.split("$")[2] != second.split("$")[2]
    assert passwords.verify("731731", first) and passwords.verify("731731", second)


def test_the_first_key_hashes_and_every_key_in_the_keyring_verifies() -> None:
    old = QueryPasswords([K1]).hash("731731")
    rotated = QueryPasswords([K2, K1])
    assert rotated.current_kid == "k2" and rotated.hash("731731").startswith("hmac-sha256$k2$")
    assert rotated.verify("731731", old) and not rotated.verify("731732", old)


def test_a_key_id_not_in_the_keyring_or_a_different_key_never_matches() -> None:
    stored = QueryPasswords([K1]).hash("731731")
    assert not QueryPasswords([K2]).verify("731731", stored)
    assert not QueryPasswords([("k1", K2[1])]).verify("731731", stored)  # same id, another key


def test_an_unknown_receipt_never_matches() -> None:
    passwords = QueryPasswords([K1])
    assert not passwords.verify("", None)  # not even the dummy hash's own password
    assert not passwords.verify("731731", None)


GOOD = QueryPasswords([K1]).hash("731731", salt=SALT)
_, KID, SALT_B64, DIGEST_B64 = GOOD.split("$")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "731731",
        "hmac-sha256",
        f"hmac-sha256$k1${SALT_B64}",
        f"hmac-sha256$k1${SALT_B64}${DIGEST_B64}$",
        f"HMAC-SHA256$k1${SALT_B64}${DIGEST_B64}",
        f"hmac-sha1$k1${SALT_B64}${DIGEST_B64}",
        f"hmac-sha256$$${SALT_B64}${DIGEST_B64}",
        f"hmac-sha256$k1${SALT_B64}${DIGEST_B64[:-4]}",  # a truncated digest
        f"hmac-sha256$k1${SALT_B64}$!!!!",  # not base64
        f"hmac-sha256$k1${SALT_B64[:-2]}${DIGEST_B64}",  # a short salt
        f"hmac-sha256$k1$${DIGEST_B64}",
        "scrypt$x$8$1$AA$AA",
        "scrypt$16383$8$1$AAECAwQFBgcICQoLDA0ODw$BK-8Hfz6p3yqyxkLffVKydRue-_K6tdPUvLjrDLO63c",  # n not 2^k
        "scrypt$1073741824$8$1$AA$AA",  # more memory than allowed
        "scrypt$-16384$8$1$AA$AA",
        "scrypt$16384$8$99999999999999999999$AA$AA",  # beyond a C integer
        "bcrypt$16384$8$1$AA$AA",
        LEGACY[:-4] + "!!!!",
    ],
)
def test_a_malformed_value_never_matches(stored: str) -> None:
    assert QueryPasswords([K1]).verify("731731", stored) is False


def test_a_password_that_is_not_text_utf8_can_write_never_matches() -> None:
    assert not QueryPasswords([K1]).verify("\ud800", GOOD)
    assert not QueryPasswords([K1]).verify("\ud800", LEGACY)


def test_an_earlier_release_scrypt_hash_still_verifies_under_any_keyring() -> None:
    for keys in ([K1], [K2, K1]):
        assert QueryPasswords(keys).verify("731731", LEGACY)
        assert not QueryPasswords(keys).verify("731732", LEGACY)


@pytest.mark.parametrize("keys", [[], [("k$1", K1[1])]])
def test_a_keyring_that_cannot_write_the_format_is_refused(keys: list[tuple[str, bytes]]) -> None:
    with pytest.raises(ValueError, match="data key"):
        QueryPasswords(keys)


def test_the_server_hashes_under_the_first_of_its_data_keys() -> None:
    k1, k2 = (f"{kid}:{base64.b64encode(key).decode()}" for kid, key in (K1, K2))
    settings = load_settings({"CITYPASS_DATA_KEYS": f"{k2},{k1}"})
    passwords = query_passwords(settings)
    assert passwords.hash("731731").startswith("hmac-sha256$k2$")
    assert passwords.verify("731731", QueryPasswords([K1]).hash("731731"))


TEXT = st.characters(codec="utf-8")


@given(st.text(TEXT, max_size=20), st.text(TEXT, min_size=1, max_size=3))
def test_only_the_hashed_text_matches(password: str, extra: str) -> None:
    passwords = QueryPasswords([K1])
    stored = passwords.hash(password)
    assert passwords.verify(password, stored) and not passwords.verify(password + extra, stored)
