"""The platform over real HTTP: health, metrics, OpenAPI, auth, bad input, consumers across processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend.database import create_pool
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from tests.dbutil import ROOT, database_url
from tests.e2e.conftest import LiveServer, signal_server, start_server, stop_server
from tests.e2e.sample import Parcel

pytestmark = pytest.mark.e2e


def head_position(client: httpx.Client) -> int:
    return int(client.get("/health").json()["headPosition"])


def consumer(body: dict, name: str = "event_counts") -> dict:  # type: ignore[type-arg]
    return next(c for c in body["consumers"] if c["name"] == name)


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


REGISTERED = "tests.e2e.sample:Parcel.Registered"
NOTED = "tests.e2e.sample:Parcel.Noted"


def append_from_outside(schema: str, count: int, notes: int = 0) -> list[int]:
    """Another process's writer appends real events (count parcels, each with `notes` notes)."""
    mapper = make_mapper()

    async def go() -> list[int]:
        url = database_url()
        pool = await create_pool(url, schema, min_size=1, max_size=2)
        rec = EventRecorder(url, schema, pool)
        await rec.start()
        try:
            ids: list[int] = []
            for n in range(count):
                parcel = Parcel(label=f"parcel-{n}")
                for k in range(notes):
                    parcel.note(text=f"note {k}")
                ids += await rec.append([mapper.to_stored_event(e) for e in parcel.collect_events()])
            return ids
        finally:
            await rec.close()
            await pool.close()

    return asyncio.run(go())


