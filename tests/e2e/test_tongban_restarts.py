"""跨城通办 through a hard crash of either city: batches of handoffs mid-flight, nothing lost, nothing twice.

Two real deployments, 长沙 (收件地, the window that hands off) and 株洲 (办理地, which takes the
cases on), exchange signed messages over loopback HTTP. A batch of cases is handed off and one
city's whole process group is killed with SIGKILL (no shutdown hook runs, no lease is given
back, no transaction is finished) at the worst moment the test can catch from outside:

(a) 长沙 right after the batch's last handoff is recorded, before or while its consumer enqueues
    the applications and its relay delivers them;
(b) 株洲 the moment the next batch is stored in its inbox, while its applier opens the cases and
    its reports consumer and relay send the acceptances back.

Each city comes back on its own port and schema. Then each handoff has exactly one linked case
in 株洲; each 长沙 case shows 株洲's acceptance, under that case's number, exactly once; and each
message is stored once in its inbox and applied.

A relay killed with deliveries in flight leaves their leases to run out (twice the relay timeout
+ 5 s, backend/federation/delivery.py) before another sends them again: the waits allow for the leases the
database shows at each kill. The two crashes come one after the other, with batch (a) possibly still
waiting out such a lease while (b) runs, so the module waits out a lease once at most.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.dbutil import database_url, drop_schema_sync, new_schema_name
from tests.e2e.case_journey_support import Headers, login, ok, staff_progress, wait_for
from tests.e2e.conftest import LiveServer, kill_server, start_server, stop_server
from tests.e2e.stream_support import Desk
from tests.e2e.tongban_support import CHANGSHA, ENV, GETI, NAMES, WANG, ZHUZHOU, register, staff, stream

pytestmark = pytest.mark.e2e

BATCH = 5
SETTLE_SECONDS = 30.0  # for both cities to carry a batch through once up again, leases aside
ACCEPTED = "办理地已受理"


@dataclass(frozen=True)
class Handoff:
    case_id: str  # 长沙's case
    handoff: str  # the same id in both cities


@dataclass
class Cities:
    tmp: Path
    servers: dict[str, LiveServer]
    restarts: int = 0
    leases_out_at: float = 0.0  # monotonic time by which every lease a killed relay held has run out

    def client(self, region: str) -> httpx.Client:
        return httpx.Client(base_url=self.servers[region].base_url, timeout=10)

    def killed(self, region: str, batch: list[Handoff]) -> str:
        """After a kill: note how long the dead relay's leases hold; say where the batch stood."""
        left = query(
            self.servers[region],
            "SELECT coalesce(max(extract(epoch FROM leased_until - now())), 0)::float "
            "FROM federation_outbox WHERE delivered_at IS NULL AND leased_until > now()",
        )[0][0]
        self.leases_out_at = max(self.leases_out_at, time.monotonic() + left)
        cs, zz = self.servers[CHANGSHA], self.servers[ZHUZHOU]
        out_cs, in_zz, out_zz, in_cs = (
            outbox(cs, batch),
            inbox(zz, batch),
            outbox(zz, batch),
            inbox(cs, batch),
        )
        return (
            f"{NAMES[region]} killed with 长沙 outbox {tally(out_cs, 'delivered')}, "
            f"株洲 inbox {tally(in_zz, 'applied')}, 株洲 outbox {tally(out_zz, 'delivered')}, "
            f"长沙 inbox {tally(in_cs, 'applied')}; "
            f"its relay's leases hold {left:.0f} s"
        )

    def restart(self, region: str) -> None:
        """Start the city again on its own port and schema, as a machine coming back; the old log kept."""
        old = self.servers[region]
        self.restarts += 1
        logs = self.tmp / f"restart-{self.restarts}"
        logs.mkdir()
        port = int(old.base_url.rsplit(":", 1)[1])
        self.servers[region] = start_server(logs, old.schema, {**ENV, "CITYPASS_REGION": region}, port=port)

    def patience(self) -> float:
        """Seconds to wait for a batch from now: enough to settle once the last lease has run out."""
        return SETTLE_SECONDS + max(self.leases_out_at - time.monotonic(), 0.0)


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cities]:
    found = Cities(Path(tmp_path_factory.mktemp("tongban-restarts")), {})
    try:
        for region in (CHANGSHA, ZHUZHOU):
            found.servers[region] = start_server(
                found.tmp, new_schema_name(), {**ENV, "CITYPASS_REGION": region}
            )
        register(found.servers, CHANGSHA, ZHUZHOU, accepts=[{"itemCode": GETI, "modes": ["remote_collect"]}])
        register(found.servers, ZHUZHOU, CHANGSHA, accepts=[])
        yield found
    finally:
        for server in found.servers.values():
            stop_server(server)
            drop_schema_sync(server.schema)


