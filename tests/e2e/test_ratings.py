"""好差评 over real HTTP: a 秒批 case is invited through the log, a 差评 becomes a ticket, then a callback,
then rectification; the citizen judges the callback, and the public metrics move."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.case_journey_support import ZHANG, assert_problem, login, ok, pdf, upload, wait_for

pytestmark = pytest.mark.e2e

CROSS_PROVINCE = "11430100MB1D48251H200500200000"  # 跨省异地就医备案: 秒批 when complete
UNIT = "YBJ"  # 医保局, the item's department


def _to_rate(client: httpx.Client, citizen: dict[str, str], case_id: str) -> dict[str, Any] | None:
    occasions = ok(client.get("/api/v1/me/ratings", headers=citizen))
    return next((o for o in occasions if o["caseId"] == case_id and o["state"] == "to_rate"), None)


def test_a_bad_rating_is_called_back_rectified_judged_and_counted(client: httpx.Client) -> None:
    subject = f"citizen-{uuid.uuid4().hex[:8]}"
    citizen = login(client, subject, "citizen", name="张小明")
    files = {m: upload(client, citizen, pdf(f"{m} {subject}")) for m in ("M01", "M02")}
    body = {
        "itemCode": CROSS_PROVINCE, "clientRequestId": f"rate-{subject}", "applicant": ZHANG.as_applicant(),
        "form": {}, "materials": files,
    }  # fmt: skip
    case_id = ok(client.post("/api/v1/cases", json=body, headers=citizen), 201)["caseId"]
    before = ok(client.get("/api/v1/ratings/metrics"))
    occasion = wait_for(lambda: _to_rate(client, citizen, case_id), "the rating invitation after 秒批")
    assert occasion["channel"] == "online" and occasion["levelLabel"] is None

    stranger = login(client, "citizen-someone-else", "citizen")
    rating_path = f"/api/v1/ratings/{occasion['ratingId']}"
    assert_problem(client.post(rating_path, json={"level": 5}, headers=stranger), 403, "not-the-applicant")
    assert_problem(client.post(rating_path, json={"level": 1}, headers=citizen), 422, "rating-invalid")
    rated = ok(
        client.post(rating_path, json={"level": 1, "comment": "电话13812341234没人接"}, headers=citizen)
    )
    assert rated["level"] == 1 and rated["ticketId"] is not None
    assert_problem(client.post(rating_path, json={"level": 5}, headers=citizen), 409, "already-rated")

    officer = login(client, f"officer-{UNIT.lower()}-x", "officer", department=UNIT)
    ticket = wait_for(
        lambda: next((t for t in ok(client.get("/api/v1/staff/rating-tickets", headers=officer))
                      if t["ticketId"] == rated["ticketId"]), None),
        "the ticket in the unit's list",
    )  # fmt: skip
    assert "13812341234" not in ticket["comment"] and "138****1234" in ticket["comment"]
    assert "applicant" not in ticket and subject not in str(ticket)  # staff never see who rated
    other_unit = login(client, "officer-gaj-x", "officer", department="GAJ")
    staff = f"/api/v1/staff/rating-tickets/{rated['ticketId']}"
    assert_problem(
        client.post(f"{staff}/callbacks", json={"method": "phone", "reached": True}, headers=other_unit),
        403,
        "forbidden",
    )
    assert_problem(
        client.post(f"{staff}/resolution", json={"outcome": "rectified", "note": "x"}, headers=officer),
        409,
        "rating-ticket-state",
    )
    ok(
        client.post(
            f"{staff}/callbacks", json={"method": "phone", "reached": True, "note": "已致歉"}, headers=officer
        )
    )
    resolved = ok(
        client.post(
            f"{staff}/resolution", json={"outcome": "rectified", "note": "已开通专线"}, headers=officer
        )
    )
    assert (resolved["state"], resolved["stateLabel"]) == ("rectified", "已整改")
    mine = wait_for(
        lambda: next((t for t in ok(client.get("/api/v1/me/rating-tickets", headers=citizen))
                      if t["ticketId"] == rated["ticketId"] and t["state"] == "rectified"), None),
        "the citizen's ticket shown rectified",
    )  # fmt: skip
    assert (mine["stateLabel"], mine["resolution"], mine["callbackSatisfied"]) == (
        "已整改",
        "已开通专线",
        None,
    )
    judged = f"/api/v1/rating-tickets/{rated['ticketId']}/callback-rating"
    ok(client.post(judged, json={"satisfied": True}, headers=citizen))

    def counted() -> dict[str, Any] | None:
        now = ok(client.get("/api/v1/ratings/metrics"))
        return now if now["callbacksSatisfied"] == before["callbacksSatisfied"] + 1 else None

    after = wait_for(counted, "the metrics counting the callback")
    assert after["badRatings"] == before["badRatings"] + 1
    assert after["ticketsResolved"] == before["ticketsResolved"] + 1

    # The citizen heard of the ticket and of its outcome, in the inbox (and through the outbox).
    def told() -> list[str] | None:
        purposes = [e["purpose"] for e in ok(client.get("/api/v1/me/inbox", headers=citizen))["items"]]
        return purposes if "rating_outcome" in purposes else None

    purposes = wait_for(told, "the outcome in the inbox")
    assert "bad_rating_follow_up" in purposes
    outcome = next(
        e
        for e in ok(client.get("/api/v1/me/inbox", headers=citizen))["items"]
        if e["purpose"] == "rating_outcome"
    )
    assert "已整改" in outcome["body"] and "医疗保障局" in outcome["body"]
    board = ok(client.get("/api/v1/ratings/board", params={"by": "department"}))
    assert any(row["key"] == UNIT and row["levels"][0] >= 1 for row in board)
    assert client.get("/api/v1/ratings/board", params={"by": "clerk"}).status_code == 400  # internal only

    # Only an auditor learns who rated, with a reason, and the disclosure is itself an event.
    disclosure = f"/api/v1/audit/ratings/{occasion['ratingId']}/disclosure"
    for staff_member in (officer, login(client, "hcp-admin", "supervisor")):
        assert_problem(
            client.post(disclosure, json={"reasons": "想知道"}, headers=staff_member), 403, "forbidden"
        )
    auditor = login(client, "auditor-1", "auditor")
    head = ok(client.get("/health"))["headPosition"]
    told = ok(client.post(disclosure, json={"reasons": "电子监察抽查"}, headers=auditor))
    assert (told["applicant"], told["level"]) == (subject, 1)
    assert ok(client.get("/health"))["headPosition"] > head
