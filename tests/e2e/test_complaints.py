"""请你来找茬 over real HTTP: a citizen files, the desk routes, the wrong department is refused, the right
one answers, a dissatisfied citizen reopens it once, and a satisfied one closes it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.case_journey_support import assert_problem, login, ok, wait_for

pytestmark = pytest.mark.e2e

DEPT, OTHER = "SCJGJ", "GAJ"


def _filing(subject: str, **extra: Any) -> dict[str, Any]:
    return {
        "category": "cannot_get_done",
        "title": "营业执照变更跑了三次没办成",
        "description": "窗口说材料不全，但没有一次性告知。电话13812341234",
        "hall": "CSSMZJ",
        "contact": "138 1234 1234",
        "clientRequestId": f"complaint-{subject}",
        **extra,
    }


def _mine(client: httpx.Client, citizen: dict[str, str], complaint_id: str, state: str) -> Any:
    rows = ok(client.get("/api/v1/complaints", headers=citizen))
    return next((r for r in rows if r["complaintId"] == complaint_id and r["state"] == state), None)


def test_a_complaint_is_routed_answered_reopened_and_closed(client: httpx.Client) -> None:
    subject = f"citizen-{uuid.uuid4().hex[:8]}"
    citizen = login(client, subject, "citizen", name="张小明")
    clerk = login(client, f"clerk-{subject}", "clerk", name="周敏", hall="CSSMZJ")
    officer = login(client, f"officer-{subject}", "officer", name="王", department=DEPT)
    stranger = login(client, f"officer-other-{subject}", "officer", name="赵", department=OTHER)

    filed = ok(client.post("/api/v1/complaints", json=_filing(subject), headers=citizen), 201)
    assert filed["state"] == "submitted" and filed["number"].startswith("TS430100")
    again = ok(client.post("/api/v1/complaints", json=_filing(subject), headers=citizen), 201)
    assert again["complaintId"] == filed["complaintId"]  # a retry makes no second complaint
    complaint = filed["complaintId"]
    staff = f"/api/v1/staff/complaints/{complaint}"

    waiting = wait_for(
        lambda: next((r for r in ok(client.get("/api/v1/staff/complaints/unrouted", headers=clerk))
                      if r["complaintId"] == complaint), None),
        "the complaint on the desk",
    )  # fmt: skip
    assert "13812341234" not in waiting["description"] and "138****1234" in waiting["description"]
    routed = ok(client.post(f"{staff}/routing", json={"department": DEPT}, headers=clerk))
    assert routed["state"] == "routed" and routed["department"] == DEPT and routed["due"]

    assert_problem(client.post(f"{staff}/acceptance", headers=stranger), 403, "complaint-not-authorised")
    queue = wait_for(
        lambda: next((r for r in ok(client.get("/api/v1/staff/complaints", headers=officer))
                      if r["complaintId"] == complaint), None),
        "the complaint in the department's queue",
    )  # fmt: skip
    assert queue["light"] == "green" and queue["submitter"] == subject
    others = ok(client.get("/api/v1/staff/complaints", headers=stranger))
    assert all(r["complaintId"] != complaint for r in others)
    reply = {"reply": "已约谈窗口并整改", "resolved": True}
    assert ok(client.post(f"{staff}/answer", json=reply, headers=officer))["state"] == "answered"

    confirmation = f"/api/v1/complaints/{complaint}/confirmation"
    reopened = ok(client.post(confirmation, json={"satisfied": False, "comment": "没解决"}, headers=citizen))
    assert (reopened["state"], reopened["reopened"]) == ("reopened", 1)
    assert ok(client.post(f"{staff}/acceptance", headers=officer))["state"] == "accepted"
    again_reply = {"reply": "已开通绿色通道", "resolved": True}
    assert ok(client.post(f"{staff}/answer", json=again_reply, headers=officer))["state"] == "answered"
    closed = ok(client.post(confirmation, json={"satisfied": True}, headers=citizen))
    assert (closed["state"], closed["escalated"]) == ("closed", False)

    row = wait_for(lambda: _mine(client, citizen, complaint, "closed"), "the closed complaint in my list")
    assert row["satisfied"] is True and row["reply"] == "已开通绿色通道" and row["submitter"] == subject


def test_complaint_problems_have_stable_types(client: httpx.Client) -> None:
    subject = f"citizen-{uuid.uuid4().hex[:8]}"
    citizen = login(client, subject, "citizen")
    other = login(client, f"other-{subject}", "citizen")
    clerk = login(client, f"clerk-{subject}", "clerk", hall="CSSMZJ")
    officer = login(client, f"officer-{subject}", "officer", department=DEPT)

    assert_problem(
        client.post("/api/v1/complaints", json=_filing(subject, category="nonsense"), headers=citizen),
        400,
        "validation",
    )
    assert_problem(
        client.post("/api/v1/complaints", json=_filing(subject, title="   "), headers=citizen),
        422,
        "complaint-invalid",
    )
    assert_problem(
        client.post("/api/v1/complaints", json=_filing(subject, contact="12345"), headers=citizen),
        400,
        "validation",
    )
    assert_problem(client.post("/api/v1/complaints", json=_filing(subject), headers=clerk), 403, "forbidden")
    complaint = ok(client.post("/api/v1/complaints", json=_filing(subject), headers=citizen), 201)[
        "complaintId"
    ]
    staff = f"/api/v1/staff/complaints/{complaint}"
    confirmation = f"/api/v1/complaints/{complaint}/confirmation"

    assert_problem(
        client.post(confirmation, json={"satisfied": True}, headers=citizen), 409, "complaint-state"
    )
    assert_problem(
        client.post(f"{staff}/routing", json={"department": DEPT, "reason": "x"}, headers=clerk),
        422,
        "complaint-invalid",
    )
    assert_problem(
        client.post(
            f"/api/v1/staff/complaints/{uuid.uuid4()}/routing", json={"department": DEPT}, headers=clerk
        ),
        404,
        "complaint-not-found",
    )
    assert_problem(
        client.post(f"{staff}/routing", json={"department": DEPT}, headers=officer), 403, "forbidden"
    )
    withdrawal = f"/api/v1/complaints/{complaint}/withdrawal"
    assert_problem(
        client.post(withdrawal, json={"reason": "不是我的"}, headers=other), 403, "complaint-not-authorised"
    )
    withdrawn = ok(client.post(withdrawal, json={"reason": "已自行解决"}, headers=citizen))
    assert withdrawn["state"] == "withdrawn"
    assert_problem(
        client.post(f"{staff}/routing", json={"department": DEPT}, headers=clerk), 409, "complaint-state"
    )
