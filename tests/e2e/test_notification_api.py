"""The notification API over real HTTP: my devices, grants, preferences and inbox; the outbox for admins.

Each test uses subjects of its own, so they share the module's server. Refused
requests are checked to change nothing by reading the same resource back.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from tests.dbutil import database_url
from tests.e2e.case_journey_support import (
    ZHANG,
    Headers,
    assert_problem,
    login,
    ok,
    pdf,
    submission,
    upload,
    wait_for,
)
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

ME = "/api/v1/me"
ADMIN = "/api/v1/admin/notifications"


def devices(client: httpx.Client, who: Headers) -> list[str]:
    response = client.get(f"{ME}/devices", headers=who)
    assert response.status_code == 200, response.text
    return [d["installationId"] for d in response.json()]


def test_a_device_moves_to_whoever_signs_in_on_it_and_only_its_owner_removes_it(
    client: httpx.Client,
) -> None:
    zhang, li = login(client, "dev-zhang", "citizen"), login(client, "dev-li", "citizen")
    officer = login(client, "dev-officer", "officer", department="GAJ")
    fid = "fid_dev:Abc-1"
    device = ok(client.put(f"{ME}/devices/{fid}", json={"platform": "android"}, headers=zhang))
    assert (device["installationId"], device["platform"], device["role"]) == (fid, "android", "citizen")
    assert devices(client, zhang) == [fid]

    moved = ok(client.put(f"{ME}/devices/{fid}", json={"platform": "harmony"}, headers=officer))
    assert (moved["role"], moved["department"], moved["platform"]) == ("officer", "GAJ", "harmony")
    assert devices(client, zhang) == []

    for who in (zhang, li):
        assert_problem(client.delete(f"{ME}/devices/{fid}", headers=who), 404, "device-not-found")
    for bad_id in ("bad!id", "x" * 201):
        assert_problem(
            client.put(f"{ME}/devices/{bad_id}", json={"platform": "ios"}, headers=li), 400, "validation"
        )
    assert_problem(
        client.put(f"{ME}/devices/fid-li", json={"platform": "symbian"}, headers=li), 400, "validation"
    )
    assert devices(client, li) == []
    assert devices(client, officer) == [fid]

    assert client.delete(f"{ME}/devices/{fid}", headers=officer).status_code == 204
    assert devices(client, officer) == []


def open_grants(body: dict[str, Any]) -> dict[str, int]:
    return {g["templateId"]: g["open"] for g in body["grants"] if g["open"]}


def test_each_accept_is_one_grant_and_an_unknown_template_records_nothing(client: httpx.Client) -> None:
    zhang = login(client, "grant-zhang", "citizen")
    answer = {"wx-submitted": "accept", "wx-accepted": "reject", "wx-mailed": "ban"}
    body = ok(
        client.post(f"{ME}/wechat-grants", json={"openid": "oZhang-1", "results": answer}, headers=zhang)
    )
    assert open_grants(body) == {"wx-submitted": 1}

    for refused, kind in (
        (
            {"openid": "oZhang-1", "results": {"wx-submitted": "accept", "wx-nonesuch": "accept"}},
            "wechat-template-unknown",
        ),
        ({"openid": "o/zhang", "results": {"wx-submitted": "accept"}}, "validation"),
        ({"openid": "oZhang-1", "results": {"wx-submitted": "maybe"}}, "validation"),
        ({"openid": "oZhang-1", "results": {}}, "validation"),
    ):
        assert_problem(client.post(f"{ME}/wechat-grants", json=refused, headers=zhang), 400, kind)
    listed = ok(client.get(f"{ME}/wechat-grants", headers=zhang))
    assert open_grants(listed) == {"wx-submitted": 1}
    by_template = {g["templateId"]: g["purposes"] for g in listed["grants"]}
    assert by_template["wx-accepted"] == ["accepted"]


def off(body: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["purpose"], p["channel"]) for p in body["preferences"] if not p["enabled"]}


def test_preferences_switch_channels_off_and_a_bad_change_writes_nothing(client: httpx.Client) -> None:
    zhang = login(client, "pref-zhang", "citizen")
    everything = ok(client.get(f"{ME}/notification-preferences", headers=zhang))
    assert everything["inboxAlwaysOn"] is True and off(everything) == set()
    assert ("submitted", "inbox") not in {(p["purpose"], p["channel"]) for p in everything["preferences"]}

    change = {"preferences": [{"purpose": "submitted", "channel": "sms", "enabled": False}]}
    assert off(ok(client.put(f"{ME}/notification-preferences", json=change, headers=zhang))) == {
        ("submitted", "sms")
    }

    for bad, kind in (
        ({"purpose": "submitted", "channel": "inbox", "enabled": False}, "preference-invalid"),
        ({"purpose": "new_task", "channel": "wechat", "enabled": False}, "preference-invalid"),
        ({"purpose": "nonesuch", "channel": "push", "enabled": False}, "preference-invalid"),
        ({"purpose": "mailed", "channel": "push"}, "validation"),
    ):
        body = {"preferences": [{"purpose": "mailed", "channel": "push", "enabled": False}, bad]}
        assert_problem(client.put(f"{ME}/notification-preferences", json=body, headers=zhang), 400, kind)
    assert off(ok(client.get(f"{ME}/notification-preferences", headers=zhang))) == {("submitted", "sms")}


def submit_case(client: httpx.Client, citizen: Headers, request_id: str) -> str:
    uploaded = {m: upload(client, citizen, pdf(f"{m} {request_id}")) for m in ("M01", "M02", "M03", "M04")}
    body = submission(request_id, ZHANG, uploaded)
    return str(ok(client.post("/api/v1/cases", json=body, headers=citizen), 201)["caseId"])


def test_the_inbox_shows_a_submitted_case_and_marks_only_my_own_entries_read(client: httpx.Client) -> None:
    zhang, li = login(client, "inbox-zhang", "citizen"), login(client, "inbox-li", "citizen")
    case_id = submit_case(client, zhang, "inbox-zhang-1")

    def submitted_entry() -> dict[str, Any] | None:
        page = ok(client.get(f"{ME}/inbox", params={"limit": 100}, headers=zhang))
        return next(
            (e for e in page["items"] if e["caseId"] == case_id and e["purpose"] == "submitted"), None
        )

    entry = wait_for(submitted_entry, f"case {case_id} in the inbox")  # the inbox consumer has run
    assert entry["readAt"] is None and "已收到" in entry["body"]
    unread = ok(client.get(f"{ME}/inbox", headers=zhang))["unread"]
    assert unread >= 1

    assert ok(client.post(f"{ME}/inbox/read", json={"keys": [entry["key"]]}, headers=li)) == {
        "marked": 0,
        "unread": 0,
    }
    read = ok(client.post(f"{ME}/inbox/read", json={"keys": [entry["key"]]}, headers=zhang))
    assert read == {"marked": 1, "unread": unread - 1}
    again = ok(client.post(f"{ME}/inbox/read", json={"keys": [entry["key"]]}, headers=zhang))
    assert again["marked"] == 0
    assert (now_read := submitted_entry()) is not None and now_read["readAt"] is not None

    first = ok(client.get(f"{ME}/inbox", params={"limit": 1}, headers=zhang))
    assert len(first["items"]) == 1
    if first["nextBefore"] is not None:
        rest = ok(
            client.get(f"{ME}/inbox", params={"limit": 100, "before": first["nextBefore"]}, headers=zhang)
        )
        assert first["items"][0]["key"] not in {e["key"] for e in rest["items"]}
    for params in ({"limit": 0}, {"limit": 101}, {"before": "not-a-key"}):
        assert_problem(client.get(f"{ME}/inbox", params=params, headers=zhang), 400, "validation")
    assert_problem(client.post(f"{ME}/inbox/read", json={"keys": []}, headers=zhang), 400, "validation")


def key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


_OUTBOX_ROW = (
    "INSERT INTO notification_outbox (key, purpose, recipient_kind, recipient, variables, urgent, "
    "occurred_at, state, next_attempt_at, attempts, last_error) "
    "VALUES ($1, 'mailed', 'citizen', 'outbox-nobody', '{}', false, $2, $3, $2, 3, 'no channel')"
)


def put_outbox_row(schema: str, name: str, state: str) -> str:
    """An outbox row in a state the dispatcher leaves alone from now on (dead or delivered)."""
    k, now = key(name), datetime.now(UTC)

    async def go() -> None:
        conn = await asyncpg.connect(database_url(), server_settings={"search_path": schema})
        try:
            await conn.execute(_OUTBOX_ROW, k, now, state)
        finally:
            await conn.close()

    asyncio.run(go())
    return k


def test_admins_read_the_outbox_and_redrive_only_the_dead(
    live_server: LiveServer, client: httpx.Client
) -> None:
    admin = login(client, "outbox-admin", "admin")
    citizen = login(client, "outbox-zhang", "citizen")
    for method, path in (
        ("GET", ADMIN),
        ("GET", f"{ADMIN}/summary"),
        ("POST", f"{ADMIN}/{key('x')}/redrive"),
    ):
        assert_problem(client.request(method, path, headers=citizen), 403, "forbidden")
    assert_problem(
        client.post(f"{ADMIN}/redrive", json={"keys": [key("x")]}, headers=citizen), 403, "forbidden"
    )

    case_id = submit_case(client, citizen, "outbox-zhang-1")

    def submitted_row() -> dict[str, Any] | None:
        items = ok(client.get(ADMIN, params={"limit": 100}, headers=admin))["items"]
        return next((r for r in items if r["caseId"] == case_id and r["purpose"] == "submitted"), None)

    row = wait_for(submitted_row, f"case {case_id} in the outbox")  # the policy consumer has run
    assert row["recipient"] == "outbox-zhang" and "variables" not in row
    history = ok(client.get(f"{ADMIN}/{row['key']}", headers=admin))
    assert history["notification"]["key"] == row["key"]
    assert history["variables"]["case_number"] and isinstance(history["attempts"], list)

    dead = put_outbox_row(live_server.schema, "outbox-dead", "dead")
    delivered = put_outbox_row(live_server.schema, "outbox-delivered", "delivered")
    summary = ok(client.get(f"{ADMIN}/summary", headers=admin))
    assert summary["dead"] >= 1 and summary["delivered"] >= 1
    assert dead in {r["key"] for r in ok(client.get(ADMIN, params={"state": "dead"}, headers=admin))["items"]}

    assert_problem(client.post(f"{ADMIN}/{delivered}/redrive", headers=admin), 409, "notification-not-dead")
    assert_problem(
        client.post(f"{ADMIN}/{key('nonesuch')}/redrive", headers=admin), 404, "notification-not-found"
    )
    assert_problem(client.get(f"{ADMIN}/{key('nonesuch')}", headers=admin), 404, "notification-not-found")
    assert_problem(client.get(ADMIN, params={"state": "lost"}, headers=admin), 400, "validation")
    assert_problem(
        client.post(f"{ADMIN}/redrive", json={"keys": ["short"]}, headers=admin), 400, "validation"
    )
    assert ok(client.get(f"{ADMIN}/{delivered}", headers=admin))["notification"]["state"] == "delivered"

    redriven = ok(client.post(f"{ADMIN}/{dead}/redrive", headers=admin))
    assert (redriven["state"], redriven["attempts"], redriven["lastError"]) == ("pending", 3, "no channel")
    assert ok(client.post(f"{ADMIN}/redrive", json={"keys": [delivered]}, headers=admin)) == {"redriven": 0}
    again = put_outbox_row(live_server.schema, "outbox-dead-2", "dead")
    assert ok(client.post(f"{ADMIN}/redrive", json={"keys": [again, delivered]}, headers=admin)) == {
        "redriven": 1
    }
