"""异地代收代办 end to end between two real deployments: a 株洲 citizen applies at a 长沙 window for an item
株洲 handles; 株洲 decides; the citizen's 长沙 timeline shows every 株洲 step; both audit histories show
the hop, with hashes that verify.

Each city runs its own server process and schema and knows the other only through its partner
registry (the keys each publishes) and signed messages over loopback HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.catalogue import DEFAULT_CATALOGUE
from tests.dbutil import drop_schema_sync, new_schema_name
from tests.e2e.case_journey_support import login, ok, pdf, upload, wait_for
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.e2e.stream_support import Desk
from tests.e2e.tongban_support import CHANGSHA, ENV, GETI, WANG, XIANGTAN, ZHUZHOU, register, staff, stream

pytestmark = pytest.mark.e2e

FOOD = "11430100006182474N010100300000"  # 食品经营许可: 长沙's registry says 株洲 takes it, 株洲 does not
# 失业保险金申领: 株洲 serves it 全程网办; 长沙's own catalogue leaves it out, so it is 株洲's item there.
BENEFIT = "114301000061839447050400200000"
# 社会保障卡申领: 长沙 accepts it, and 株洲 and 湘潭 each decide their part (多地联办).
FUND = "114301000061839447200400500000"


def changsha_catalogue(tmp: Path) -> Path:
    """The bundled catalogue without BENEFIT, as 长沙's own list."""
    data = json.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    data["items"] = [item for item in data["items"] if item["code"] != BENEFIT]
    path = tmp / "changsha_430100.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LiveServer]]:
    tmp = Path(tmp_path_factory.mktemp("tongban"))
    servers: dict[str, LiveServer] = {}
    try:
        own = {CHANGSHA: {"CITYPASS_CATALOGUE": str(changsha_catalogue(tmp))}, ZHUZHOU: {}, XIANGTAN: {}}
        for region in (CHANGSHA, ZHUZHOU, XIANGTAN):
            env = {**ENV, "CITYPASS_REGION": region, **own[region]}
            servers[region] = start_server(tmp, new_schema_name(), env)
        accepts = [{"itemCode": code, "modes": ["remote_collect"]} for code in (GETI, FOOD)]
        accepts.append({"itemCode": BENEFIT, "modes": ["full_online"], "name": "失业保险金申领（株洲）"})
        accepts.append({"itemCode": FUND, "modes": ["multi_city"]})
        register(servers, CHANGSHA, ZHUZHOU, accepts=accepts)
        register(servers, CHANGSHA, XIANGTAN, accepts=[{"itemCode": FUND, "modes": ["multi_city"]}])
        register(servers, ZHUZHOU, CHANGSHA, accepts=[])
        register(servers, XIANGTAN, CHANGSHA, accepts=[])
        yield servers
    finally:
        for server in servers.values():
            stop_server(server)
            drop_schema_sync(server.schema)


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
    sent = staff(cs, desk.clerk, origin, "handoff", {"partner": ZHUZHOU, "mode": "remote_collect"})
    number = sent["number"]  # from the command's answer: the progress view may not have it yet
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

    # 长沙's window posts the paper originals to 株洲's archive; 株洲 files them when the news is in,
    # and mails the result: both come back to 长沙 as tracked steps.
    staff(cs, desk.clerk, origin, "paper-materials", {"waybillNumber": "EMS1100000001"})
    archived = f"/api/v1/staff/cases/{handling}/paper-archived"
    wait_for(lambda: zz.post(archived, headers=zz_clerk).status_code == 200 or None, "the paper news in 株洲")
    staff(zz, zz_clerk, handling, "delivery", {"method": "mail", "waybillNumber": "EMS2200000002"})

    def delivered() -> dict[str, Any] | None:
        progress = ok(cs.get(f"/api/v1/cases/{origin}/progress", headers=desk.citizen))
        labels = [line["label"] for line in progress["timeline"]]
        return progress if progress["case"]["status"] == "delivered" and "纸质材料已归档" in labels else None

    progress = wait_for(delivered, "the result mailed and the paper archived, in 长沙", timeout=40)
    labels = [line["label"] for line in progress["timeline"]]
    assert "纸质材料已寄往办理地归档（EMS EMS1100000001）" in labels and "结果已寄出（EMS）" in labels

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
    # The progress view is its own consumer: it may lag the notice a moment.
    progress = wait_for(
        lambda: (
            p if (p := progress_of(cs, origin, desk.citizen)) and p["case"]["status"] == "accepted" else None
        ),
        "the case back with 长沙's window",
    )  # back with the window, which may send it elsewhere
    assert any(line["label"].startswith("办理地未接收") for line in progress["timeline"])
    cs.close()


