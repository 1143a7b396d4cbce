"""电子监察 over real HTTP: an auditor reads a case's unmasked history and past states, others are refused;
an export downloads, passes the offline verifier (`citypass audit verify-export`), and fails it once
altered; an event edited in SQL is named by the chain verification; every access is an event."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from domain.case.checks import BEIJING
from tests.dbutil import ROOT, database_url
from tests.e2e.case_journey_support import (
    ZHANG,
    Headers,
    assert_problem,
    login,
    ok,
    pdf,
    submission,
    upload,
    wait_for_version,
)
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

CITYPASS = Path(sys.executable).parent / "citypass"
ACCESS_TOPIC = "domain.audit.access:AuditAccess.Recorded"


def _submitted_case(client: httpx.Client) -> tuple[dict[str, Any], Headers, Headers]:
    """A 企业开办 case submitted by a citizen and passed pre-review at a window: two events, no timers."""
    subject = f"citizen-{uuid.uuid4().hex[:8]}"
    citizen = login(client, subject, "citizen", name="张小明")
    clerk = login(client, f"clerk-of-{subject}", "clerk", name="周敏", hall="CSSMZJ")
    files = {m: upload(client, citizen, pdf(f"{m} {subject}")) for m in ("M01", "M02", "M03", "M04")}
    case = ok(
        client.post("/api/v1/cases", json=submission(f"audit-{subject}", ZHANG, files), headers=citizen), 201
    )
    path = f"/api/v1/staff/cases/{case['caseId']}/pre-review"
    ok(client.post(path, json={"decision": "pass"}, headers=clerk))
    wait_for_version(client, clerk, case["caseId"], 2)  # the case index now knows its number
    return case, citizen, clerk


def _db(server: LiveServer, sql: str, *args: object) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(database_url(), server_settings={"search_path": server.schema})
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def _verify_export(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CITYPASS), "audit", "verify-export", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_an_auditor_reads_the_unmasked_history_and_past_states(
    client: httpx.Client, live_server: LiveServer
) -> None:
    case, citizen, clerk = _submitted_case(client)
    number, case_id = case["number"], case["caseId"]
    auditor = login(client, "auditor-e2e", "auditor", name="审计员甲")

    def read(path: str, who: Headers = auditor, **params: Any) -> httpx.Response:
        return client.get(f"/api/v1/audit/cases/{path}", params=params, headers=who)

    history = ok(read(f"{number}/history", reason="电子监察抽查"))
    assert (history["caseId"], history["number"], history["headVersion"]) == (case_id, number, 2)
    assert history["intact"]
    submitted, passed = history["entries"]
    assert [submitted["type"], passed["type"]] == ["case.submitted", "case.pre_review_passed"]
    assert submitted["topic"] == "domain.case.aggregate:Case.Submitted" and submitted["label"] == "提交申请"
    assert submitted["what"]["applicant"]["identity"] == ZHANG.id_number  # unmasked, for auditors only
    assert submitted["what"]["applicant"]["phone"] == ZHANG.phone
    assert submitted["actor"]["role"] == "citizen" and submitted["channel"] == "miniapp"
    assert passed["actor"] == {
        "id": passed["actor"]["id"], "role": "clerk", "name": "周敏", "department": None, "hall": "CSSMZJ"
    }  # fmt: skip
    assert submitted["previousHash"] == "" and passed["previousHash"] == submitted["hash"]
    assert passed["position"] > submitted["position"] and submitted["occurredAt"] <= passed["occurredAt"]
    assert {"recordedAt", "intact", "unreadable"} <= set(passed)
    assert ok(read(f"{case_id}/history", reason="按编号复核"))["entries"] == history["entries"]

    # Nobody else reads it, and an auditor says why.
    for other in (citizen, clerk, login(client, "officer-scjgj-e2e", "officer", department="SCJGJ")):
        assert_problem(read(f"{number}/history", other, reason="好奇"), 403, "forbidden")
    assert_problem(read(f"{number}/history"), 400, "validation")
    assert_problem(read(f"{number}/history", reason="x"), 400, "validation")
    assert_problem(read(f"{number}/history", reason="   "), 400, "audit-reason-required")
    assert_problem(read("430100209901010000001/history", reason="抽查"), 404, "case-not-found")

    first = ok(read(f"{number}/state", reason="还原", version=1))
    assert (first["version"], first["headVersion"], first["status"]) == (1, 2, "submitted")
    assert first["statusLabel"] == "已提交" and first["at"] == submitted["occurredAt"]
    assert first["state"]["applicant"]["identity"] == ZHANG.id_number
    now = datetime.now(BEIJING)
    later = ok(read(f"{number}/state", reason="还原", at=now.isoformat()))
    assert (later["version"], later["status"]) == (2, "pre_review_passed")
    assert_problem(read(f"{number}/state", reason="还原", version=3), 404, "case-version-not-found")
    before = (now - timedelta(days=1)).isoformat()
    assert_problem(read(f"{number}/state", reason="还原", at=before), 422, "before-submission")
    assert_problem(read(f"{number}/state", reason="还原", at=before, version=1), 400, "validation")

    verdict = ok(read(f"{number}/verification", reason="校验"))
    assert verdict["ok"] and verdict["eventsChecked"] == 2
    assert verdict["head"] == {"version": 2, "hash": passed["hash"]}

    # Every answer above was recorded first; the refusals were not.
    sql = "SELECT state FROM stored_events WHERE topic = $1 ORDER BY notification_id"
    states = [r["state"] for r in _db(live_server, sql, ACCESS_TOPIC)]
    recorded = [json.loads(s)["reason"] for s in states if case_id.encode() in s]
    assert recorded == ["电子监察抽查", "按编号复核", "还原", "还原", "校验"]


def test_an_export_verifies_offline_and_an_altered_copy_does_not(
    client: httpx.Client, live_server: LiveServer, tmp_path: Path
) -> None:
    case, _, _ = _submitted_case(client)
    auditor = login(client, "auditor-e2e", "auditor", name="审计员甲")
    response = client.get(
        "/api/v1/audit/export", params={"case": case["number"], "reason": "移送纪检"}, headers=auditor
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert f'filename="citypass-audit-{case["number"]}.jsonl"' in response.headers["content-disposition"]
    exported = tmp_path / "case.jsonl"
    exported.write_bytes(response.content)
    header, *events, trailer = (json.loads(line) for line in response.content.splitlines())
    assert header["exported_by"]["id"] == "auditor-e2e" and header["reason"] == "移送纪检"
    assert [e["version"] for e in events] == [1, 2] and trailer == {
        "kind": "trailer",
        "events": 2,
        "cases": 1,
    }
    assert events[0]["fields"]["applicant"]["identity"] == ZHANG.id_number

    checked = _verify_export(exported)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK: 2 events in 1 cases")

    # The stored bytes of the pre-review, one space longer: line 3 is named.
    lines = response.content.splitlines()
    line = json.loads(lines[2])
    line["state"] = base64.b64encode(base64.b64decode(line["state"]) + b" ").decode()
    altered = tmp_path / "altered.jsonl"
    altered.write_bytes(b"\n".join([*lines[:2], json.dumps(line).encode(), *lines[3:]]) + b"\n")
    caught = _verify_export(altered)
    assert caught.returncode == 1
    assert f"ALTERED: line 3 (case {case['number']}, version 2): hash does not match" in caught.stderr
    dropped = tmp_path / "dropped.jsonl"
    dropped.write_bytes(b"\n".join([lines[0], *lines[2:]]) + b"\n")
    assert _verify_export(dropped).returncode == 1
    assert _verify_export(tmp_path / "nothing-here.jsonl").returncode == 2

    today = datetime.now(BEIJING).date().isoformat()
    day = client.get(
        "/api/v1/audit/export", params={"from": today, "to": today, "reason": "当日全部办件"}, headers=auditor
    )
    assert day.status_code == 200 and case["caseId"].encode() in day.content
    (tmp_path / "day.jsonl").write_bytes(day.content)
    assert _verify_export(tmp_path / "day.jsonl").returncode == 0
    both = {"case": case["number"], "from": today, "to": today, "reason": "抽查"}
    assert_problem(client.get("/api/v1/audit/export", params=both, headers=auditor), 400, "validation")
    assert_problem(
        client.get("/api/v1/audit/export", params={"reason": "抽查"}, headers=auditor), 400, "validation"
    )
    clerk = login(client, "clerk-e2e", "clerk", hall="CSSMZJ")
    one = {"case": case["number"], "reason": "抽查"}
    assert_problem(client.get("/api/v1/audit/export", params=one, headers=clerk), 403, "forbidden")


def test_an_event_edited_in_sql_is_named_by_the_verification(
    client: httpx.Client, live_server: LiveServer
) -> None:
    case, _, _ = _submitted_case(client)
    auditor = login(client, "auditor-e2e", "auditor", name="审计员甲")
    params = {"reason": "篡改核查"}
    whole = ok(client.get("/api/v1/audit/verification", params=params, headers=auditor))
    assert whole["ok"] and whole["firstBroken"] is None and whole["scope"] == "store"

    (row,) = _db(
        live_server,
        "UPDATE stored_events SET state = state || ' '::bytea "
        "WHERE originator_id = $1 AND originator_version = 2 RETURNING notification_id",
        uuid.UUID(case["caseId"]),
    )
    verdict = ok(
        client.get(f"/api/v1/audit/cases/{case['number']}/verification", params=params, headers=auditor)
    )
    assert not verdict["ok"]
    assert verdict["firstBroken"] == {
        "position": row["notification_id"], "aggregateId": case["caseId"], "caseId": case["caseId"],
        "caseNumber": case["number"], "version": 2, "type": "case.pre_review_passed",
        "reason": "hash does not match topic, state and the previous hash",
    }  # fmt: skip
    whole = ok(client.get("/api/v1/audit/verification", params=params, headers=auditor))
    assert not whole["ok"] and whole["firstBroken"]["position"] == row["notification_id"]
    history = ok(client.get(f"/api/v1/audit/cases/{case['number']}/history", params=params, headers=auditor))
    assert [e["intact"] for e in history["entries"]] == [True, False]
