"""通办 benchmark: handoffs between two local deployments, and the round trip of their first answer.

Two dev servers (`citypass serve`) run as two cities, 长沙 (430100) and 株洲 (430200),
each on its own schema, and register each other with the keys each publishes. This
process then writes `--handoffs` cases straight into 长沙's event store, each submitted,
accepted at the window and handed off to 株洲 in one append, `--batch` at a time. From
there everything runs in the servers: 长沙's consumer puts `handoff.requested` in its
outbox, its relay signs and sends it, 株洲's inbox takes it and its applier opens the
linked case, 株洲's consumer answers `handoff.accepted`, and 长沙's applier records it on
the origin case. Each case has two small PDF materials in 长沙's file store; 株洲 fetches
them (signed GETs) before it opens its case, as a real deployment does, so a round trip
includes that transfer. Each city has its own files directory.

The round trip of a handoff runs from its `HandedOff` event's commit to the commit of
its `HandoffAccepted` event, both stamped by the one PostgreSQL server. Handoffs per
second count from the first hand-off to the last acceptance. `lost` counts handoffs
never answered within the wait; `applied_twice` counts a handoff opened twice in 株洲 or
accepted twice in 长沙. The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from backend.materials import MaterialStore
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import PersonalCipher, dev_data_keys
from backend.store.recorder import EventRecorder
from bench.api_server import CpuMeter, machine_facts
from domain.case import Actor, Case, Channel, Role
from domain.case.values import UploadedFile
from projections.case_secrets import QueryPasswords
from tests.dbutil import database_url, drop_schema_sync, new_schema_name
from tests.e2e.case_journey_support import pdf
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.integration.test_case_progress import LI

CHANGSHA, ZHUZHOU = "430100", "430200"
GETI = "11430100006182474N010100200000"  # 个体工商户设立登记: 株洲 takes it by 异地代收代办
CLERK = Actor(id="clerk-bench", role=Role.CLERK, name="周敏", hall="CSSMZJ")
CITIZEN = Actor(id="citizen-bench", role=Role.CITIZEN)
PASSWORD_HASH = QueryPasswords(dev_data_keys()).hash("731-0")
ENV = {
    "CITYPASS_FEDERATION_RETRY_MIN_SECONDS": "0.1",
    "CITYPASS_FEDERATION_RETRY_MAX_SECONDS": "2",
    "CITYPASS_CONSUMER_POLL_SECONDS": "0.2",
}
HANDED_OFF = "domain.case.aggregate:Case.HandedOff"
ACCEPTED = "domain.case.aggregate:Case.HandoffAccepted"
RECEIVED = "domain.case.aggregate:Case.ReceivedFromPartner"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


def register(
    servers: dict[str, LiveServer], region: str, partner: str, accepts: list[dict[str, Any]]
) -> None:
    published = httpx.get(f"{servers[partner].base_url}/federation/v1/keys").json()
    keys = [{"kid": k["kid"], "publicKey": k["publicKey"]} for k in published["keys"]]
    body = {"name": partner, "baseUrl": servers[partner].base_url, "accepts": accepts, "publicKeys": keys}
    base = servers[region].base_url
    login = {"subject": f"admin-{region}", "role": "admin"}
    token = httpx.post(f"{base}/api/v1/auth/dev-login", json=login).json()["token"]
    headers = {"authorization": f"Bearer {token}"}
    assert httpx.put(f"{base}/api/v1/admin/partners/{partner}", json=body, headers=headers).status_code == 200
    deadline = time.monotonic() + 30
    while httpx.get(f"{base}/api/v1/admin/partners/{partner}", headers=headers).status_code != 200:
        assert time.monotonic() < deadline, "the partner registry did not catch up"
        time.sleep(0.1)


def handed_off_case(serial: int, now: datetime, files: MaterialStore) -> Case:
    stored = {m: files.put(pdf(f"{m} bench case {serial}")).sha256 for m in ("M01", "M02")}
    case = Case.submit(
        CITIZEN, Channel.MINIAPP, now, case_id=uuid.uuid4(), number=f"TB{serial:012d}", applicant=LI,
        item_code=GETI, catalogue_version="1", materials={m: UploadedFile(sha) for m, sha in stored.items()},
    )  # fmt: skip
    case.accept(
        CLERK, Channel.HALL_WINDOW, now, receipt_number=f"SL{serial}", query_password_hash=PASSWORD_HASH
    )
    case.hand_off(
        CLERK, Channel.HALL_WINDOW, now, partner=ZHUZHOU, mode="remote_collect", handoff=uuid.uuid4()
    )
    return case


async def run(
    url: str, servers: dict[str, LiveServer], args: argparse.Namespace, meter: CpuMeter
) -> dict[str, Any]:
    origin = servers[CHANGSHA].schema
    pool = await asyncpg.create_pool(url, min_size=2, max_size=6, server_settings={"search_path": origin})
    recorder = EventRecorder(url, origin, pool)
    await recorder.start()
    store = AggregateStore(recorder, make_mapper(personal=PersonalCipher(dev_data_keys())), snapshot_every=0)
    first, began = meter.sample(), time.perf_counter()
    written = 0
    while written < args.handoffs:
        count = min(args.batch, args.handoffs - written)
        now = datetime.now(UTC)
        cases = [handed_off_case(written + n, now, args.files) for n in range(count)]
        await asyncio.gather(*(store.save(case) for case in cases))
        written += count
        await asyncio.sleep(args.pause)
    write_s = time.perf_counter() - began
    deadline = time.monotonic() + args.wait
    answered = 0
    while time.monotonic() < deadline:
        answered = await pool.fetchval("SELECT count(*) FROM stored_events WHERE topic = $1", ACCEPTED)
        if answered >= args.handoffs:
            break
        await asyncio.sleep(0.2)
    last = meter.sample()
    rows = await pool.fetch(
        "SELECT h.originator_id, h.recorded_at AS sent, a.recorded_at AS answered FROM stored_events h "
        "JOIN stored_events a ON a.originator_id = h.originator_id AND a.topic = $2 WHERE h.topic = $1",
        HANDED_OFF,
        ACCEPTED,
    )
    twice_here = await pool.fetchval(
        "SELECT count(*) FROM (SELECT originator_id FROM stored_events WHERE topic = $1 "
        "GROUP BY originator_id HAVING count(*) > 1) t",
        ACCEPTED,
    )
    twice_there = await pool.fetchval(
        f"SELECT count(*) - count(DISTINCT originator_id) FROM {servers[ZHUZHOU].schema}.stored_events "
        "WHERE topic = $1",
        RECEIVED,
    )
    await recorder.close()
    await pool.close()
    roundtrips = [(r["answered"] - r["sent"]).total_seconds() * 1000 for r in rows]
    span = (max(r["answered"] for r in rows) - min(r["sent"] for r in rows)).total_seconds() if rows else 0
    return {
        "handoffs": args.handoffs,
        "answered": len({r["originator_id"] for r in rows}),
        "write_seconds": round(write_s, 2),
        "span_seconds": round(span, 2),
        "handoffs_per_s": round(len(rows) / span, 1) if span else 0.0,
        "roundtrip_p50_ms": round(percentile(roundtrips, 50), 1),
        "roundtrip_p99_ms": round(percentile(roundtrips, 99), 1),
        "roundtrip_max_ms": round(max(roundtrips, default=float("nan")), 1),
        "lost": args.handoffs - len({r["originator_id"] for r in rows}),
        "applied_twice": int(twice_here) + int(twice_there),
        "cpu_cores": _cores(CpuMeter.between(first, last)),
    }


def _cores(used: dict[str, float]) -> dict[str, float]:
    """The meter's figures named for this bench: 长沙's server, 株洲's, PostgreSQL, the machine."""
    names = {"server_cores": "changsha", "worker_cores": "zhuzhou", "postgres_cores": "postgres"}
    named = {names.get(k, k.removesuffix("_cores")): round(v, 2) for k, v in used.items()}
    return named


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--handoffs", type=int, default=500)
    parser.add_argument("--batch", type=int, default=20, help="cases handed off together")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between batches")
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for the last answer")
    args = parser.parse_args()
    url = database_url()
    facts = machine_facts(url, ["litestar", "asyncpg", "cryptography", "httpx", "granian"])
    tmp = Path(tempfile.mkdtemp(prefix="bench-tongban-"))
    servers: dict[str, LiveServer] = {}
    try:
        for region in (CHANGSHA, ZHUZHOU):
            own = {"CITYPASS_REGION": region, "CITYPASS_FILES_DIR": str(tmp / f"files-{region}")}
            servers[region] = start_server(tmp, new_schema_name(), {**ENV, **own})
        args.files = MaterialStore(tmp / f"files-{CHANGSHA}", max_bytes=1 << 20)
        register(servers, CHANGSHA, ZHUZHOU, [{"itemCode": GETI, "modes": ["remote_collect"]}])
        register(servers, ZHUZHOU, CHANGSHA, [])
        meter = CpuMeter(
            servers[CHANGSHA].process.pid, facts.pop("postmaster_pid"), servers[ZHUZHOU].process.pid
        )
        figures = asyncio.run(run(url, servers, args, meter))
    finally:
        for server in servers.values():
            stop_server(server)
            drop_schema_sync(server.schema)
    figures["machine"] = facts
    for key, value in figures.items():
        if key != "machine":
            print(f"{key}: {value}")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