def test_health_is_green_and_lists_the_consumers(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    names = {c["name"]: c for c in body["consumers"]}
    assert names["event_counts"]["leader"] is True


def test_liveness_answers_without_a_token(client: httpx.Client) -> None:
    response = client.get("/livez")
    assert response.status_code == 200 and response.json() == {"status": "alive"}


def test_openapi_and_metrics_are_served(client: httpx.Client) -> None:
    doc = client.get("/schema/openapi.json").json()
    assert {"/health", "/api/v1/auth/me", "/api/v1/auth/dev-login"} <= set(doc["paths"])
    client.get("/health")
    metrics = client.get("/metrics").text
    assert 'citypass_http_requests_total{method="GET",route="/health",status="200"}' in metrics
    assert 'citypass_consumer_lag{consumer="event_counts"}' in metrics


def test_dev_login_token_opens_the_api(client: httpx.Client) -> None:
    assert client.get("/api/v1/auth/me").status_code == 401
    login = client.post(
        "/api/v1/auth/dev-login", json={"subject": "officer-7", "role": "officer", "department": "SCJGJ"}
    )
    assert login.status_code in (200, 201)
    token = login.json()["token"]
    me = client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["subject"] == "officer-7" and me.json()["role"] == "officer"


@pytest.mark.parametrize(
    ("body", "headers", "status", "kind"),
    [
        (b'{"subject": "x", "role": ', {"content-type": "application/json"}, 400, "malformed-json"),
        (b'{"subject": 12, "role": "citizen"}', {"content-type": "application/json"}, 400, "validation"),
        (b'{"subject": "x", "role": "emperor"}', {"content-type": "application/json"}, 400, "validation"),
        (b"subject=x", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported-media-type"),
    ],
)
def test_bad_input_gets_a_problem_and_changes_nothing(
    client: httpx.Client, body: bytes, headers: dict[str, str], status: int, kind: str
) -> None:
    before = head_position(client)
    response = client.post("/api/v1/auth/dev-login", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith(f"/problems/{kind}") and problem["status"] == status
    assert head_position(client) == before


def _raw_post(base_url: str, path: str, body: bytes, chunked: bool) -> tuple[int, bytes]:
    """POST over a raw socket, reading the answer even if the server replies before the body ends."""
    host, port = base_url.removeprefix("http://").split(":")
    framing = b"Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}".encode()
    head = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
    head += b"Content-Type: application/json\r\n" + framing + b"\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        try:
            for start in range(0, len(body), 65536):
                piece = body[start : start + 65536]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: read what it said
        answer = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_gets_413_and_changes_nothing(
    live_server: LiveServer, client: httpx.Client, chunked: bool
) -> None:
    before = head_position(client)
    body = b'{"subject": "' + b"x" * 2_000_000 + b'", "role": "citizen"}'
    status, payload = _raw_post(live_server.base_url, "/api/v1/auth/dev-login", body, chunked)
    assert status == 413
    assert b"/problems/body-too-large" in payload
    assert head_position(client) == before


def test_consumer_follows_events_written_by_another_process(
    live_server: LiveServer, client: httpx.Client
) -> None:
    ids = append_from_outside(live_server.schema, 25)
    wait_for(lambda: consumer(client.get("/health").json())["position"] >= ids[-1])
    body = client.get("/health").json()
    assert body["headPosition"] >= ids[-1]
    counts = consumer(body)
    assert counts["lag"] == body["headPosition"] - counts["position"]


def _count_rows(schema: str) -> list[tuple[str, int]]:
    async def go() -> list[tuple[str, int]]:
        pool = await create_pool(database_url(), schema, min_size=1, max_size=1)
        try:
            rows = await pool.fetch(
                "SELECT topic, sum(events)::int FROM event_counts GROUP BY topic ORDER BY 1"
            )
            return [(r[0], r[1]) for r in rows]
        finally:
            await pool.close()

    return asyncio.run(go())


def test_replay_command_rebuilds_while_the_server_keeps_serving(
    live_server: LiveServer, client: httpx.Client
) -> None:
    ids = append_from_outside(live_server.schema, 10, notes=2)
    wait_for(lambda: consumer(client.get("/health").json())["position"] >= ids[-1])
    before = _count_rows(live_server.schema)
    env = {**os.environ, "CITYPASS_DATABASE_URL": database_url(), "CITYPASS_DB_SCHEMA": live_server.schema}
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "replay", "event_counts"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "rebuilt from 0" in result.stdout
    assert _count_rows(live_server.schema) == before
    # The live server moved to the new generation and keeps counting.
    counted = dict(before)
    more = append_from_outside(live_server.schema, 3)
    wait_for(lambda: dict(_count_rows(live_server.schema))[REGISTERED] == counted[REGISTERED] + 3)
    assert consumer(client.get("/health").json())["position"] >= more[-1]

    unknown = subprocess.run(
        [sys.executable, "-m", "backend.cli", "replay", "no_such_model"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 2 and "event_counts" in unknown.stderr


def test_a_second_server_takes_over_consumers_when_the_first_dies(
    live_server: LiveServer, tmp_path: Path
) -> None:
    # A throwaway pair on a schema of their own, so killing one does not disturb the module's server.
    from tests.dbutil import drop_schema_sync, new_schema_name

    schema = new_schema_name()
    first = start_server(tmp_path, schema)
    second = start_server(tmp_path, schema)
    try:

        def leader_view(server: LiveServer) -> bool:
            return bool(consumer(httpx.get(f"{server.base_url}/health", timeout=5).json())["leader"])

        wait_for(lambda: leader_view(first) and leader_view(second))  # someone leads; both see it
        signal_server(first, signal.SIGKILL)  # the whole process group: no worker lives on
        first.process.wait()
        ids = append_from_outside(schema, 5)
        wait_for(
            lambda: (
                httpx.get(f"{second.base_url}/health", timeout=5).json()["consumers"][0]["position"]
                >= ids[-1]
            ),
            timeout=30,
        )
        assert dict(_count_rows(schema))[REGISTERED] == 5
        # Two servers started on one schema loaded the catalogue once between them.
        assert _catalogue_events(schema) == _catalogue_events(live_server.schema)
    finally:
        stop_server(second)
        if first.process.poll() is None:
            stop_server(first)
        drop_schema_sync(schema)


def test_catalogue_is_loaded_once_and_searchable(live_server: LiveServer, client: httpx.Client) -> None:
    found = client.get("/api/v1/services", params={"q": "公积金"})
    assert found.status_code == 200
    names = [item["name"] for item in found.json()["items"]]
    assert names and all("公积金" in n for n in names)
    bundles = client.get("/api/v1/bundles").json()
    kaiban = next(b for b in bundles if "企业开办" in b["name"])
    guide = client.get(f"/api/v1/bundles/{kaiban['code']}").json()
    assert len(guide["children"]) == 5
    assert client.get("/api/v1/services/NO-SUCH-CODE").status_code == 404
    assert client.get("/api/v1/services", params={"size": 1000}).status_code == 400
    assert _catalogue_events(live_server.schema) > 0


def _catalogue_events(schema: str) -> int:
    rows = dict(_count_rows(schema))
    return sum(n for topic, n in rows.items() if topic.startswith("domain.catalogue:"))
