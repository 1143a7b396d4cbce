"""A slow SSE client over a real socket: dropped with its cursor, not buffered without bound, then resumed."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import PersonalCipher, dev_data_keys
from backend.store.recorder import EventRecorder
from tests.dbutil import database_url
from tests.e2e.conftest import LiveServer, server_at
from tests.e2e.stream_support import read_frames
from tests.e2e.stream_writer import Writer

pytestmark = pytest.mark.e2e

BUFFER = 20


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with server_at(tmp_path, "2026-12-07T09:00:00+08:00", {"CITYPASS_SSE_BUFFER": str(BUFFER)}) as live:
        yield live


def dropped_so_far(base_url: str) -> float:
    metrics = httpx.get(f"{base_url}/metrics").text
    line = next((x for x in metrics.splitlines() if x.startswith("citypass_stream_dropped_total")), None)
    return float(line.split()[-1]) if line else 0.0


async def write_until_dropped(server: LiveServer) -> int:
    """Write cases, 500 events a round, until the server drops a subscriber; return the events written."""
    pool = await asyncpg.create_pool(database_url(), server_settings={"search_path": server.schema})
    recorder = EventRecorder(database_url(), server.schema, pool)
    await recorder.start()
    try:
        writer = Writer(AggregateStore(recorder, make_mapper(personal=PersonalCipher(dev_data_keys()))), 4)
        for _ in range(40):
            for _ in range(10):
                await writer.step(50)
            await asyncio.sleep(0.5)
            if await asyncio.to_thread(dropped_so_far, server.base_url) >= 1:
                return writer.written
        raise AssertionError(f"no subscriber dropped after {writer.written} events")
    finally:
        await recorder.close()
        await pool.close()


def dechunk(raw: bytes) -> bytes:
    """The body of an HTTP/1.1 chunked response."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    body = b""
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    return body


def token(base_url: str) -> str:
    login = httpx.post(
        f"{base_url}/api/v1/auth/dev-login",
        json={"subject": "officer-d01", "role": "officer", "department": "D01"},
    )
    return str(login.json()["token"])


def stream_positions(base_url: str, bearer: str, after: int) -> list[int]:
    positions, cursor = [], after
    while True:
        page = httpx.get(
            f"{base_url}/api/v1/streams/events", params={"after": cursor, "limit": 1000},
            headers={"authorization": f"Bearer {bearer}"},
        ).json()  # fmt: skip
        positions += [e["position"] for e in page["events"]]
        if not page["events"]:
            return positions
        cursor = page["nextCursor"]


def test_a_client_that_stops_reading_is_dropped_and_resumes_from_its_cursor(server: LiveServer) -> None:
    bearer = token(server.base_url)
    start = httpx.get(f"{server.base_url}/health").json()["headPosition"]
    port = int(server.base_url.rsplit(":", 1)[1])
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)  # a phone on a bad network, say
    slow.connect(("127.0.0.1", port))
    slow.sendall(
        f"GET /api/v1/streams/events/sse HTTP/1.1\r\nHost: citypass\r\nAuthorization: Bearer {bearer}\r\n"
        f"Last-Event-ID: {start}\r\nConnection: close\r\n\r\n".encode()
    )
    time.sleep(1)  # connected and subscribed; from now on it reads nothing
    asyncio.run(write_until_dropped(server))
    slow.settimeout(30)
    raw = b""
    while chunk := slow.recv(65536):  # now it reads everything the server still sends, to the close
        raw += chunk
    slow.close()
    frames = read_frames(dechunk(raw).decode().split("\n"), lambda frames: False)
    assert frames and frames[-1].event == "dropped"
    dropped: dict[str, Any] = frames[-1].data
    assert dropped["reason"].startswith("slow-consumer")
    got = [f.id for f in frames[:-1]]
    assert dropped["resumeAfter"] == (got[-1] if got else start)
    # Resuming after the cursor gets the rest: every event of D01's stream once, in order.
    expected = stream_positions(server.base_url, bearer, start)
    headers = {"authorization": f"Bearer {bearer}", "last-event-id": str(dropped["resumeAfter"])}
    with httpx.stream(
        "GET", f"{server.base_url}/api/v1/streams/events/sse", headers=headers, timeout=30
    ) as r:
        rest = read_frames(r.iter_lines(), lambda frames: frames[-1].id >= expected[-1])
    assert got + [f.id for f in rest] == expected
    assert len(expected) > BUFFER * 5
    assert rest[0].data["case"]["number"].startswith("BENCH") and rest[0].event == rest[0].data["type"]