def progress_of(client: httpx.Client, case_id: str, who: dict[str, str]) -> dict[str, Any] | None:
    """The case's progress, once its read model has it."""
    found = client.get(f"/api/v1/cases/{case_id}/progress", headers=who)
    return found.json() if found.status_code == 200 else None


def test_an_online_application_goes_to_zhuzhou_at_once_and_a_withdrawal_follows_it(
    cities: dict[str, LiveServer],
) -> None:
    cs = httpx.Client(base_url=cities[CHANGSHA].base_url, timeout=10)
    zz = httpx.Client(base_url=cities[ZHUZHOU].base_url, timeout=10)
    # 全程网办: the citizen applies from home in 长沙's mini-program; no window here touches it.
    citizen = login(cs, "citizen-online", "citizen", name="王株洲")
    body = {
        "itemCode": BENEFIT, "clientRequestId": "online-1", "applicant": WANG.as_applicant(), "form": {},
        "materials": {m: upload(cs, citizen, pdf(f"{m} 失业保险金")) for m in ("M01", "M02", "M03")},
    }  # fmt: skip
    origin = str(ok(cs.post("/api/v1/cases", json=body, headers=citizen), 201)["caseId"])
    first = wait_for(lambda: progress_of(cs, origin, citizen), "the application in 长沙's progress view")

    def submitted_notice() -> dict[str, Any] | None:
        items = ok(cs.get("/api/v1/me/inbox", params={"limit": 50}, headers=citizen))["items"]
        return next((i for i in items if i["purpose"] == "submitted"), None)

    # 长沙's catalogue does not list the item: the notice names it as 长沙's partner registry does.
    assert "失业保险金申领（株洲）" in str(wait_for(submitted_notice, "the submission notice"))
    assert first["case"]["status"] == "in_handling"
    number = first["case"]["number"]

    # 株洲 receives it as submitted; its own window accepts it.
    zz_admin = login(zz, "admin-zz", "admin")

    def arrived() -> dict[str, Any] | None:
        found = [e for e in stream(zz, zz_admin) if e["type"] == "case.received_from_partner"]
        return next((e for e in found if e["originNumber"] == number), None)

    received = wait_for(arrived, "the online application in 株洲")
    assert received["mode"] == "full_online"
    handling = received["case"]["id"]
    zz_clerk = login(zz, "clerk-zz-online", "clerk", name="株洲窗口", hall="ZZZWFW")
    # 株洲's window asks for one material again (一次性告知); the citizen answers at home in 长沙.
    issues = [{"materialId": "M02", "reason": "离职证明需加盖公章"}]
    staff(zz, zz_clerk, handling, "pre-review", {"decision": "request_materials", "issues": issues})
    owing = wait_for(
        lambda: p if (p := progress_of(cs, origin, citizen)) and p["case"]["status"] == "awaiting_correction"
        else None, "株洲's notice in 长沙",
    )  # fmt: skip
    assert "办理地一次性告知补正材料" in [line["label"] for line in owing["timeline"]]
    stamped = upload(cs, citizen, pdf("M02 离职证明（盖章）"))
    ok(cs.post(f"/api/v1/cases/{origin}/supplements", json={"materials": {"M02": stamped}}, headers=citizen))
    wait_for(
        lambda: zz.post(f"/api/v1/staff/cases/{handling}/pre-review", json={"decision": "pass"},
                        headers=zz_clerk).status_code == 200 or None,
        "the supplement in 株洲",
    )  # fmt: skip
    staff(zz, zz_clerk, handling, "acceptance", {"mode": "standard"})

    def accepted_there() -> list[str] | None:
        labels = [line["label"] for line in ok(cs.get(f"/api/v1/cases/{origin}/progress", headers=citizen))[
            "timeline"]]  # fmt: skip
        return labels if "办理地：已受理" in labels else None

    wait_for(accepted_there, "株洲's acceptance in 长沙")

    # The citizen withdraws at home: 株洲's case is withdrawn too, and nothing is left failing.
    ok(cs.post(f"/api/v1/cases/{origin}/withdrawal", json={"reason": "已在户籍地申领"}, headers=citizen))

    def withdrawn_there() -> dict[str, Any] | None:
        found = [
            e for e in stream(zz, zz_admin) if e["type"] == "case.concluded" and e["case"]["id"] == handling
        ]
        return found[-1] if found else None

    concluded = wait_for(withdrawn_there, "the withdrawal in 株洲")
    assert concluded["result"] == "withdrawn"
    cs_admin = login(cs, "admin-cs", "admin")

    def settled() -> dict[str, Any] | None:
        inbox = ok(cs.get("/api/v1/admin/federation/inbox", headers=cs_admin))
        return inbox if inbox["pending"] == 0 and inbox["failed"] == 0 else None

    wait_for(settled, "株洲's reports of the withdrawn case applied in 长沙")
    wait_for(
        lambda: (progress_of(cs, origin, citizen) or {}).get("case", {}).get("status") == "withdrawn" or None,
        "the withdrawal in 长沙's progress view",
    )
    cs.close()
    zz.close()


