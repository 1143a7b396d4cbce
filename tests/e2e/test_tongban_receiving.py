"""收件地 of 跨城通办 over real HTTP: a partner's item filed online, accepted and handed off by the window.

株洲 (430200) is registered with a key this test holds, so the test can answer as 株洲
would: signed messages to our /federation/v1/messages, which the applier carries out
on the case. Bad hand-off requests are problems that change nothing.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest

from backend.federation.delivery import MESSAGES_PATH
from backend.federation.messages import ENCODER, Envelope
from backend.federation.signing import SigningKey
from tests.e2e.case_journey_support import (
    ZHANG,
    Headers,
    assert_problem,
    login,
    ok,
    pdf,
    staff_progress,
    upload,
    wait_for,
)

pytestmark = pytest.mark.e2e

ZHUZHOU = "430200"
ITEM = "11430200006182474N010100300000"  # 株洲's 食品经营许可, taken from us as 异地代收代办 only
ZHUZHOU_KEY = SigningKey.from_seed("zz-e2e", b"\x05" * 32)
HANDOFF_PATH = "/api/v1/staff/cases/{}/handoff"
HALL = "CSSMZJ"


def register_zhuzhou(client: httpx.Client) -> None:
    admin = login(client, "tongban-admin", "admin")
    body = {
        "name": "株洲市",
        "baseUrl": "http://127.0.0.1:9",  # nobody listens: our request waits in the outbox, retried
        "accepts": [{"itemCode": ITEM, "modes": ["remote_collect"]}],
        "publicKeys": [{"kid": ZHUZHOU_KEY.kid, "publicKey": ZHUZHOU_KEY.public_text()}],
    }
    ok(client.put(f"/api/v1/admin/partners/{ZHUZHOU}", json=body, headers=admin))
    wait_for(
        lambda: client.get(f"/api/v1/admin/partners/{ZHUZHOU}", headers=admin).status_code == 200, "registry"
    )


def from_zhuzhou(client: httpx.Client, handoff: str, seq: int, kind: str, **payload: Any) -> None:
    """A signed message from 株洲, as its relay would send it."""
    message = Envelope(
        kind=kind, handoff=uuid.UUID(handoff), seq=seq, sent_at=datetime.now(UTC),
        payload=msgspec.Raw(msgspec.json.encode(payload)),
    )  # fmt: skip
    body = ENCODER.encode(message)
    headers = ZHUZHOU_KEY.headers(ZHUZHOU, "POST", MESSAGES_PATH, body, str(uuid.uuid4()), int(time.time()))
    response = client.post(MESSAGES_PATH, content=body, headers=headers)
    assert response.status_code == 202, response.text


def labels(client: httpx.Client, staff: Headers, case_id: str) -> list[str]:
    return [step["label"] for step in staff_progress(client, staff, case_id)["timeline"]]


def test_the_window_hands_a_partner_item_off_and_follows_the_partner(client: httpx.Client) -> None:
    register_zhuzhou(client)
    citizen = login(client, "tongban-zhang", "citizen", name="张小明")
    clerk = login(client, "tongban-clerk", "clerk", name="周敏", hall=HALL)
    elsewhere = login(client, "tongban-clerk-2", "clerk", name="吴八", hall="YLQ")
    officer = login(client, "tongban-officer", "officer", name="承办人", department="SCJGJ")
    sha = upload(client, citizen, pdf("营业执照 tongban"))
    submission = {
        "itemCode": ITEM, "clientRequestId": "tongban-1", "applicant": ZHANG.as_applicant(),
        "form": {"经营场所": "株洲市天元区长江北路1号"}, "materials": {"M01": sha},
    }  # fmt: skip
    case_id = ok(client.post("/api/v1/cases", json=submission, headers=citizen), 201)["caseId"]
    accepted = ok(client.post(f"/api/v1/staff/cases/{case_id}/acceptance", json={"mode": "standard"},
                              headers=clerk))  # fmt: skip
    path = HANDOFF_PATH.format(case_id)

    # Each refused before the case is asked, or by the case: nothing is recorded.
    for body, who, status, slug in [
        ({"partner": "株洲", "mode": "remote_collect"}, clerk, 400, "validation"),
        ({"partner": ZHUZHOU, "mode": "by_pigeon"}, clerk, 400, "validation"),
        ({"mode": "remote_collect"}, clerk, 400, "validation"),
        ({"partners": [ZHUZHOU], "mode": "remote_collect"}, clerk, 400, "validation"),
        ({"partner": ZHUZHOU, "partners": [ZHUZHOU], "mode": "multi_city"}, clerk, 400, "validation"),
        ({"partners": [], "mode": "multi_city"}, clerk, 400, "validation"),
        ({"partners": [ZHUZHOU, "430300"], "mode": "multi_city"}, clerk, 422, "handoff-not-accepted"),
        ({"partner": "430300", "mode": "remote_collect"}, clerk, 422, "handoff-not-accepted"),
        ({"partner": ZHUZHOU, "mode": "full_online"}, clerk, 422, "handoff-not-accepted"),
        ({"partner": ZHUZHOU, "mode": "remote_collect"}, elsewhere, 403, "not-your-case"),
        ({"partner": ZHUZHOU, "mode": "remote_collect"}, citizen, 403, "forbidden"),
        ({"partner": ZHUZHOU, "mode": "remote_collect"}, officer, 403, "forbidden"),
    ]:
        assert_problem(client.post(path, json=body, headers=who), status, slug)
    missing = HANDOFF_PATH.format(uuid.uuid4())
    assert_problem(client.post(missing, json={"partner": ZHUZHOU, "mode": "remote_collect"}, headers=clerk),
                   404, "case-not-found")  # fmt: skip

    keyed = {**clerk, "Idempotency-Key": "handoff-1"}
    sent = ok(client.post(path, json={"partner": ZHUZHOU, "mode": "remote_collect"}, headers=keyed))
    assert sent["version"] == accepted["version"] + 1  # the refusals above recorded nothing
    assert (sent["status"], sent["partner"]) == ("in_handling", ZHUZHOU)
    assert ok(client.post(path, json={"partner": ZHUZHOU, "mode": "remote_collect"}, headers=keyed)) == sent
    assert_problem(client.post(path, json={"partner": ZHUZHOU, "mode": "remote_collect"}, headers=clerk),
                   409, "case-transition")  # fmt: skip

    # The application waits in the outbox for 株洲, once, as the handoff's first message.
    admin = login(client, "tongban-admin", "admin")

    def requested() -> list[dict[str, Any]]:
        items = ok(client.get("/api/v1/admin/federation/outbox", headers=admin))["items"]
        return [m for m in items if m["handoff"] == sent["handoff"]]

    assert [(m["kind"], m["seq"], m["partner"]) for m in wait_for(requested, "handoff.requested")] == [
        ("handoff.requested", 1, ZHUZHOU)
    ]

    # 株洲 refuses: the case is back with the window, and the applicant is told.
    from_zhuzhou(client, sent["handoff"], 1, "handoff.refused", reason="本市暂不受理该事项的异地代收")
    wait_for(
        lambda: "办理地未接收：本市暂不受理该事项的异地代收" in labels(client, clerk, case_id), "refusal"
    )

    def told() -> dict[str, Any] | None:
        page = ok(client.get("/api/v1/me/inbox", params={"limit": 100}, headers=citizen))
        return next((e for e in page["items"] if e["purpose"] == "handoff_refused"), None)

    assert "本市暂不受理该事项的异地代收" in wait_for(told, "the applicant's notice")["body"]

    # Handed off again, under a new id; this time 株洲 takes it on, reports, and decides.
    again = ok(client.post(path, json={"partner": ZHUZHOU, "mode": "remote_collect"}, headers=clerk))
    assert again["handoff"] != sent["handoff"] and again["status"] == "in_handling"
    from_zhuzhou(client, again["handoff"], 1, "handoff.accepted", caseNumber="430200202609290000031")
    step = {"step": "task.approved", "label": "株洲市市场监督管理局：批准通过"}
    from_zhuzhou(
        client, again["handoff"], 2, "status.reported", **step, occurredAt=datetime.now(UTC).isoformat()
    )
    from_zhuzhou(client, again["handoff"], 3, "decision.reported", result="approved")
    progress = wait_for(
        lambda: (p := staff_progress(client, clerk, case_id))["case"]["status"] == "concluded" and p,
        "the partner's decision",
    )
    steps = [s["label"] for s in progress["timeline"]]
    assert (
        "办理地已受理（430200202609290000031）" in steps and "办理地：株洲市市场监督管理局：批准通过" in steps
    )
    # Acted by 株洲 (the read model masks every actor's name, a city's too: 株**).
    assert {(s["actorRole"], s["channel"]) for s in progress["timeline"][-3:]} == {
        ("partner", "partner_city")
    }
