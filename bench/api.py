"""API benchmark: case writes beside a trivial route, progress reads over a large store, and projection lag.

Everything goes through real HTTP on loopback to `python -m backend.cli serve
--no-consumers`, with a `citypass worker` beside it for the consumers and timers
(DESIGN.md's production shape; `--single` runs them inside `serve`), started here on
a schema of its own (dropped at the end). The load comes from a separate
process (bench/api_load.py). The last line printed is one JSON object holding every
figure; BENCHMARKS.md says what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from backend.database import create_pool, embedded_url
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import PersonalCipher, dev_data_keys
from backend.store.recorder import EventRecorder
from bench import api_load
from bench.api_fill import FILL_PASSWORD, fill_store
from bench.api_server import CpuMeter, machine_facts, positions, prepare, served, wait_caught_up, wait_settled
from projections.case_secrets import QueryPasswords

ROOT = Path(__file__).resolve().parent.parent
hash_query_password = QueryPasswords(dev_data_keys()).hash  # under the dev server's keys, as it hashes
MACHINE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
GOAL_RATIO = 0.25
GOAL_PROGRESS_P99_MS = 10.0
GOAL_LAG_P99_MS = 100.0


# --- figures -----------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)]


def show(label: str, value: float, unit: str, note: str = "") -> None:
    print(f"{label:<52} {value:>10,.1f} {unit}{'  ' + note if note else ''}", flush=True)


def verdict(label: str, value: float, goal: float, unit: str, *, below: bool = False) -> str:
    met = "met" if (value < goal if below else value >= goal) else "MISSED"
    sign = "<" if below else ">="
    shown = f"{value:>10,.3f}" if abs(value) < 1 else f"{value:>10,.2f}"
    print(f"{label:<34} {shown}{unit:<3} goal {sign} {goal:g}{unit}: {met}", flush=True)
    return met


class Run:
    def __init__(self, args: argparse.Namespace, db_url: str) -> None:
        self.args, self.db_url = args, db_url
        self.figures: dict[str, Any] = {"phase_seconds": {}}
        self.schema = f"bench_api_{secrets.token_hex(4)}"
        self.postmaster_pid: int | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.figures["phase_seconds"][name] = round(time.perf_counter() - started, 1)


# --- the phases --------------------------------------------------------------------------


def closed(
    run: Run,
    meter: CpuMeter,
    gen: ProcessPoolExecutor,
    setup: api_load.Setup,
    flow: str,
    clients: int,
    *,
    warmup: float | None = None,
    case_ids: list[str] | None = None,
) -> dict[str, Any]:
    """One closed-loop phase: `clients` connections, each sending as soon as its last answer came."""
    seconds = run.args.seconds
    start_at = time.time() + 0.5 + (run.args.warmup if warmup is None else warmup)
    future = gen.submit(api_load.run_closed, setup, flow, clients, start_at, seconds, case_ids)
    usage = meter.over(start_at, seconds)
    result = future.result()
    result.update(usage, client_cores=result["client_cpu_s"] / result["seconds"])
    result["counts"] = {action: len(v) for action, v in result["latencies"].items()}
    return result


WRITES = ("submit", "pre_review", "accept")


def write_phases(run: Run, meter: CpuMeter, gen: ProcessPoolExecutor, setup: api_load.Setup) -> None:
    """Per client count: /livez, then the case writes, back to back so both meet the same machine."""
    fig, best = run.figures, None
    for clients in run.args.clients:
        trivial = closed(run, meter, gen, setup, "livez", clients)
        # Long enough for every client to go round its three commands before the count starts.
        writes = closed(run, meter, gen, setup, "cases", clients, warmup=run.args.write_warmup)
        t_rate = trivial["counts"].get("livez", 0) / trivial["seconds"]
        w_rate = sum(writes["counts"].get(a, 0) for a in WRITES) / writes["seconds"]
        cases = writes["cases"] / writes["seconds"]
        # Server CPU per request: robust to the machine's other load, unlike the rates.
        t_cpu = 1000 * trivial["server_cores"] / t_rate if t_rate else float("nan")
        w_cpu = 1000 * writes["server_cores"] / w_rate if w_rate else float("nan")
        fig[f"writes_{clients}"] = {
            "trivial_req_per_s": t_rate,
            "write_actions_per_s": w_rate,
            "cases_per_s": cases,
            "ratio_vs_trivial": w_rate / t_rate if t_rate else 0.0,
            "server_cpu_ms_per_trivial": t_cpu,
            "server_cpu_ms_per_write": w_cpu,
            "worker_cpu_ms_per_write": 1000 * writes["worker_cores"] / w_rate if w_rate else float("nan"),
            "cpu_trivial": _cores(trivial),
            "cpu_writes": _cores(writes),
            "latency_ms": {a: _spread(v) for a, v in {**trivial["latencies"], **writes["latencies"]}.items()},
            "errors": sum(trivial["errors"].values()) + sum(writes["errors"].values()),
        }
        show(
            f"GET /livez, {clients} clients",
            t_rate,
            "req/s",
            f"{t_cpu:.2f} ms server CPU each; {_cpu_note(trivial)}",
        )
        done = "/".join(str(writes["counts"].get(a, 0)) for a in WRITES)
        show(
            f"submit + pre-review + accept, {clients} clients",
            w_rate,
            "actions/s",
            f"{cases:,.1f} cases/s ({done} done), {w_cpu:.1f} ms server CPU each; {_cpu_note(writes)}",
        )
        if fig[f"writes_{clients}"]["errors"]:
            print(f"  errors: {trivial['error_samples'] + writes['error_samples']}", flush=True)
        # Steady only if the window saw about as many of each command: with many clients a round
        # of three commands can outlast the warm-up, and a window of mostly cheap submits flatters.
        counts = [writes["counts"].get(a, 0) for a in WRITES]
        steady = fig[f"writes_{clients}"]["steady"] = min(counts) >= 0.8 * max(counts) > 0
        if steady and (best is None or w_rate / t_rate > fig[f"writes_{best}"]["ratio_vs_trivial"]):
            best = clients
    if best is None:  # no steady window: take the fewest clients, the nearest to steady
        best = min(run.args.clients)
    chosen = fig[f"writes_{best}"]
    fig.update(
        write_actions_per_s=chosen["write_actions_per_s"],
        cases_per_s=chosen["cases_per_s"],
        trivial_req_per_s=chosen["trivial_req_per_s"],
        ratio_vs_trivial=chosen["ratio_vs_trivial"],
        write_best_clients=best,
        server_cpu_ms_per_trivial=chosen["server_cpu_ms_per_trivial"],
        server_cpu_ms_per_write=chosen["server_cpu_ms_per_write"],
    )
    # The same path without the 受理: submit and 预审 alone, the commands any case starts with.
    clients = max(run.args.clients)
    intake = closed(run, meter, gen, setup, "intake", clients, warmup=run.args.write_warmup)
    rate = sum(intake["counts"].get(a, 0) for a in WRITES) / intake["seconds"]
    cpu_ms = 1000 * intake["server_cores"] / rate if rate else float("nan")
    fig["intake"] = {
        "actions_per_s": rate,
        "ratio_vs_trivial": rate / fig[f"writes_{clients}"]["trivial_req_per_s"],
        "server_cpu_ms_per_write": cpu_ms,
        "cpu": _cores(intake),
        "latency_ms": {a: _spread(v) for a, v in intake["latencies"].items()},
    }
    show(
        f"submit + pre-review only, {clients} clients",
        rate,
        "actions/s",
        f"{cpu_ms:.1f} ms server CPU each; {_cpu_note(intake)}",
    )


def _spread(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "n": len(values)}


def _cores(result: dict[str, Any]) -> dict[str, float]:
    keys = ("client_cores", "server_cores", "worker_cores", "postgres_cores", "machine_busy_cores")
    return {k: round(result[k], 2) for k in keys}


def _cpu_note(result: dict[str, Any]) -> str:
    others = result["machine_busy_cores"] - result["client_cores"] - result["server_cores"]
    others -= result["postgres_cores"] + result["worker_cores"]
    return (
        f"cores: client {result['client_cores']:.2f}, server {result['server_cores']:.2f}, "
        f"worker {result['worker_cores']:.2f}, postgres {result['postgres_cores']:.2f}, "
        f"rest of machine {max(others, 0):.2f}"
    )


def password_hash_us(rounds: int = 20_000) -> float:
    """CPU microseconds of one 查询密码 hash: process time, so other jobs on the machine do not count."""
    started = time.process_time()
    for _ in range(rounds):
        hash_query_password("123456")
    return (time.process_time() - started) / rounds * 1e6


async def fill(run: Run) -> list[str]:
    """Fill the server's schema through our own recorder; returns the filled cases' ids."""
    args, fig = run.args, run.figures
    pool = await create_pool(run.db_url, run.schema, min_size=1, max_size=2)
    try:
        recorder = EventRecorder(run.db_url, run.schema, pool)
        await recorder.start()
        try:
            mapper = make_mapper(personal=PersonalCipher(dev_data_keys()))  # the dev server's keys
            filled = await fill_store(
                recorder, mapper, args.events, args.case_events, hash_query_password(FILL_PASSWORD)
            )
        finally:
            await recorder.close()
    finally:
        await pool.close()
    fig.update(
        events_filled=filled.events,
        case_events_filled=filled.case_events,
        cases_filled=len(filled.case_ids),
        fill_events_per_s=filled.per_s,
    )
    show(
        f"fill: {filled.events:,} events ({filled.case_events:,} in {len(filled.case_ids):,} cases)",
        filled.per_s,
        "events/s",
    )
    return [str(c) for c in filled.case_ids]


def progress_phase(
    run: Run, meter: CpuMeter, gen: ProcessPoolExecutor, setup: api_load.Setup, case_ids: list[str]
) -> None:
    """Progress of random filled cases over HTTP, one client then several; then the query alone."""
    fig = run.figures
    sample = random.Random(7).sample(case_ids, min(len(case_ids), 20_000))
    for clients in sorted({1, run.args.progress_clients}):
        result = closed(run, meter, gen, setup, "progress", clients, case_ids=sample)
        latencies = result["latencies"].get("progress", [])
        rate = len(latencies) / result["seconds"]
        fig[f"progress_{clients}"] = {
            **_spread(latencies),
            "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
            "max_ms": max(latencies, default=float("nan")),
            "req_per_s": rate,
            "server_cpu_ms_per_read": 1000 * result["server_cores"] / rate if rate else float("nan"),
            "errors": sum(result["errors"].values()),
            "cpu": _cores(result),
        }
        got = fig[f"progress_{clients}"]
        show(
            f"GET progress, {clients} client{'s' if clients > 1 else ''}: p50",
            got["p50"],
            "ms",
            f"p99 {got['p99']:.1f} ms; {rate:,.0f} req/s, "
            f"{got['server_cpu_ms_per_read']:.1f} ms server CPU each; {_cpu_note(result)}",
        )
    chosen = fig[f"progress_{run.args.progress_clients}"]
    fig.update(progress_p50_ms=chosen["p50"], progress_p99_ms=chosen["p99"])
    start_at = time.time() + 0.5 + run.args.warmup
    result = gen.submit(api_load.run_query_only, setup, sample, start_at, run.args.seconds).result()
    latencies = result["latencies"].get("query", [])
    fig["progress_query_only"] = _spread(latencies)
    show(
        "CaseQueries.progress alone (no HTTP), 1 at a time: p50",
        fig["progress_query_only"]["p50"],
        "ms",
        f"p99 {fig['progress_query_only']['p99']:.1f} ms",
    )


def lag_phase(
    run: Run, meter: CpuMeter, gen: ProcessPoolExecutor, setup: api_load.Setup, rate: float
) -> dict[str, Any]:
    """`rate` events/s for the counted seconds: some through HTTP, the rest appended by the generator."""
    args = run.args
    http_rate = min(args.lag_http_rate, rate)
    start_at = time.time() + 0.5 + args.warmup
    password_hash = hash_query_password(FILL_PASSWORD)
    job = (setup, http_rate, rate - http_rate, 32, start_at, args.lag_seconds, password_hash, 60.0)
    future = gen.submit(api_load.run_paced, *job)
    usage = meter.over(start_at, args.lag_seconds, lambda: positions(setup))
    result = future.result()
    usage["client_cores"] = result["client_cpu_s"] / result["seconds"]
    lags, seconds = result["lags_ms"], result["seconds"]
    every = lags["http"] + lags["store"]
    lag = {
        "events_per_s_asked": rate,
        "events_per_s": len(every) / seconds,
        "http_per_s": len(lags["http"]) / seconds,
        **_spread(every),
        "max_ms": max(every, default=float("nan")),
        "http": _spread(lags["http"]),
        "store": _spread(lags["store"]),
        "poll_ms": _spread(result["poll_ms"]),
        "http_send_late_ms": _spread(result["late_ms"]),
        "append_ms": _spread(result["append_ms"]),
        "command_ms": {a: _spread(v) for a, v in result["latencies"].items()},
        "errors": sum(result["errors"].values()),
        "drain_s": result["drain_s"],
        "censored": result["censored"],  # still not visible 60 s after the window: counted at 60 s+
        "cpu": _cores(usage),
        # Events appended (head) and handled by each consumer per second over the window.
        "log_per_s": usage["per_s"],
    }
    show(
        f"lag at {rate:,.0f} events/s asked: p50",
        lag["p50"],
        "ms",
        f"p99 {lag['p99']:,.1f} ms (HTTP {lag['http']['p99']:,.1f}, store {lag['store']['p99']:,.1f}); "
        f"{lag['events_per_s']:,.0f} events/s counted; {_cpu_note(usage)}",
    )
    handled = ", ".join(f"{k} {v:,.0f}" for k, v in usage["per_s"].items() if k != "head")
    print(
        f"  appended {usage['per_s'].get('head', 0):,.0f} events/s; handled per second: {handled}", flush=True
    )
    if result["errors"]:
        print(f"  errors: {result['error_samples']}", flush=True)
    return lag


def measure(run: Run) -> None:
    args, fig = run.args, run.figures
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        files = Path(tmp) / "files"
        with served(
            run.db_url, run.schema, args.workers, files, split=not args.single, settings=args.setting
        ) as server:
            worker_pid = server.worker.pid if server.worker else None
            meter = CpuMeter(server.process.pid, run.postmaster_pid, worker_pid)
            with run.phase("fill"):  # the server's consumers follow the fill as it goes
                case_ids = asyncio.run(fill(run))
            finished: dict[str, float] = {}
            with run.phase("catch_up"):
                first = meter.sample()
                fig["catch_up_s"] = wait_caught_up(server, args.catch_up_timeout, finished)
                fig["catch_up_cpu"] = _rounded(meter.between(first, meter.sample()))
            fill_s = fig["phase_seconds"]["fill"]
            # Each consumer's rate over the whole fill: bounded below by how fast the fill came.
            fig["catch_up_events_per_s"] = {
                name: (
                    fig["case_events_filled"] if name.startswith(("case_", "work_")) else fig["events_filled"]
                )
                / (fill_s + at)
                for name, at in finished.items()
                if name != "catalogue"
            }
            show(
                "consumers caught up with the fill after it ended in",
                fig["catch_up_s"],
                "s",
                "; ".join(f"{k} {v:,.0f}/s" for k, v in fig["catch_up_events_per_s"].items())
                + f"; server {fig['catch_up_cpu']['server_cores']:.2f}, "
                + f"worker {fig['catch_up_cpu']['worker_cores']:.2f} cores meanwhile",
            )
            setup = prepare(server, run.db_url, run.schema)
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, mp_context=context) as gen:
                gen.submit(time.time).result()  # start the generator process before any window
                with run.phase("writes"):
                    write_phases(run, meter, gen, setup)
                with run.phase("catch_up_writes"):
                    fig["settle_after_writes_s"] = wait_settled(
                        server, run.db_url, run.schema, args.catch_up_timeout
                    )
                with run.phase("progress"):
                    progress_phase(run, meter, gen, setup, case_ids)
                for rate in args.lag_rates:  # the goal's rate last: a backlog it leaves is drained
                    with run.phase(f"lag_{rate:g}"):
                        fig[f"lag_{rate:g}"] = lag_phase(run, meter, gen, setup, rate)
                    with run.phase(f"catch_up_lag_{rate:g}"):
                        wait_settled(server, run.db_url, run.schema, args.catch_up_timeout)
    goal_lag = fig[f"lag_{args.lag_rates[-1]:g}"]
    fig.update(lag_p50_ms=goal_lag["p50"], lag_p99_ms=goal_lag["p99"])
    summary(run)
    fig["goals"] = {
        "ratio_vs_trivial": verdict("write actions / trivial", fig["ratio_vs_trivial"], GOAL_RATIO, "x"),
        "progress_p99": verdict(
            "progress p99", fig["progress_p99_ms"], GOAL_PROGRESS_P99_MS, "ms", below=True
        ),
        "lag_p99": verdict("projection lag p99", fig["lag_p99_ms"], GOAL_LAG_P99_MS, "ms", below=True),
    }


def summary(run: Run) -> None:
    """What the 查询密码's hash costs the writes, and the CPU each request kind takes."""
    fig = run.figures
    fig["password_hash_us"] = password_hash_us()
    print(
        f"\n查询密码 hash (HMAC-SHA256): {fig['password_hash_us']:.1f} µs of CPU, one per 受理.\n"
        f"Server CPU per request: /livez {fig['server_cpu_ms_per_trivial']:.2f} ms, "
        f"write (mix) {fig['server_cpu_ms_per_write']:.1f} ms, "
        f"write without 受理 {fig['intake']['server_cpu_ms_per_write']:.1f} ms, "
        f"progress {fig[f'progress_{run.args.progress_clients}']['server_cpu_ms_per_read']:.1f} ms.",
        flush=True,
    )


