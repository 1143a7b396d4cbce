"""Webhook subscriptions over real HTTP: departments register, the server delivers signed batches to
receivers on loopback through an outage, and no department sees another's subscription or events.

The receivers verify every signature with the shared secret, as a department's system
would; what they keep (each event once, by id) must be exactly what the department's
cursor pull reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dbutil import drop_schema_sync, new_schema_name
from tests.e2e.case_journey_support import (
    ZHANG,
    Cast,
    Headers,
    assert_problem,
    head_position,
    login,
    ok,
    wait_for,
)
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.e2e.test_case_journeys import accepted_case, staff_act
from tests.fakes.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

HOOKS = "/api/v1/streams/webhooks"
SCJGJ_SECRET = "scjgj-webhook-secret-0123456789abcdef"
GAJ_SECRET = "gaj-webhook-secret-0123456789abcdef-x"
ENV = {
    "CITYPASS_WEBHOOK_RETRY_MIN_SECONDS": "0.05",
    "CITYPASS_WEBHOOK_RETRY_MAX_SECONDS": "0.2",
    "CITYPASS_WEBHOOK_BATCH": "2",
    "CITYPASS_WEBHOOK_TIMEOUT_SECONDS": "2",
    "CITYPASS_WEBHOOK_PAUSE_AFTER": "1000",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    schema = new_schema_name()
    live = start_server(Path(tmp_path_factory.mktemp("webhooks")), schema, ENV)
    try:
        yield live
    finally:
        stop_server(live)
        drop_schema_sync(schema)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def officer(client: httpx.Client, department: str, *, personal: bool = False) -> Headers:
    body = {"subject": f"hook-{department.lower()}", "role": "officer", "department": department}
    response = client.post("/api/v1/auth/dev-login", json={**body, "personalData": personal})
    return {"authorization": f"Bearer {ok(response)['token']}"}


def listed(client: httpx.Client, who: Headers) -> list[dict[str, Any]]:
    response = client.get(HOOKS, headers=who)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def status(client: httpx.Client, who: Headers, subscription: str) -> dict[str, Any]:
    return ok(client.get(f"{HOOKS}/{subscription}", headers=who))


def pulled(client: httpx.Client, who: Headers, after: int, upto: int) -> list[dict[str, Any]]:
    """The caller's stream after `after` up to position `upto`, by the cursor pull."""
    events: list[dict[str, Any]] = []
    while after < upto:
        page = ok(client.get("/api/v1/streams/events", params={"after": after, "limit": 50}, headers=who))
        events += page["events"]
        if page["nextCursor"] == after:
            break
        after = page["nextCursor"]
    return [e for e in events if e["position"] <= upto]


def delivered_upto(client: httpx.Client, who: Headers, subscription: str, position: int) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        found = status(client, who, subscription)
        return found if found["cursor"] >= position and found["status"] == "active" else None

    return wait_for(reached, f"subscription {subscription} delivered up to {position}")


