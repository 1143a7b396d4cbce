"""The server under test and what it costs: `backend.cli serve` on its own schema, its CPU from /proc.

Part of bench/api.py. CPU is read per process from /proc/<pid>/stat (user + system),
so it counts threads too; the machine's total comes from /proc/stat.
"""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import api_load

ROOT = Path(__file__).resolve().parent.parent
ITEM = "114301000061839447050400200000"  # 失业保险金申领 (RSJ): three materials, open to persons
CLERK_HALL = "SMZJ"
_PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
_TICK = os.sysconf("SC_CLK_TCK")


# --- CPU: the server's process tree, PostgreSQL, the whole machine ------------------------


def stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _processes() -> dict[int, tuple[int, float]]:
    """Every process's parent and CPU seconds."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found_stat := stat(int(entry.name))) is not None:
            found[int(entry.name)] = found_stat
    return found


def _descendants(root: int, processes: dict[int, tuple[int, float]]) -> set[int]:
    tree, grew = {root}, True
    while grew:
        more = {p for p, (parent, _) in processes.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return tree


@dataclass(frozen=True, slots=True)
class CpuSample:
    at: float
    server: dict[int, float]  # CPU seconds of the server's processes (granian's worker, its threads)
    postgres: dict[int, float]  # of the PostgreSQL serving us: its postmaster and every backend
    busy: float  # the machine's busy and total CPU seconds, all cores
    total: float
    worker: dict[int, float]  # of the `citypass worker` (consumers and timers), when they run apart


class CpuMeter:
    """CPU used over a window, in cores: the server, PostgreSQL, and the machine as a whole.

    PostgreSQL's figure covers all its sessions, other jobs' too when the server is shared.
    A process that exits inside the window loses its share, so figures err low, never high.
    """

    def __init__(self, server_pid: int, postmaster_pid: int | None, worker_pid: int | None = None) -> None:
        self.server_pid, self.postmaster_pid, self.worker_pid = server_pid, postmaster_pid, worker_pid

    def sample(self) -> CpuSample:
        processes = _processes()
        server = _descendants(self.server_pid, processes)
        pg = _descendants(self.postmaster_pid, processes) if self.postmaster_pid else set()
        worker = _descendants(self.worker_pid, processes) if self.worker_pid else set()
        cpu = [int(v) / _TICK for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = cpu[3] + cpu[4]
        return CpuSample(
            time.time(),
            {p: processes[p][1] for p in server},
            {p: processes[p][1] for p in pg},
            sum(cpu) - idle,
            sum(cpu),
            {p: processes[p][1] for p in worker},
        )

    def over(
        self, start_at: float, seconds: float, probe: Callable[[], dict[str, int]] | None = None
    ) -> dict[str, Any]:
        """Sleep through the window [start_at, start_at + seconds]; CPU used in it, in cores, and how
        much each of `probe`'s counters grew per second."""
        time.sleep(max(start_at - time.time(), 0))
        first, before = self.sample(), probe() if probe else {}
        time.sleep(max(start_at + seconds - time.time(), 0))
        last, after = self.sample(), probe() if probe else {}
        return {
            **self.between(first, last),
            "per_s": {k: (after[k] - before[k]) / (last.at - first.at) for k in after if k in before},
        }

    @staticmethod
    def between(first: CpuSample, last: CpuSample) -> dict[str, Any]:
        """CPU used from one sample to the next, in cores."""
        wall = last.at - first.at

        def used(before: dict[int, float], after: dict[int, float]) -> float:
            return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()) / wall

        machine = (last.busy - first.busy) / max(last.total - first.total, 1e-9)
        return {
            "server_cores": used(first.server, last.server),
            "postgres_cores": used(first.postgres, last.postgres),
            "worker_cores": used(first.worker, last.worker),
            "machine_busy_cores": machine * (os.cpu_count() or 1),
        }


