"""异地代收代办 end to end between two real deployments: a 株洲 citizen applies at a 长沙 window for an item
株洲 handles; 株洲 decides; the citizen's 长沙 timeline shows every 株洲 step; both audit histories show
the hop, with hashes that verify.

Each city runs its own server process and schema and knows the other only through its partner
registry (the keys each publishes) and signed messages over loopback HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dbutil import drop_schema_sync, new_schema_name
from tests.e2e.case_journey_support import Headers, Person, login, ok, resident_id, wait_for
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.e2e.stream_support import Desk

pytestmark = pytest.mark.e2e

CHANGSHA, ZHUZHOU = "430100", "430200"
NAMES = {CHANGSHA: "长沙市", ZHUZHOU: "株洲市"}
GETI = "11430100006182474N010100200000"  # 个体工商户设立登记 (SCJGJ): 株洲 takes it by 异地代收代办
FOOD = "11430100006182474N010100300000"  # 食品经营许可: 长沙's registry says 株洲 takes it, 株洲 does not
ENV = {
    "CITYPASS_FEDERATION_RETRY_MIN_SECONDS": "0.05",
    "CITYPASS_FEDERATION_RETRY_MAX_SECONDS": "0.5",
    "CITYPASS_FEDERATION_TIMEOUT_SECONDS": "2",
    "CITYPASS_CONSUMER_POLL_SECONDS": "0.2",
}
WANG = Person("王株洲", resident_id(789), "13907331234", "湖南省株洲市天元区长江北路1号")


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    tmp = Path(tmp_path_factory.mktemp("tongban"))
    servers: dict[str, LiveServer] = {}
    try:
        for region in (CHANGSHA, ZHUZHOU):
            servers[region] = start_server(tmp, new_schema_name(), {**ENV, "CITYPASS_REGION": region})
        accepts = [{"itemCode": code, "modes": ["remote_collect"]} for code in (GETI, FOOD)]
        register(servers, CHANGSHA, ZHUZHOU, accepts=accepts)
        register(servers, ZHUZHOU, CHANGSHA, accepts=[])
        yield servers
    finally:
        for server in servers.values():
            stop_server(server)
            drop_schema_sync(server.schema)


def register(
    servers: dict[str, LiveServer], region: str, partner: str, accepts: list[dict[str, Any]]
) -> None:
    """In `region`, register `partner` with the keys it publishes, and wait for the registry's read model."""
    published = ok(httpx.get(f"{servers[partner].base_url}/federation/v1/keys"))
    keys = [{"kid": k["kid"], "publicKey": k["publicKey"]} for k in published["keys"]]
    body = {
        "name": NAMES[partner],
        "baseUrl": servers[partner].base_url,
        "accepts": accepts,
        "publicKeys": keys,
    }
    with httpx.Client(base_url=servers[region].base_url, timeout=10) as ours:
        who = login(ours, f"admin-{region}", "admin")
        ok(ours.put(f"/api/v1/admin/partners/{partner}", json=body, headers=who))
        wait_for(
            lambda: ours.get(f"/api/v1/admin/partners/{partner}", headers=who).status_code == 200, "registry"
        )


def stream(client: httpx.Client, who: Headers) -> list[dict[str, Any]]:
    events, cursor = [], 0
    while True:
        page = ok(client.get("/api/v1/streams/events", params={"after": cursor, "limit": 1000}, headers=who))
        events += page["events"]
        cursor = page["nextCursor"]
        if not page["events"]:
            return events


def staff(client: httpx.Client, who: Headers, case_id: str, action: str, body: Any = None) -> Any:
    return ok(client.post(f"/api/v1/staff/cases/{case_id}/{action}", json=body, headers=who))


def outbox_pending(client: httpx.Client) -> int:
    summary = ok(client.get("/api/v1/admin/federation/outbox", params={"state": "pending"}, headers=login(
        client, "admin-cs", "admin")))  # fmt: skip
    return int(summary["pending"])


