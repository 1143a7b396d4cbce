"""Field-level encryption at rest: personal values in event state become `Encrypted` envelopes.

`PersonalCipher.protect` walks event state (dicts, lists, tuples, sets, Structs)
and seals every `domain.personal.Personal` value with AES-256-GCM under the
current key; `reveal` opens them again. `ProtectingTranscoder` applies both around
the msgspec transcoder, so the Mapper stores envelopes and the hash chain, which
hashes stored bytes, stays verifiable without any key. Everything else in an
event stays readable JSON for psql and auditors.

Associated data binds each ciphertext to its key id and its value's type, so an
envelope whose `kind` or `kid` was edited fails to open rather than decoding as
another type. A key stays in the keyring while any event sealed with it is kept:
stored bytes are hash-chained, so old events are never re-encrypted, and rotation
only changes which key seals new values. Dropping a key on purpose makes what it
sealed unreadable while the chain still verifies; per-subject keys would turn
that into crypto-shredding of one person's data (a future option).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import TopicError, get_topic, resolve_topic

from domain.personal import Personal


class PersonalCipherError(Exception):
    """A personal value could not be sealed or opened."""


class KeyringError(PersonalCipherError, ValueError):
    """The data keys are missing or malformed."""


class UnknownKeyError(PersonalCipherError):
    """An envelope names a key id that is not in the keyring (retired, shredded, or another deployment's)."""


class DecryptionError(PersonalCipherError):
    """An envelope does not open: wrong key, edited ciphertext, or edited kind or key id."""


class Encrypted(msgspec.Struct, frozen=True):
    """A sealed personal value, as stored: key id, the value's type topic, nonce, ciphertext and tag."""

    kid: str
    kind: str
    nonce: bytes
    data: bytes

    def __repr__(self) -> str:
        return f"Encrypted(kid={self.kid!r}, kind={self.kind!r})"


_KID = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_AAD_PREFIX = b"citypass/personal/v1"
DEV_KID = "dev"


def check_data_keys(keys: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Refuse an empty keyring, bad or repeated key ids, and keys that are not 32 bytes (AES-256)."""
    if not keys:
        raise KeyringError("at least one data key is needed")
    seen: set[str] = set()
    for kid, key in keys:
        if not _KID.fullmatch(kid):
            raise KeyringError(f"data key id {kid!r} must match [A-Za-z0-9_.-]{{1,32}}")
        if kid in seen:
            raise KeyringError(f"data key id {kid!r} appears twice")
        if len(key) != 32:
            raise KeyringError(f"data key {kid!r} must be 32 bytes (AES-256), not {len(key)}")
        seen.add(kid)
    return keys


def parse_data_keys(text: str) -> list[tuple[str, bytes]]:
    """Read and check "kid1:base64key,kid2:base64key"; the first key seals, all of them open."""
    keys: list[tuple[str, bytes]] = []
    for n, item in enumerate(filter(None, (part.strip() for part in text.split(","))), 1):
        kid, sep, encoded = item.partition(":")
        if not sep:  # the entry may be a bare key, so it is not echoed
            raise KeyringError(f"data key number {n} must be written KID:BASE64")
        try:
            keys.append((kid, base64.b64decode(encoded, validate=True)))
        except ValueError:
            raise KeyringError(f"data key {kid!r} is not valid base64") from None
    return check_data_keys(keys)


def dev_data_keys() -> list[tuple[str, bytes]]:
    """A fixed key derived from a public label: for development only, since anyone can derive it."""
    return [(DEV_KID, hashlib.sha256(b"citypass development data key, never for production").digest())]


def generate_data_key(kid: str) -> str:
    """One "kid:base64key" entry with a fresh random key, for CITYPASS_DATA_KEYS."""
    return f"{kid}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


_kinds: dict[str, type[Personal]] = {}


def _kind(topic: str) -> type[Personal]:
    cls = _kinds.get(topic)
    if cls is None:
        try:
            found = resolve_topic(topic)
        except TopicError:
            raise DecryptionError(f"envelope kind {topic!r} names no known type") from None
        if not (isinstance(found, type) and issubclass(found, Personal)):
            raise DecryptionError(f"envelope kind {topic!r} is not a personal value type")
        cls = _kinds[topic] = found
    return cls


class PersonalCipher:
    """Seals personal values with the current key, and opens them with any key in the keyring."""

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        self._keys = {kid: AESGCM(key) for kid, key in check_data_keys(list(keys))}
        self.current_kid = next(iter(self._keys))
        self._encode = msgspec.json.Encoder().encode

    def seal(self, value: Personal) -> Encrypted:
        kind = get_topic(type(value))
        nonce = os.urandom(12)  # random 96-bit nonces: safe for 2^32 seals per key (NIST SP 800-38D)
        data = self._keys[self.current_kid].encrypt(nonce, self._encode(value), _aad(self.current_kid, kind))
        return Encrypted(self.current_kid, kind, nonce, data)

    def open(self, envelope: Encrypted) -> Personal:
        aes = self._keys.get(envelope.kid)
        if aes is None:
            raise UnknownKeyError(f"no data key {envelope.kid!r} for a sealed {envelope.kind}")
        cls = _kind(envelope.kind)
        try:
            plain = aes.decrypt(envelope.nonce, envelope.data, _aad(envelope.kid, envelope.kind))
        except InvalidTag:
            raise DecryptionError(
                f"sealed {envelope.kind} under key {envelope.kid!r} does not open: "
                "the ciphertext, its kind or its key id was altered, or the key is not the one used"
            ) from None
        return msgspec.json.decode(plain, type=cls)

    def protect(self, state: Any) -> Any:
        """A copy of `state` with every personal value sealed; unchanged containers are shared, not copied."""
        return _map(state, Personal, self.seal)

    def reveal(self, state: Any) -> Any:
        """A copy of `state` with every envelope opened back into its typed personal value."""
        return _map(state, Encrypted, self.open)


# How an envelope's class is named in stored state (see transcoder.py: {"$struct": [topic, ...]}).
# Should Encrypted ever move, events stored before name its old topic: look for that one too.
_SEALED_TOPIC = get_topic(Encrypted).encode()


def _aad(kid: str, kind: str) -> bytes:
    return b"\x00".join((_AAD_PREFIX, kid.encode(), kind.encode()))


_PLAIN = frozenset({str, int, float, bool, bytes, type(None)})


def _map(v: Any, target: type[Any], f: Callable[[Any], Any]) -> Any:
    """Apply f to every instance of target inside v, rebuilding only the containers that change."""
    t = type(v)
    if t in _PLAIN:
        return v
    if isinstance(v, target):
        return f(v)
    if t is dict:
        pairs = [(k, x, _map(k, target, f), _map(x, target, f)) for k, x in v.items()]
        if all(k2 is k and x2 is x for k, x, k2, x2 in pairs):
            return v
        return {k2: x2 for _, _, k2, x2 in pairs}
    if t in (list, tuple, set, frozenset):
        new = [_map(x, target, f) for x in v]
        return t(new) if any(a is not b for a, b in zip(new, v, strict=True)) else v
    if isinstance(v, msgspec.Struct):
        changes = {}
        for name in v.__struct_fields__:
            x = getattr(v, name)
            x2 = _map(x, target, f)
            if x2 is not x:
                changes[name] = x2
        # replace() skips __post_init__, so a Struct may hold an envelope where its annotation says Phone.
        return msgspec.structs.replace(v, **changes) if changes else v
    return v


class ProtectingTranscoder(Transcoder):
    """Wraps a transcoder so that personal values are sealed before encoding and opened after decoding."""

    def __init__(self, inner: Transcoder, cipher: PersonalCipher) -> None:
        self._inner = inner
        self._cipher = cipher

    def encode(self, obj: Any) -> bytes:
        return self._inner.encode(self._cipher.protect(obj))

    def decode(self, data: bytes) -> Any:
        state = self._inner.decode(data)
        # Most events hold no personal value, and walking every one of them for envelopes costs
        # more than decoding it: an envelope is a tagged struct, so its topic is in the bytes.
        if _SEALED_TOPIC not in data:
            return state
        return self._cipher.reveal(state)