# --- the server --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    worker: subprocess.Popen[bytes] | None = None  # `citypass worker`, when consumers run apart

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(
    db_url: str,
    schema: str,
    workers: int,
    files: Path,
    *,
    split: bool,
    settings: dict[str, str] | None = None,
) -> Iterator[Server]:
    """The server with the stock settings, on its own schema and a free port.

    `split` is DESIGN.md's production shape: `serve --no-consumers` for HTTP and one
    `citypass worker` for the consumers and timers; otherwise `serve` runs everything.
    `settings` are CITYPASS_* variables to set beside those (`--setting` on the command line).
    """
    port = free_port()
    log_path = files.parent / f"server-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPASS_")}
    env.update(
        CITYPASS_DATABASE_URL=db_url,
        CITYPASS_DB_SCHEMA=schema,
        CITYPASS_ENV="dev",  # for /auth/dev-login; nothing else in the settings depends on it
        CITYPASS_FILES_DIR=str(files),
        CITYPASS_WORKERS=str(workers),
    )
    env.update(settings or {})
    processes: list[subprocess.Popen[bytes]] = []

    def launch(log_to: Path, *command: str) -> None:
        with log_to.open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "backend.cli", *command],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )

    launch(log_path, "serve", "--port", str(port), *(["--no-consumers"] if split else []))
    if split:
        launch(files.parent / f"worker-{port}.log", "worker")
    if split and env.get("CITYPASS_NOTIFY_DISPATCHER") == "0":
        # The worker leaves notifications to a dispatcher process, as such a deployment runs
        # one; its CPU is not metered apart (it shows in the rest of the machine).
        launch(files.parent / f"dispatcher-{port}.log", "dispatcher")
    server = Server(f"http://127.0.0.1:{port}", processes[0], log_path, processes[1] if split else None)
    try:
        deadline = time.monotonic() + 60
        while True:
            if (gone := next((p for p in processes if p.poll() is not None), None)) is not None:
                raise RuntimeError(f"{gone.args!r} exited with {gone.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not become healthy in 60 s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        stop_processes(processes)


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Ask each to stop (SIGTERM: a graceful shutdown), and kill whichever is not gone in 20 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_caught_up(server: Server, timeout: float, finished: dict[str, float] | None = None) -> float:
    """Poll /health until every consumer's lag is 0; the seconds it took. `finished` gets the
    seconds at which each consumer first stood at the head."""
    started = time.perf_counter()
    while True:
        report = httpx.get(f"{server.url}/health", timeout=10).json()
        if finished is not None:
            for consumer in report["consumers"]:
                if consumer["lag"] == 0:
                    finished.setdefault(consumer["name"], time.perf_counter() - started)
        if all(c["lag"] == 0 for c in report["consumers"]) and report["status"] == "ok":
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            lags = {c["name"]: c["lag"] for c in report["consumers"]}
            raise RuntimeError(f"consumers still behind after {timeout:.0f} s: {lags}")
        time.sleep(0.25)


def wait_settled(server: Server, db_url: str, schema: str, timeout: float) -> float:
    """Wait until consumers are at the head and no timer or notification is due; the seconds it took.

    A burst of writes leaves work behind it: each accepted case may turn yellow at once
    (a due_soon timer, whose command appends an event), and each command queues notices
    for the dispatcher. A measured phase after it should start from a quiet system, or it
    measures the burst's tail as well as its own load.
    """

    async def due() -> tuple[int, int]:
        conn = await asyncpg.connect(db_url, server_settings={"search_path": schema})
        try:
            timers = await conn.fetchval(
                "SELECT count(*) FROM due_timers WHERE fired_at IS NULL AND due_at <= now()"
            )
            notices = await conn.fetchval(
                "SELECT count(*) FROM notification_outbox "
                "WHERE state = 'pending' AND next_attempt_at <= now()"
            )
            return int(timers), int(notices)
        finally:
            await conn.close()

    started = time.perf_counter()
    while True:
        wait_caught_up(server, timeout)
        timers, notices = asyncio.run(due())
        if timers == 0 and notices == 0:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"after {timeout:.0f} s still {timers} timers and {notices} notifications due")
        time.sleep(0.5)


def prepare(server: Server, db_url: str, schema: str) -> api_load.Setup:
    """Tokens for citizens and clerks through dev-login, and one uploaded file per material."""
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def token(subject: str, role: str, **extra: str) -> str:
            body = {"subject": subject, "role": role, "name": "测试", **extra}
            response = client.post("/api/v1/auth/dev-login", json=body)
            response.raise_for_status()
            return str(response.json()["token"])

        citizens = tuple(token(f"bench-citizen-{n}", "citizen") for n in range(32))
        clerks = tuple(token(f"bench-clerk-{n}", "clerk", hall=CLERK_HALL) for n in range(4))
        guide = client.get(f"/api/v1/services/{ITEM}").raise_for_status().json()
        materials = {}
        for material in guide["materials"]:
            data = _PDF + f"% {material['id']}\n".encode()
            uploaded = client.post(
                "/api/v1/materials",
                files={"data": (f"{material['id']}.pdf", data, "application/pdf")},
                headers={"Authorization": f"Bearer {citizens[0]}"},
            )
            materials[material["id"]] = uploaded.raise_for_status().json()["sha256"]
    host, port = server.url.removeprefix("http://").split(":")
    return api_load.Setup(host, int(port), citizens, clerks, ITEM, materials, db_url, schema)


def positions(setup: api_load.Setup) -> dict[str, int]:
    """The log's head and each consumer's position, from /health."""
    report = httpx.get(f"http://{setup.host}:{setup.port}/health", timeout=10).json()
    return {"head": report["headPosition"], **{c["name"]: c["position"] for c in report["consumers"]}}


def machine_facts(db_url: str, packages: Sequence[str]) -> dict[str, Any]:
    """The CPU, Python, PostgreSQL and its settings, and the versions of `packages`, for a bench's JSON."""

    async def settings() -> dict[str, Any]:
        conn = await asyncpg.connect(db_url)
        try:
            names = ("server_version", "shared_buffers", "synchronous_commit", "fsync")
            found: dict[str, Any] = {n: await conn.fetchval(f"SHOW {n}") for n in names}
            backend = stat(await conn.fetchval("SELECT pg_backend_pid()"))  # None unless it runs here
            found["postmaster_pid"] = None if backend is None else backend[0]
            return found
        finally:
            await conn.close()

    pg = asyncio.run(settings())
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "postgres": pg.pop("server_version"),
        "postmaster_pid": pg.pop("postmaster_pid"),
        "postgres_settings": pg,
        **{name.replace("-", "_"): version(name) for name in packages},
    }