def test_a_zhuzhou_item_applied_for_in_changsha_is_decided_in_zhuzhou_and_followed_in_changsha(
    cities: dict[str, LiveServer],
) -> None:
    cs = httpx.Client(base_url=cities[CHANGSHA].base_url, timeout=10)
    # 长沙: the citizen applies; the window checks the materials and identity, accepts, and hands off
    # while 株洲's server is down: the handoff waits in 长沙's outbox until 株洲 is back.
    desk = Desk.open(cs, "wang-zz")
    origin = desk.submit(GETI, "tongban-1", WANG)
    desk.act(origin, "pre-review", {"decision": "pass"})
    desk.act(origin, "acceptance", {"mode": "standard"})
    down = cities[ZHUZHOU]
    stop_server(down)
    staff(cs, desk.clerk, origin, "handoff", {"partner": ZHUZHOU, "mode": "remote_collect"})
    number = ok(cs.get(f"/api/v1/cases/{origin}/progress", headers=desk.citizen))["case"]["number"]
    wait_for(lambda: outbox_pending(cs) >= 1 or None, "the handoff waiting in 长沙's outbox")
    port = int(down.base_url.rsplit(":", 1)[1])
    cities[ZHUZHOU] = start_server(
        down.log_path.parent, down.schema, {**ENV, "CITYPASS_REGION": ZHUZHOU}, port=port
    )
    zz = httpx.Client(base_url=cities[ZHUZHOU].base_url, timeout=10)

    # 株洲: the case arrives, linked to 长沙's; its window and the 市场监管局 handle it.
    zz_admin = login(zz, "admin-zz", "admin")

    def arrived() -> dict[str, Any] | None:
        found = [e for e in stream(zz, zz_admin) if e["type"] == "case.received_from_partner"]
        return next((e for e in found if e["originNumber"] == number), None)

    received = wait_for(arrived, "the handoff in 株洲")
    handling = received["case"]["id"]
    assert (received["partner"], received["mode"]) == (CHANGSHA, "remote_collect")
    zz_clerk = login(zz, "clerk-zz", "clerk", name="株洲窗口", hall="ZZZWFW")
    staff(zz, zz_clerk, handling, "pre-review", {"decision": "pass"})
    staff(zz, zz_clerk, handling, "acceptance", {"mode": "standard"})
    staff(zz, zz_clerk, handling, "routing")
    for n, _step in enumerate(("承办", "审核", "批准"), 1):
        officer = login(zz, f"officer-zz-{n}", "officer", name=f"审批{n}", department="SCJGJ")
        staff(zz, officer, handling, "tasks/SCJGJ/claim")
        staff(zz, officer, handling, "tasks/SCJGJ/approve", {"opinion": "同意"})
    staff(zz, officer, handling, "conclusion", {"result": "approved"})

    # 长沙: the citizen's timeline shows every 株洲 step and the decision.
    def concluded() -> dict[str, Any] | None:
        progress = ok(cs.get(f"/api/v1/cases/{origin}/progress", headers=desk.citizen))
        return progress if progress["case"]["status"] == "concluded" else None

    progress = wait_for(concluded, "株洲's decision in 长沙", timeout=40)
    labels = [line["label"] for line in progress["timeline"]]
    assert any(label.startswith("转办理地") for label in labels)
    assert any(label.startswith("办理地已受理") for label in labels)
    assert sum(label.startswith("办理地：") for label in labels) >= 4  # 受理, 转办, 三级签批 …
    assert labels[-1] == "办结：出证办结"

    # Both audit histories show the hop, and both chains verify.
    for client, ref, hop in ((cs, origin, "case.handed_off"), (zz, handling, "case.received_from_partner")):
        auditor = login(client, "auditor-tongban", "auditor", name="电子监察")
        history = ok(
            client.get(f"/api/v1/audit/cases/{ref}/history", params={"reason": "通办抽查"}, headers=auditor)
        )
        assert hop in [e["type"] for e in history["entries"]]
        assert history["intact"] is True
        verdict = ok(
            client.get(
                f"/api/v1/audit/cases/{ref}/verification", params={"reason": "通办抽查"}, headers=auditor
            )
        )
        assert verdict["ok"] is True
    cs.close()
    zz.close()


def test_a_handoff_the_partner_does_not_take_comes_back_refused_and_the_citizen_is_told(
    cities: dict[str, LiveServer],
) -> None:
    cs = httpx.Client(base_url=cities[CHANGSHA].base_url, timeout=10)
    desk = Desk.open(cs, "wang-food")
    origin = desk.submit(FOOD, "tongban-food-1", WANG)
    desk.act(origin, "pre-review", {"decision": "pass"})
    desk.act(origin, "acceptance", {"mode": "standard"})
    staff(cs, desk.clerk, origin, "handoff", {"partner": ZHUZHOU, "mode": "remote_collect"})

    def told() -> dict[str, Any] | None:
        items = ok(cs.get("/api/v1/me/inbox", params={"limit": 50}, headers=desk.citizen))["items"]
        return next((i for i in items if i["purpose"] == "handoff_refused"), None)

    notice = wait_for(told, "the refusal told to the citizen", timeout=40)
    assert "remote_collect" in str(notice) or "异地代收代办" in str(notice)
    progress = ok(cs.get(f"/api/v1/cases/{origin}/progress", headers=desk.citizen))
    assert progress["case"]["status"] == "accepted"  # back with the window, which may send it elsewhere
    assert any(line["label"].startswith("办理地未接收") for line in progress["timeline"])
    cs.close()