def accepted_cases(desk: Desk, tag: str) -> list[str]:
    """A batch of 株洲 cases applied for at 长沙's window, pre-reviewed and accepted, ready to hand off."""
    cases = []
    for n in range(BATCH):
        case_id = desk.submit(GETI, f"{tag}-{n}", WANG)
        desk.act(case_id, "pre-review", {"decision": "pass"})
        desk.act(case_id, "acceptance", {"mode": "standard"})
        cases.append(case_id)
    return cases


def hand_off(cities: Cities, desk: Desk, cases: list[str]) -> list[Handoff]:
    body = {"partner": ZHUZHOU, "mode": "remote_collect"}
    with cities.client(CHANGSHA) as cs:  # 长沙 may have come back on the same port since the desk opened
        sent = [staff(cs, desk.clerk, case_id, "handoff", body) for case_id in cases]
    assert all(s["status"] == "in_handling" for s in sent), sent
    return [Handoff(case_id, s["handoff"]) for case_id, s in zip(cases, sent, strict=True)]


# The databases, read as an operator would after a crash: what each city holds of a batch.


def query(server: LiveServer, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url())
        try:
            await conn.execute(f"SET search_path TO {server.schema}")
            rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


def outbox(server: LiveServer, batch: list[Handoff]) -> list[asyncpg.Record]:
    return query(
        server,
        "SELECT handoff::text, seq, kind, delivered_at IS NOT NULL AS delivered FROM federation_outbox "
        "WHERE handoff = ANY($1::uuid[]) ORDER BY handoff, seq",
        [h.handoff for h in batch],
    )


def inbox(server: LiveServer, batch: list[Handoff]) -> list[asyncpg.Record]:
    return query(
        server,
        "SELECT partner, handoff::text, seq, kind, applied_at IS NOT NULL AS applied, error "
        "FROM federation_inbox WHERE handoff = ANY($1::uuid[]) ORDER BY handoff, seq",
        [h.handoff for h in batch],
    )


def tally(rows: list[asyncpg.Record], done: str) -> str:
    return f"{len(rows)} ({sum(r[done] for r in rows)} {done})"


def kill_when_stored(server: LiveServer, batch: list[Handoff], timeout: float = 20.0) -> None:
    """SIGKILL the handling city the moment the whole batch is in its inbox: its applier is at work."""

    async def run() -> None:
        conn = await asyncpg.connect(database_url())
        try:
            deadline = time.monotonic() + timeout
            while await conn.fetchval(
                f"SELECT count(*) FROM {server.schema}.federation_inbox WHERE handoff = ANY($1::uuid[])",
                [h.handoff for h in batch],
            ) < len(batch):
                if time.monotonic() > deadline:
                    raise AssertionError(f"not within {timeout}s: the batch in 株洲's inbox")
                await asyncio.sleep(0.002)
            kill_server(server)
        finally:
            await conn.close()

    asyncio.run(run())


def settled(client: httpx.Client) -> bool:
    """Every consumer has handled every event stored so far."""
    health = client.get("/health").json()
    return all(c["position"] >= health["headPosition"] for c in health["consumers"])


def accepted_lines(client: httpx.Client, clerk: Headers, case_id: str) -> list[str]:
    """The case's timeline as staff see it (a line per event), once 株洲's acceptance is in it; else []."""
    response = client.get(f"/api/v1/cases/{case_id}/progress", headers=clerk)
    labels = [s["label"] for s in ok(response)["timeline"]]
    return labels if any(label.startswith(ACCEPTED) for label in labels) else []