def machine(db_url: str) -> dict[str, Any]:
    return machine_facts(db_url, ("litestar", "granian", "asyncpg"))


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("CITYPASS_"):
        raise argparse.ArgumentTypeError(f"expected CITYPASS_NAME=VALUE, got {text!r}")
    return name, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 s phases, 30,000 events")
    parser.add_argument("--seconds", type=float, help="counted seconds per throughput phase (default 10)")
    parser.add_argument("--events", type=int, help="events in the store before the reads (default 1,000,000)")
    parser.add_argument("--case-events", type=int, help="how many of them are case events (default 120,000)")
    parser.add_argument(
        "--clients",
        type=lambda s: [int(t) for t in s.split(",")],
        default=[64, 256],
        help="concurrent HTTP clients for the write and trivial phases (default 64,256)",
    )
    parser.add_argument(
        "--progress-clients", type=int, default=4, help="clients reading progress (default 4)"
    )
    parser.add_argument(
        "--lag-rates",
        type=lambda s: [float(t) for t in s.split(",")],
        default=[100.0, 1000.0],
        help="sustained events/s of the lag phases; the last is the goal's (default 100,1000)",
    )
    parser.add_argument(
        "--lag-http-rate", type=float, default=50.0, help="how many of them come through HTTP (default 50)"
    )
    parser.add_argument("--lag-seconds", type=float, help="counted seconds of the paced phase (default 20)")
    parser.add_argument(
        "--workers", type=int, default=1, help="the server's HTTP workers (default 1, its own)"
    )
    parser.add_argument(
        "--single",
        action="store_true",
        help="consumers and timers inside the API process (`serve`), not in a `citypass worker` of their own",
    )
    parser.add_argument(
        "--setting",
        action="append",
        type=_setting,
        default=[],
        metavar="CITYPASS_NAME=VALUE",
        help="a server setting to change from its default, for both processes (repeatable)",
    )
    parser.add_argument("--catch-up-timeout", type=float, default=900, help="seconds to wait for consumers")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", default=None, help=f"PostgreSQL to use (default {MACHINE_URL})")
    where.add_argument(
        "--embedded", action="store_true", help="use the embedded PostgreSQL under --data-dir instead"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "var" / "bench", help="embedded server's home"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.setting = dict(args.setting)
    args.seconds = args.seconds or (2.0 if args.quick else 10.0)
    args.warmup = min(2.0, args.seconds / 5)
    args.write_warmup = args.warmup if args.quick else max(args.warmup, 5.0)
    args.events = args.events or (30_000 if args.quick else 1_000_000)
    args.case_events = min(args.case_events or (6_000 if args.quick else 120_000), args.events)
    args.lag_seconds = args.lag_seconds or (4.0 if args.quick else 20.0)
    db_url = embedded_url(args.data_dir) if args.embedded else (args.database_url or MACHINE_URL)
    started = time.perf_counter()
    run = Run(args, db_url)
    run.figures.update(machine(db_url))
    run.postmaster_pid = run.figures.pop("postmaster_pid")
    run.figures.update(
        seconds_per_phase=args.seconds,
        warmup_seconds=args.warmup,
        clients=args.clients,
        progress_clients=args.progress_clients,
        server_workers=args.workers,
        settings=args.setting,
        shape="single" if args.single else "split",
        database="embedded" if args.embedded else "machine",
    )
    print(
        f"PostgreSQL {run.figures['postgres']} ({run.figures['database']}), Python {run.figures['python']}, "
        f"{run.figures['cpu_count']} CPUs, {args.seconds:g} s per phase\n",
        flush=True,
    )
    try:
        measure(run)
    finally:
        asyncio.run(_drop(db_url, run.schema))
    run.figures["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(_rounded(run.figures), ensure_ascii=False))
    return 0


async def _drop(db_url: str, schema: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4 if abs(value) < 1 else 2)  # ratios are small: keep their digits
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
