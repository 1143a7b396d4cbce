"""The real server as a subprocess on a loopback port, with a schema of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.dbutil import ROOT, database_url, drop_schema_sync, new_schema_name


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    schema: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    tmp: Path,
    schema: str,
    extra_env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    port: int | None = None,  # a fixed one: a server restarted where its partners know it
) -> LiveServer:
    port = port or free_port()
    log_path = tmp / f"server-{port}.log"
    env = {
        **os.environ,
        "CITYPASS_DATABASE_URL": database_url(),
        "CITYPASS_DB_SCHEMA": schema,
        "CITYPASS_ENV": "dev",
        "CITYPASS_CONSUMER_POLL_SECONDS": "0.2",
        "CITYPASS_TIMER_POLL_SECONDS": "0.2",
        "CITYPASS_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port), *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: granian's workers go with it
        )
    server = LiveServer(f"http://127.0.0.1:{port}", schema, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=2).status_code in (200, 503):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    signal_server(server, signal.SIGKILL)
    raise RuntimeError(f"server did not answer /health within 60 s:\n{server.log()}")


def signal_server(server: LiveServer, sig: int) -> None:
    """Signal the server and its workers, as a machine going down would, not only the main process."""
    with contextlib.suppress(ProcessLookupError):  # already gone, all of it
        os.killpg(server.process.pid, sig)


def stop_server(server: LiveServer) -> None:
    signal_server(server, signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        signal_server(server, signal.SIGKILL)
        server.process.wait()
    signal_server(server, signal.SIGKILL)  # a worker that outlived its main process


def kill_server(server: LiveServer) -> None:
    """Kill the server and its workers at once (SIGKILL: no shutdown runs), as a machine losing power."""
    signal_server(server, signal.SIGKILL)
    server.process.wait(timeout=20)


@contextlib.contextmanager
def server_at(tmp: Path, clock_start: str, extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    """A server of its own schema whose clock reads `clock_start` as it starts (CITYPASS_DEV_CLOCK_START)."""
    schema = new_schema_name()
    server = start_server(tmp, schema, {"CITYPASS_DEV_CLOCK_START": clock_start, **(extra_env or {})})
    try:
        yield server
    finally:
        stop_server(server)
        drop_schema_sync(schema)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    schema = new_schema_name()
    server = start_server(tmp_path_factory.mktemp("server"), schema)
    try:
        yield server
    finally:
        stop_server(server)
        drop_schema_sync(schema)


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=10) as c:
        yield c