def assert_each_applied_once(cities: Cities, batch: list[Handoff], state: str) -> None:
    """Each 长沙 case shows 株洲's acceptance once, 株洲 opened one case per handoff, no message twice."""
    with cities.client(CHANGSHA) as cs, cities.client(ZHUZHOU) as zz:
        clerk = login(cs, "clerk-restarts", "clerk", name="周敏", hall="CSSMZJ")
        for h in batch:
            wait_for(
                functools.partial(accepted_lines, cs, clerk, h.case_id),
                f"株洲's acceptance of handoff {h.handoff} in 长沙 ({state})",
                cities.patience(),
            )

        # Quiet: every message of the batch delivered and applied, every read model caught up.
        def quiet() -> bool:
            sent = [*outbox(cities.servers[CHANGSHA], batch), *outbox(cities.servers[ZHUZHOU], batch)]
            taken = [*inbox(cities.servers[CHANGSHA], batch), *inbox(cities.servers[ZHUZHOU], batch)]
            return (
                all(r["delivered"] for r in sent)
                and all(r["applied"] for r in taken)
                and settled(cs)
                and settled(zz)
            )

        wait_for(quiet, f"both cities quiet after the batch ({state})", cities.patience())

        # 株洲: one case per handoff, linked to the 长沙 case it came from.
        handoffs = {h.handoff: h.case_id for h in batch}
        received = [
            e
            for e in stream(zz, login(zz, "admin-zz", "admin"))
            if e["type"] == "case.received_from_partner" and e["handoff"] in handoffs
        ]
        opened = Counter(e["handoff"] for e in received)
        assert opened == Counter(list(handoffs)), f"cases opened in 株洲 per handoff ({state})"
        assert {e["handoff"]: e["originCaseId"] for e in received} == handoffs
        assert {(e["partner"], e["mode"]) for e in received} == {(CHANGSHA, "remote_collect")}
        numbers = {e["handoff"]: e["case"]["number"] for e in received}
        assert len(set(numbers.values())) == BATCH, numbers

        # 长沙: each case took the acceptance once, under its 株洲 case's number, and nothing else.
        ours = {h.case_id: h.handoff for h in batch}
        taken_on = [
            (ours[e["case"]["id"]], e["partnerNumber"])
            for e in stream(cs, login(cs, "admin-cs", "admin"))
            if e["type"] == "case.handoff_accepted" and e["case"]["id"] in ours
        ]
        assert sorted(taken_on) == sorted(numbers.items()), f"acceptances recorded in 长沙 ({state})"
        for h in batch:
            progress = staff_progress(cs, clerk, h.case_id)
            labels = [s["label"] for s in progress["timeline"]]
            assert [label for label in labels if label.startswith(ACCEPTED)] == [
                f"{ACCEPTED}（{numbers[h.handoff]}）"
            ], (state, labels)
            assert sum(label.startswith("转办理地") for label in labels) == 1, (state, labels)
            assert max(Counter(labels).values()) == 1, (state, labels)  # no step twice
            assert progress["case"]["status"] == "in_handling", (state, progress["case"])

    # Each message stored once in its inbox and applied: the application in 株洲, the acceptance
    # in 长沙, one each per handoff (株洲 took no further step on these cases).
    in_zz, in_cs = inbox(cities.servers[ZHUZHOU], batch), inbox(cities.servers[CHANGSHA], batch)
    assert sorted((r["handoff"], r["seq"], r["kind"]) for r in in_zz) == sorted(
        (h.handoff, 1, "handoff.requested") for h in batch
    ), state
    assert sorted((r["handoff"], r["seq"], r["kind"]) for r in in_cs) == sorted(
        (h.handoff, 1, "handoff.accepted") for h in batch
    ), state
    assert all(r["applied"] and r["error"] is None for r in (*in_zz, *in_cs)), (state, [*in_zz, *in_cs])


def test_either_city_killed_mid_flight_loses_no_handoff_and_applies_none_twice(cities: Cities) -> None:
    with cities.client(CHANGSHA) as cs:
        desk = Desk.open(cs, "restarts")
        first, second = accepted_cases(desk, "restarts-a"), accepted_cases(desk, "restarts-b")

    # (a) 长沙 dies the moment it has handed the batch off: its delivery is under way, or not begun.
    sent = hand_off(cities, desk, first)
    kill_server(cities.servers[CHANGSHA])
    crashed_sending = cities.killed(CHANGSHA, sent)
    cities.restart(CHANGSHA)

    # (b) 株洲 dies the moment the next batch is in its inbox, while it opens the cases and reports.
    applying = hand_off(cities, desk, second)
    kill_when_stored(cities.servers[ZHUZHOU], applying)
    crashed_applying = cities.killed(ZHUZHOU, applying)
    cities.restart(ZHUZHOU)
    print(f"\n(a) {crashed_sending}\n(b) {crashed_applying}")  # shown with -s: where each kill landed

    assert_each_applied_once(cities, sent, crashed_sending)
    assert_each_applied_once(cities, applying, crashed_applying)
