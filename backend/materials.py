"""Uploaded materials, stored by content: the file's name is its sha256, checked again on every read."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# What a government window accepts as scanned or electronic materials, told by the
# file's first bytes rather than by what the client claims.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"PK\x03\x04", "application/ofd"),  # OFD, the national e-document format, is a zip container
)
ALLOWED_TYPES = frozenset(media for _, media in _SIGNATURES)
_HEX = frozenset("0123456789abcdef")


class MaterialError(Exception):
    """A material could not be stored or read."""


class MaterialTooLargeError(MaterialError):
    """Bigger than the configured limit."""


class MaterialTypeError(MaterialError):
    """Not a file type we accept, or not what the client said it was."""


class MaterialNotFoundError(MaterialError, LookupError):
    """No material has that hash."""


class MaterialCorruptedError(MaterialError):
    """The stored bytes no longer match their hash."""


@dataclass(frozen=True, slots=True)
class MaterialRef:
    sha256: str
    size: int
    media_type: str


def sniff(data: bytes) -> str | None:
    return next((media for magic, media in _SIGNATURES if data.startswith(magic)), None)


class MaterialStore:
    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, declared_type: str | None = None) -> MaterialRef:
        """Store the bytes once (same content, same file) and return their reference."""
        if not data:
            raise MaterialTypeError("the file is empty")
        if len(data) > self.max_bytes:
            raise MaterialTooLargeError(f"the file has {len(data)} bytes; the limit is {self.max_bytes}")
        media_type = sniff(data)
        if media_type is None:
            raise MaterialTypeError(f"only {', '.join(sorted(ALLOWED_TYPES))} are accepted")
        if declared_type and declared_type.partition(";")[0].strip().lower() not in (media_type, ""):
            raise MaterialTypeError(f"the file is {media_type}, not {declared_type} as declared")
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write aside, then rename: a crash never leaves a half file under a valid name.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return MaterialRef(digest, len(data), media_type)

    def read(self, sha256: str) -> tuple[bytes, MaterialRef]:
        """The bytes of a material, refused if they no longer hash to their name."""
        path = self._path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MaterialNotFoundError(f"no material {sha256}") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise MaterialCorruptedError(f"material {sha256} is damaged: its content changed")
        return data, MaterialRef(sha256, len(data), sniff(data) or "application/octet-stream")

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise MaterialNotFoundError(f"{sha256!r} is not a sha256 in lower-case hex")
        return self.root / sha256[:2] / sha256[2:4] / sha256