def take_and_approve(client: httpx.Client, region: str, number: str, department: str) -> str:
    """In a handling city: the case from 长沙 arrives; its window accepts and routes it, its officers sign."""
    admin = login(client, f"admin-{region}", "admin")

    def arrived() -> dict[str, Any] | None:
        found = [e for e in stream(client, admin) if e["type"] == "case.received_from_partner"]
        return next((e for e in found if e["originNumber"] == number), None)

    received = wait_for(arrived, f"the joint case in {region}")
    assert received["mode"] == "multi_city"
    case_id = str(received["case"]["id"])
    clerk = login(client, f"clerk-{region}", "clerk", name="窗口", hall=f"HALL{region}")
    staff(client, clerk, case_id, "pre-review", {"decision": "pass"})
    staff(client, clerk, case_id, "acceptance", {"mode": "standard"})
    staff(client, clerk, case_id, "routing")
    for n in (1, 2, 3):
        officer = login(client, f"officer-{region}-{n}", "officer", name=f"审批{n}", department=department)
        staff(client, officer, case_id, f"tasks/{department}/claim")
        staff(client, officer, case_id, f"tasks/{department}/approve", {"opinion": "同意"})
    staff(client, officer, case_id, "conclusion", {"result": "approved"})
    return case_id


def test_one_acceptance_in_changsha_is_decided_in_zhuzhou_and_xiangtan_and_concludes_with_both(
    cities: dict[str, LiveServer],
) -> None:
    cs = httpx.Client(base_url=cities[CHANGSHA].base_url, timeout=10)
    desk = Desk.open(cs, "wang-fund")
    origin = desk.submit(FUND, "tongban-fund-1", WANG)
    desk.act(origin, "pre-review", {"decision": "pass"})
    desk.act(origin, "acceptance", {"mode": "standard"})
    body = {"mode": "multi_city", "partners": [ZHUZHOU, XIANGTAN]}
    sent = staff(cs, desk.clerk, origin, "handoff", body)
    assert [p["partner"] for p in sent["parts"]] == [ZHUZHOU, XIANGTAN] and sent["status"] == "in_handling"
    number = sent["number"]

    zz = httpx.Client(base_url=cities[ZHUZHOU].base_url, timeout=10)
    xt = httpx.Client(base_url=cities[XIANGTAN].base_url, timeout=10)
    take_and_approve(zz, ZHUZHOU, number, "RSJ")

    def status() -> tuple[str, list[str]]:
        progress = ok(cs.get(f"/api/v1/cases/{origin}/progress", headers=desk.citizen))
        return progress["case"]["status"], [line["label"] for line in progress["timeline"]]

    wait_for(lambda: "多地联办：430200出证办结" in status()[1] or None, "株洲's part decided, in 长沙")
    assert status()[0] == "in_handling"  # 湘潭 has not decided its part yet
    take_and_approve(xt, XIANGTAN, number, "RSJ")
    wait_for(lambda: status()[0] == "concluded" or None, "the joint case concluded in 长沙", timeout=40)
    labels = status()[1]
    # 株洲 decided first, then 湘潭 (its steps in between); the last decision concluded the case.
    assert labels[-2:] == ["多地联办：430300出证办结", "办结：出证办结"]
    assert labels.index("多地联办：430200出证办结") < labels.index("多地联办：430300出证办结")
    assert {"多地联办：转430200办理（跨城通办）", "多地联办：转430300办理（跨城通办）"} <= set(labels)
    for client in (cs, zz, xt):
        client.close()