def test_a_department_receives_its_stream_through_an_outage_and_nobody_elses(client: httpx.Client) -> None:
    scjgj, gaj = officer(client, "SCJGJ"), officer(client, "GAJ")
    with Receiver(SCJGJ_SECRET) as scjgj_hook, Receiver(GAJ_SECRET).up() as gaj_hook:
        created = client.post(HOOKS, json={"url": scjgj_hook.url, "secret": SCJGJ_SECRET}, headers=scjgj)
        mine = ok(created, 201)
        assert SCJGJ_SECRET not in created.text and "secret" not in mine
        assert (mine["department"], mine["status"], mine["personalData"]) == ("SCJGJ", "active", False)
        assert mine["cursor"] == mine["head"] and mine["lag"] == 0  # from now on only
        start = mine["cursor"]
        theirs = ok(client.post(HOOKS, json={"url": gaj_hook.url, "secret": GAJ_SECRET}, headers=gaj), 201)

        # Another department's officer cannot see or touch it: as if it did not exist.
        path = f"{HOOKS}/{mine['id']}"
        for response in (
            client.get(path, headers=gaj),
            client.post(f"{path}/pause", headers=gaj),
            client.post(f"{path}/resume", headers=gaj),
            client.post(f"{path}/redrive", json={"after": 0}, headers=gaj),
            client.delete(path, headers=gaj),
        ):
            assert_problem(response, 404, "webhook-not-found")
        assert [s["id"] for s in listed(client, gaj)] == [theirs["id"]]
        assert [s["id"] for s in listed(client, scjgj)] == [mine["id"]]
        assert status(client, scjgj, mine["id"])["status"] == "active"  # untouched

        # A 企业开办 case reaches both departments; each signs its own 承办.
        cast = Cast.enrol(client, "citizen-webhooks")
        case_id, _ = accepted_case(client, cast, "kaiban-webhooks-1", ZHANG)
        staff_act(client, cast.clerk, case_id, "routing")
        for department in ("SCJGJ", "GAJ"):
            who = cast.officers[department, "承办"]
            staff_act(client, who, case_id, f"tasks/{department}/claim")
            staff_act(client, who, case_id, f"tasks/{department}/approve", {"opinion": "同意"})

        def refused() -> dict[str, Any] | None:
            found = status(client, scjgj, mine["id"])
            return found if found["consecutiveFailures"] >= 2 else None

        down = wait_for(refused, "deliveries refused while the receiver is down")
        assert down["lastStatus"] is None and "ConnectError" in down["lastError"]
        assert (down["deliveredEvents"], down["lastSuccessAt"]) == (0, None)
        scjgj_hook.refuse_next = 3  # then up, but answering 503 at first
        scjgj_hook.up()
        head = head_position(client)
        done = delivered_upto(client, scjgj, mine["id"], head)
        delivered_upto(client, gaj, theirs["id"], head)

    expected = pulled(client, scjgj, start, done["cursor"])
    got = [e for e in scjgj_hook.events() if e["position"] <= done["cursor"]]
    assert got == expected
    assert [e["type"] for e in got][:3] == ["case.routed", "task.claimed", "task.step_approved"]
    assert all(d.signed and d.headers_agree for d in scjgj_hook.deliveries + gaj_hook.deliveries)
    assert [d.answered for d in scjgj_hook.deliveries][:4] == [503, 503, 503, 200]
    assert done["deliveredEvents"] == len(scjgj_hook.events()) and done["consecutiveFailures"] == 0
    codes = [a["statusCode"] for a in reversed(done["attempts"])]
    assert None in codes and codes.count(503) == 3 and codes[-1] == 200

    gaj_events = [e for e in gaj_hook.events() if e["position"] <= done["cursor"]]
    assert gaj_events == pulled(client, gaj, start, done["cursor"])
    assert {e.get("department") for e in got if e["type"].startswith("task.")} == {"SCJGJ"}
    assert {e.get("department") for e in gaj_events if e["type"].startswith("task.")} == {"GAJ"}
    # The case-wide events reach both; each department's task events only its own.
    shared = {e["id"] for e in got} & {e["id"] for e in gaj_events}
    assert shared == {e["id"] for e in got if not e["type"].startswith("task.")}


