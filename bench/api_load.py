"""The load generator of bench/api.py: lean keep-alive HTTP/1.1 connections on asyncio, in its own process.

A general-purpose client such as httpx spends a few hundred microseconds of CPU per
request, more than the server spends on its trivial route, so it would measure
itself. Here a request is a few pre-built bytes and a response is read by its
Content-Length. The generator runs in its own process, off the server's event
loop, and every phase reports the CPU it used so a reader can see that it was not
the limit. Times are time.time() across processes; latencies are perf_counter().
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from backend.calendar_data import base_calendar
from backend.database import connect, create_pool
from backend.store.aggregates import AggregateStore
from backend.store.errors import ConcurrencyError
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import PersonalCipher, dev_data_keys
from backend.store.recorder import EventRecorder
from bench.api_fill import REGION, Step, person_fields, person_items, story
from domain.case import IllegalTransitionError, format_case_number
from domain.case.checks import BEIJING
from projections.case_progress import CaseQueries

_json = msgspec.json.Encoder()
_read = msgspec.json.Decoder()


class HttpError(RuntimeError):
    """The server answered with an unexpected status."""


class Connection:
    """One keep-alive HTTP/1.1 connection; a request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, *, token: str | None = None, body: Any = None
    ) -> tuple[int, bytes]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if token is not None:
            head += f"Authorization: Bearer {token}\r\n"
        payload = b"" if body is None else _json.encode(body)
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self._writer.write(head.encode() + b"\r\n" + payload)
        try:
            raw = await self._reader.readuntil(b"\r\n\r\n")
            lower = raw.lower()
            start = lower.find(b"\r\ncontent-length:")
            if start >= 0:
                end = lower.index(b"\r\n", start + 2)
                size = int(raw[start + 17 : end])
                data = await self._reader.readexactly(size) if size else b""
            elif b"\r\ntransfer-encoding: chunked" in lower:
                data = await self._chunks()
            else:
                data = b""
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        if b"\r\nconnection: close" in lower:
            self.close()
        return int(raw[9:12]), data

    async def _chunks(self) -> bytes:
        assert self._reader is not None
        parts = []
        while size := int((await self._reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16):
            parts.append(await self._reader.readexactly(size + 2))
        await self._reader.readuntil(b"\r\n")
        return b"".join(p[:-2] for p in parts)

    async def expect(self, status: int, method: str, path: str, **how: Any) -> Any:
        got, data = await self.request(method, path, **how)
        if got != status:
            raise HttpError(f"{method} {path}: {got} {data[:300]!r}")
        return _read.decode(data) if data else None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


# --- what the phases are given and what they return ---------------------------------------


@dataclass(frozen=True, slots=True)
class Setup:
    """What every phase needs from the parent: where the server is, tokens, and uploaded materials."""

    host: str
    port: int
    citizens: tuple[str, ...]  # tokens
    clerks: tuple[str, ...]
    item_code: str
    materials: dict[str, str]  # material id -> sha256 of an uploaded file
    db_url: str = ""
    schema: str = ""


@dataclass(slots=True)
class Tally:
    """Completions inside the counted window, per action, with their latencies (ms)."""

    start: float  # perf_counter() of the window's start
    end: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    cases: int = 0

    def inside(self, now: float) -> bool:
        return self.start <= now < self.end

    async def time(self, action: str, call: Awaitable[Any]) -> Any:
        began = time.perf_counter()
        try:
            result = await call
        except (HttpError, OSError, asyncio.IncompleteReadError) as exc:
            self.errors[action] = self.errors.get(action, 0) + 1
            if len(self.samples) < 5:
                self.samples.append(f"{action}: {exc}")
            raise
        done = time.perf_counter()
        if self.inside(done):
            self.latencies.setdefault(action, []).append((done - began) * 1000)
        return result


def perf_at(wall: float) -> float:
    """A time.time() instant on this process's perf_counter() scale."""
    return wall - time.time() + time.perf_counter()


async def _cpu_in_window(tally: Tally) -> float:
    """This process's CPU seconds over the counted window."""
    await asyncio.sleep(max(tally.start - time.perf_counter(), 0))
    before = time.process_time()
    await asyncio.sleep(max(tally.end - time.perf_counter(), 0))
    return time.process_time() - before


def _result(tally: Tally, cpu: float, **extra: Any) -> dict[str, Any]:
    return {
        "seconds": tally.end - tally.start,
        "latencies": tally.latencies,
        "errors": tally.errors,
        "error_samples": tally.samples,
        "cases": tally.cases,
        "client_cpu_s": cpu,
        **extra,
    }


# --- closed loops: each connection sends its next request as soon as the last one answered --


Flow = Callable[[Connection, Setup, Tally, random.Random], Awaitable[object]]


async def livez(conn: Connection, setup: Setup, tally: Tally, rng: random.Random) -> None:
    await tally.time("livez", conn.expect(200, "GET", "/livez"))


def submission(setup: Setup, request_id: str, rng: random.Random) -> dict[str, Any]:
    return {
        "itemCode": setup.item_code,
        "clientRequestId": request_id,
        "applicant": {"idType": "resident_id", "kind": "person", **person_fields(rng)},
        "form": {"备注": "无"},
        "materials": setup.materials,
    }


async def intake(conn: Connection, setup: Setup, tally: Tally, rng: random.Random) -> UUID:
    """申请 then 预审通过: two write actions, no 查询密码."""
    citizen, clerk = rng.choice(setup.citizens), rng.choice(setup.clerks)
    body = submission(setup, f"bench-{rng.getrandbits(64):016x}", rng)
    case = await tally.time("submit", conn.expect(201, "POST", "/api/v1/cases", token=citizen, body=body))
    path = f"/api/v1/staff/cases/{case['caseId']}"
    await tally.time(
        "pre_review", conn.expect(200, "POST", f"{path}/pre-review", token=clerk, body={"decision": "pass"})
    )
    return UUID(case["caseId"])


async def case_flow(conn: Connection, setup: Setup, tally: Tally, rng: random.Random) -> None:
    """The normal path to 受理: 申请, 预审通过, 受理 (which draws and hashes the 查询密码)."""
    case_id = await intake(conn, setup, tally, rng)
    clerk = rng.choice(setup.clerks)
    path = f"/api/v1/staff/cases/{case_id}/acceptance"
    await tally.time("accept", conn.expect(200, "POST", path, token=clerk, body={"mode": "standard"}))
    if tally.inside(time.perf_counter()):
        tally.cases += 1


def progress_reads(case_ids: list[str]) -> Flow:
    async def read(conn: Connection, setup: Setup, tally: Tally, rng: random.Random) -> None:
        path = f"/api/v1/cases/{rng.choice(case_ids)}/progress"
        await tally.time("progress", conn.expect(200, "GET", path, token=rng.choice(setup.clerks)))

    return read


FLOWS: dict[str, Flow] = {"livez": livez, "intake": intake, "cases": case_flow}


async def closed_loop(
    setup: Setup, flow: Flow, connections: int, start_at: float, seconds: float
) -> dict[str, Any]:
    tally = Tally(perf_at(start_at), perf_at(start_at) + seconds)
    stop = tally.end

    async def work(slot: int) -> None:
        conn, rng = Connection(setup.host, setup.port), random.Random(f"{start_at}-{slot}")
        try:
            while time.perf_counter() < stop:
                # A refused command is counted by Tally.time; the client goes on with a new case.
                with contextlib.suppress(HttpError, OSError, asyncio.IncompleteReadError):
                    await flow(conn, setup, tally, rng)
        finally:
            conn.close()

    workers = [asyncio.create_task(work(i)) for i in range(connections)]
    cpu = await _cpu_in_window(tally)
    await asyncio.gather(*workers)
    return _result(tally, cpu)


def run_closed(
    setup: Setup,
    flow: str,
    connections: int,
    start_at: float,
    seconds: float,
    case_ids: list[str] | None = None,
) -> dict[str, Any]:
    """Entry point in the generator process: one closed-loop phase."""
    chosen = progress_reads(case_ids or []) if flow == "progress" else FLOWS[flow]
    return asyncio.run(closed_loop(setup, chosen, connections, start_at, seconds))


async def query_only(setup: Setup, case_ids: list[str], start_at: float, seconds: float) -> dict[str, Any]:
    """The progress read model's own query code (CaseQueries.progress) in this process, one at a time:
    what a progress read costs below HTTP, auth and the server's event loop."""
    tally = Tally(perf_at(start_at), perf_at(start_at) + seconds)
    pool = await create_pool(setup.db_url, setup.schema, min_size=1, max_size=2)
    queries = CaseQueries(pool, base_calendar, lambda: datetime.now(UTC))
    rng = random.Random(f"{start_at}-queries")
    cpu_task = asyncio.create_task(_cpu_in_window(tally))
    try:
        while time.perf_counter() < tally.end:
            case_id = UUID(rng.choice(case_ids))
            found = await tally.time("query", queries.progress(case_id))
            if found is None:
                raise HttpError(f"no progress for filled case {case_id}")
    finally:
        await pool.close()
    return _result(tally, await cpu_task)


def run_query_only(setup: Setup, case_ids: list[str], start_at: float, seconds: float) -> dict[str, Any]:
    """Entry point in the generator process: progress queries without HTTP."""
    return asyncio.run(query_only(setup, case_ids, start_at, seconds))


# --- paced: commands at a fixed rate, and when each becomes visible in the progress read model --


POLL_EVERY = 0.005  # seconds between the starts of two visibility polls
_POSITION = """
SELECT t.notification_id FROM tracking t JOIN consumer_generations g
  ON t.application_name = g.consumer_name || '#g' || g.generation
WHERE g.consumer_name = 'case_progress'
"""


class Visibility:
    """Polls the progress read model until every acknowledged command shows.

    An append of our own is visible once case_progress's tracking position passes
    its notification id (the position commits with the rows). An HTTP command's id
    is not returned, so its case's version is polled instead. Polls run back to back;
    a command counts as visible at the return of the first poll sent after its
    acknowledgement that shows it, so each figure is late by at most one poll
    interval (POLL_EVERY) plus the poll itself (poll times are reported). After
    `stop(grace)`, whatever is still not visible when the grace runs out is counted at
    its lag so far (a lower bound), so a read model that cannot keep up still ends the
    phase; `censored` says how many.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.versions: dict[UUID, list[tuple[int, float]]] = {}  # HTTP: case -> (version, acked)
        self.positions: list[tuple[int, float]] = []  # ours: a heap of (notification id, acked)
        self.lags: dict[str, list[float]] = {"http": [], "store": []}
        self.polls: list[float] = []
        self.give_up_at: float | None = None
        self.censored = 0

    def acknowledged(self, case_id: UUID, version: int, at: float) -> None:
        self.versions.setdefault(case_id, []).append((version, at))

    def appended(self, notification_id: int, at: float) -> None:
        heapq.heappush(self.positions, (notification_id, at))

    def stop(self, grace: float) -> None:
        self.give_up_at = time.perf_counter() + grace

    async def run(self) -> None:
        while self.give_up_at is None or self.versions or self.positions:
            if self.give_up_at is not None and time.perf_counter() > self.give_up_at:
                self._censor(time.perf_counter())
                break
            if not (self.versions or self.positions):
                await asyncio.sleep(0.0005)
                continue
            asked = time.perf_counter()
            watched = {k: list(v) for k, v in self.versions.items()}
            position = await self.conn.fetchval(_POSITION) if self.positions else 0
            rows = (
                await self.conn.fetch(
                    "SELECT case_id, version FROM cases WHERE case_id = ANY($1::uuid[])", list(watched)
                )
                if watched
                else []
            )
            seen = time.perf_counter()
            self.polls.append((seen - asked) * 1000)
            self._settle(seen, position, watched, rows)
            # At most one poll per POLL_EVERY: back to back, polls would take CPU the server needs.
            await asyncio.sleep(max(POLL_EVERY - (time.perf_counter() - asked), 0))

    def _settle(
        self, seen: float, position: int, watched: dict[UUID, list[tuple[int, float]]], rows: list[Any]
    ) -> None:
        """What the poll returned at `seen` shows as visible: our appends up to `position`, and each
        watched case up to its version."""
        while self.positions and self.positions[0][0] <= position:
            self.lags["store"].append((seen - heapq.heappop(self.positions)[1]) * 1000)
        for row in rows:
            case_id = row["case_id"]
            for entry in watched[case_id]:
                if entry[0] <= row["version"]:
                    self.lags["http"].append((seen - entry[1]) * 1000)
                    self.versions[case_id].remove(entry)
            if not self.versions[case_id]:
                del self.versions[case_id]

    def _censor(self, now: float) -> None:
        for entries in self.versions.values():
            self.lags["http"].extend((now - at) * 1000 for _, at in entries)
            self.censored += len(entries)
        self.lags["store"].extend((now - at) * 1000 for _, at in self.positions)
        self.censored += len(self.positions)
        self.versions.clear()
        self.positions.clear()


async def paced_http(
    setup: Setup, rate: float, connections: int, tally: Tally, visibility: Visibility
) -> list[float]:
    """HTTP commands due at start + i/rate whatever the server's pace; how late each was sent (ms).

    Each appends one event: 申请 (version 1), 预审通过 (2), then visits recorded at the
    window (3, 4, …). A case is with one connection at a time, so its versions come in order.
    """
    due: asyncio.Queue[float | None] = asyncio.Queue()
    late: list[float] = []
    cases: list[tuple[UUID, int]] = []  # cases at rest, with their version

    async def command(conn: Connection, rng: random.Random) -> None:
        clerk = rng.choice(setup.clerks)
        if len(cases) < 16 or rng.random() < 0.3:
            body = submission(setup, f"lag-{rng.getrandbits(64):016x}", rng)
            call = conn.expect(201, "POST", "/api/v1/cases", token=rng.choice(setup.citizens), body=body)
            out = await tally.time("submit", call)
        else:
            case_id, version = cases.pop(rng.randrange(len(cases)))
            where = f"/api/v1/staff/cases/{case_id}"
            if version == 1:
                call = conn.expect(200, "POST", f"{where}/pre-review", token=clerk, body={"decision": "pass"})
                out = await tally.time("pre_review", call)
            else:
                call = conn.expect(200, "POST", f"{where}/trips", token=clerk, body={"purpose": "现场咨询"})
                out = await tally.time("trip", call)
        acked = time.perf_counter()
        case = UUID(out["caseId"])
        if tally.inside(acked):
            visibility.acknowledged(case, out["version"], acked)
        cases.append((case, out["version"]))

    async def work(slot: int) -> None:
        conn, rng = Connection(setup.host, setup.port), random.Random(f"{tally.start}-{slot}")
        try:
            while (when := await due.get()) is not None:
                late.append((time.perf_counter() - when) * 1000)
                with contextlib.suppress(HttpError, OSError, asyncio.IncompleteReadError):
                    await command(conn, rng)
        finally:
            conn.close()

    workers = [asyncio.create_task(work(i)) for i in range(connections)]
    await _pace(rate, tally.end, lambda when: due.put_nowait(when))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)
    return late


# Case numbers of the generator's own cases: far above what the server draws for today, and
# never reused by a later phase in this process (the read model keeps numbers unique).
_NUMBERS = itertools.count(900_000)


async def paced_store(
    setup: Setup, rate: float, tally: Tally, visibility: Visibility, password_hash: str
) -> list[float]:
    """Case commands through our own AggregateStore, as another API process would run them.

    Cases go from 申请 to e-licence one command (one event, one append) at a time,
    about 200 under way at once; the recorder group-commits the appends that meet.
    A conflict (a timer of the server acted first) reloads the case and runs the step again.
    Returns each append's latency (ms).
    """
    pool = await create_pool(setup.db_url, setup.schema, min_size=2, max_size=4)
    recorder = EventRecorder(setup.db_url, setup.schema, pool)
    await recorder.start()
    store = AggregateStore(recorder, make_mapper(personal=PersonalCipher(dev_data_keys())), snapshot_every=0)
    rng, items, today = random.Random(f"{tally.start}-store"), person_items(), datetime.now(BEIJING).date()

    def now(hours: float) -> datetime:
        return datetime.now(BEIJING)

    def new_story() -> list[Step]:
        number = format_case_number(REGION, today, next(_NUMBERS))
        return story(rng, rng.choice(items), number, password_hash, now)

    idle: list[tuple[Any, list[Step]]] = [(None, new_story()) for _ in range(200)]
    appends: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def step() -> None:
        case, steps = idle.pop(rng.randrange(len(idle)))
        command = steps.pop(0)
        case = command(case)
        began = time.perf_counter()
        try:
            ids = await store.save(case)
        except ConcurrencyError:
            try:
                case = command(await store.get(case.id))
            except IllegalTransitionError:
                # A timer of the server took the case elsewhere (秒批 concluded it): start another.
                idle.append((None, new_story()))
                return
            ids = await store.save(case)
        acked = time.perf_counter()
        appends.append((acked - began) * 1000)
        if tally.inside(acked):
            visibility.appended(ids[-1], acked)
        idle.append((case, steps) if steps else (None, new_story()))

    def launch(when: float) -> None:
        if idle:  # else every case is mid-append: the store is behind, and this command waits its turn
            task = asyncio.create_task(step())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    try:
        await _pace(rate, tally.end, launch)
        await asyncio.gather(*tasks)
    finally:
        await recorder.close()
        await pool.close()
    return appends


async def _pace(rate: float, until: float, fire: Callable[[float], None]) -> None:
    """Call fire(due) for due = now + i/rate until `until`, catching up after any stall."""
    if rate <= 0:
        return
    began, i = time.perf_counter(), 0
    while (when := began + i / rate) < until:
        await asyncio.sleep(max(when - time.perf_counter(), 0))
        fire(when)
        i += 1


async def paced(
    setup: Setup,
    http_rate: float,
    store_rate: float,
    connections: int,
    start_at: float,
    seconds: float,
    password_hash: str,
    drain_seconds: float,
) -> dict[str, Any]:
    """A sustained event rate from two sources at once, and when each shows in the progress read model."""
    tally = Tally(perf_at(start_at), perf_at(start_at) + seconds)
    db = await connect(setup.db_url, setup.schema)
    visibility = Visibility(db)
    poller = asyncio.create_task(visibility.run())
    cpu_task = asyncio.create_task(_cpu_in_window(tally))
    late, appends = await asyncio.gather(
        paced_http(setup, http_rate, connections, tally, visibility),
        paced_store(setup, store_rate, tally, visibility, password_hash),
    )
    cpu = await cpu_task
    visibility.stop(grace=drain_seconds)
    drained = time.perf_counter()
    try:
        await poller
    finally:
        await db.close()
    return _result(
        tally,
        cpu,
        lags_ms=visibility.lags,
        poll_ms=visibility.polls,
        late_ms=late,
        append_ms=appends,
        drain_s=time.perf_counter() - drained,
        censored=visibility.censored,
    )


def run_paced(
    setup: Setup,
    http_rate: float,
    store_rate: float,
    connections: int,
    start_at: float,
    seconds: float,
    password_hash: str,
    drain_seconds: float,
) -> dict[str, Any]:
    """Entry point in the generator process: the paced phase."""
    job = (setup, http_rate, store_rate, connections, start_at, seconds, password_hash, drain_seconds)
    return asyncio.run(paced(*job))
