"""Materials are stored by content, limited in size and type, and checked on every read."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from backend.materials import (
    MaterialCorruptedError,
    MaterialNotFoundError,
    MaterialStore,
    MaterialTooLargeError,
    MaterialTypeError,
)

pytestmark = pytest.mark.unit

PDF = b"%PDF-1.7\n" + "营业执照扫描件".encode() + b"\n%%EOF"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_same_content_same_file(tmp_path: Path) -> None:
    store = MaterialStore(tmp_path, max_bytes=1024)
    first = store.put(PDF, "application/pdf")
    again = store.put(PDF)
    assert first == again
    assert first.sha256 == hashlib.sha256(PDF).hexdigest() and first.media_type == "application/pdf"
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1
    data, ref = store.read(first.sha256)
    assert data == PDF and ref == first


@pytest.mark.parametrize(
    ("data", "declared", "error"),
    [
        (b"", None, MaterialTypeError),
        (b"MZ\x90\x00 an executable", None, MaterialTypeError),
        (PNG, "application/pdf", MaterialTypeError),  # claims to be a PDF, is a PNG
        (b"%PDF-" + b"x" * 2000, "application/pdf", MaterialTooLargeError),
    ],
)
def test_refused_files_leave_nothing_behind(
    tmp_path: Path, data: bytes, declared: str | None, error: type
) -> None:
    store = MaterialStore(tmp_path, max_bytes=1024)
    with pytest.raises(error):
        store.put(data, declared)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_a_changed_file_is_refused_on_read(tmp_path: Path) -> None:
    store = MaterialStore(tmp_path, max_bytes=1024)
    ref = store.put(PDF)
    path = next(p for p in tmp_path.rglob(ref.sha256))
    path.write_bytes(PDF.replace("营业执照".encode(), "身份证明".encode()))
    with pytest.raises(MaterialCorruptedError):
        store.read(ref.sha256)


@pytest.mark.parametrize("name", ["0" * 64, "../../etc/passwd", "ABC" + "0" * 61, "00"])
def test_unknown_or_malformed_names_are_not_found(tmp_path: Path, name: str) -> None:
    store = MaterialStore(tmp_path, max_bytes=1024)
    with pytest.raises(MaterialNotFoundError):
        store.read(name)
    assert not store.exists("0" * 64)
