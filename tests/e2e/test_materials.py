"""Material upload and read over real HTTP: content addressing, limits, roles, damage detection."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dbutil import drop_schema_sync, new_schema_name
from tests.e2e.conftest import LiveServer, start_server, stop_server

pytestmark = pytest.mark.e2e

LIMIT = 65_536
PDF = b"%PDF-1.7\n" + "申请人身份证明".encode() + b"\n%%EOF"


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, files_dir: Path) -> Iterator[LiveServer]:
    schema = new_schema_name()
    env = {"CITYPASS_MAX_UPLOAD_BYTES": str(LIMIT), "CITYPASS_FILES_DIR": str(files_dir)}
    live = start_server(tmp_path_factory.mktemp("srv"), schema, env)
    try:
        yield live
    finally:
        stop_server(live)
        drop_schema_sync(schema)


def token(server: LiveServer, role: str, **scopes: str) -> dict[str, str]:
    body = {"subject": f"{role}-1", "role": role, **scopes}
    issued = httpx.post(f"{server.base_url}/api/v1/auth/dev-login", json=body, timeout=10).json()["token"]
    return {"authorization": f"Bearer {issued}"}


def upload(server: LiveServer, data: bytes, media_type: str, headers: dict[str, str]) -> httpx.Response:
    files = {"data": ("scan.bin", data, media_type)}
    return httpx.post(f"{server.base_url}/api/v1/materials/", files=files, headers=headers, timeout=10)


def test_upload_then_staff_read(server: LiveServer, files_dir: Path) -> None:
    citizen, clerk = token(server, "citizen"), token(server, "clerk", hall="CSZWFWZX")
    first = upload(server, PDF, "application/pdf", citizen)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body == {
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "size": len(PDF),
        "mediaType": "application/pdf",
    }
    assert upload(server, PDF, "application/pdf", citizen).json() == body  # same content, same reference

    url = f"{server.base_url}/api/v1/materials/{body['sha256']}"
    assert httpx.get(url, headers=citizen, timeout=10).status_code == 403
    read = httpx.get(url, headers=clerk, timeout=10)
    assert read.status_code == 200 and read.content == PDF
    assert read.headers["content-type"].startswith("application/pdf")

    # Damage the stored file behind the server's back: the read is refused.
    stored = next(files_dir.rglob(body["sha256"]))
    stored.write_bytes(PDF.replace(b"%%EOF", b"%%EOX"))
    damaged = httpx.get(url, headers=clerk, timeout=10)
    assert damaged.status_code == 500
    assert damaged.json()["type"].endswith("/problems/material-corrupted")


@pytest.mark.parametrize(
    ("data", "media_type", "status", "kind"),
    [
        (b"MZ\x90\x00not a document", "application/pdf", 415, "material-type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 16, "application/pdf", 415, "material-type"),
        (b"%PDF-" + b"x" * (LIMIT + 10), "application/pdf", 413, "material-too-large"),
    ],
)
def test_refused_uploads_are_problems_and_store_nothing(
    server: LiveServer, files_dir: Path, data: bytes, media_type: str, status: int, kind: str
) -> None:
    before = sorted(files_dir.rglob("*"))
    response = upload(server, data, media_type, token(server, "citizen"))
    assert response.status_code == status
    assert response.json()["type"].endswith(f"/problems/{kind}")
    assert sorted(files_dir.rglob("*")) == before


def test_upload_needs_a_token_and_unknown_materials_are_404(server: LiveServer) -> None:
    assert upload(server, PDF, "application/pdf", {}).status_code == 401
    missing = httpx.get(
        f"{server.base_url}/api/v1/materials/{'0' * 64}", headers=token(server, "auditor"), timeout=10
    )
    assert missing.status_code == 404 and missing.json()["type"].endswith("/problems/material-not-found")