def test_bad_registrations_get_a_problem_and_change_nothing(client: httpx.Client) -> None:
    who = officer(client, "SWJ")
    before = listed(client, who)
    url, secret = "http://127.0.0.1:9/hook", "s" * 32
    cases = [
        ({"url": url, "secret": "too-short"}, 400, "validation"),
        ({"url": url}, 400, "validation"),
        ({"url": url, "secret": secret, "colour": "red"}, 400, "validation"),
        ({"url": "ftp://127.0.0.1/hook", "secret": secret}, 422, "webhook-url-invalid"),
        ({"url": "https://user:pw@hooks.example.cn/", "secret": secret}, 422, "webhook-url-invalid"),
        ({"url": url, "secret": secret, "after": -1}, 400, "validation"),
        ({"url": url, "secret": secret, "after": 10**12}, 422, "webhook-cursor-invalid"),
        ({"url": url, "secret": secret, "department": "GAJ"}, 403, "forbidden"),
        ({"url": url, "secret": secret, "personalData": True}, 403, "forbidden"),
    ]
    for body, code, slug in cases:
        assert_problem(client.post(HOOKS, json=body, headers=who), code, slug)
    citizen = login(client, "citizen-hooks", "citizen")
    assert_problem(client.post(HOOKS, json={"url": url, "secret": secret}, headers=citizen), 403, "forbidden")
    assert_problem(
        client.get(f"{HOOKS}/00000000-0000-0000-0000-000000000000", headers=who), 404, "webhook-not-found"
    )
    assert listed(client, who) == before == []
    # With the right to personal data, the same request is accepted.
    entitled = officer(client, "SWJ", personal=True)
    created = ok(
        client.post(HOOKS, json={"url": url, "secret": secret, "personalData": True}, headers=entitled), 201
    )
    assert created["personalData"] is True
    assert client.delete(f"{HOOKS}/{created['id']}", headers=entitled).status_code == 204


def test_an_admin_pauses_resumes_redrives_and_deletes_a_subscription_to_every_department(
    client: httpx.Client,
) -> None:
    admin = login(client, "admin-hooks", "admin")
    secret = "admin-webhook-secret-0123456789abcdef"
    cast = Cast.enrol(client, "citizen-webhooks-admin")
    accepted_case(client, cast, "kaiban-webhooks-admin", ZHANG)  # something in every department's stream
    with Receiver(secret).up() as hook:
        body = {"url": hook.url, "secret": secret, "after": 0}
        sub = ok(client.post(HOOKS, json=body, headers=admin), 201)
        assert sub["department"] is None and sub["cursor"] == 0
        head = head_position(client)
        first = delivered_upto(client, admin, sub["id"], head)
        assert first["deliveredEvents"] == len(hook.events()) > 0

        paused = ok(client.post(f"{HOOKS}/{sub['id']}/pause", headers=admin))
        assert (paused["status"], paused["pausedReason"], paused["nextAttemptAt"]) == (
            "paused",
            "paused by admin-hooks",
            None,
        )
        moved = ok(client.post(f"{HOOKS}/{sub['id']}/redrive", json={"after": 0}, headers=admin))
        assert (moved["status"], moved["cursor"], moved["lag"]) == ("active", 0, moved["head"])
        again = delivered_upto(client, admin, sub["id"], head)
        assert again["deliveredEvents"] == 2 * first["deliveredEvents"]
        resent = [e for d in hook.accepted() for e in d.events]
        assert len(resent) == 2 * len(hook.events())  # everything twice, which dedupe by id folds

        resumed = ok(client.post(f"{HOOKS}/{sub['id']}/resume", headers=admin))
        assert resumed["status"] == "active" and resumed["consecutiveFailures"] == 0
        response = client.delete(f"{HOOKS}/{sub['id']}", headers=admin)
        assert response.status_code == 204
        assert_problem(client.get(f"{HOOKS}/{sub['id']}", headers=admin), 404, "webhook-not-found")


def test_the_webhook_routes_are_documented_under_streams(client: httpx.Client) -> None:
    doc = client.get("/schema/openapi.json").json()
    ours = {p: ops for p, ops in doc["paths"].items() if p.startswith(HOOKS)}
    assert set(ours) == {
        HOOKS,
        f"{HOOKS}/{{subscription}}",
        *(f"{HOOKS}/{{subscription}}/{action}" for action in ("pause", "resume", "redrive")),
    }
    methods = [op for ops in ours.values() for verb, op in ops.items() if verb in ("get", "post", "delete")]
    assert len(methods) == 7 and all(op["tags"] == ["streams"] for op in methods)
    created = ours[HOOKS]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    shown = doc["components"]["schemas"][created["$ref"].rsplit("/", 1)[-1]]["properties"]
    assert {"cursor", "head", "lag", "consecutiveFailures", "lastError"} <= set(shown)
    assert "secret" not in shown
