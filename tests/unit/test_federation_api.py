"""The federation routes over fake ports: raw bytes in, refusals out as problems, views for admins only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from backend.federation.admin import InboxSummary, OutboxItem, OutboxSummary
from backend.federation.refusals import (
    REFUSALS,
    FederationRefusal,
    Refused,
    register_federation_problems,
)
from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from miniapp_api.federation_routes import admin_federation_router, federation_messages_router
from miniapp_api.principal import Principal, Role
from miniapp_api.problems import PROBLEM_BASE, ProblemMap
from miniapp_api.schemas import HealthReport
from miniapp_api.tokens import issue_token

pytestmark = pytest.mark.unit

CONFIG = ApiConfig(jwt_secret="f" * 48, token_ttl_seconds=900, dev_login=False, max_body_bytes=65536)
AT = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
MESSAGE = uuid.UUID("7d4f0d8e-2b1c-4c7a-9d52-0f0e6a4c1b11")


class FakeInbox:
    """Takes each new body once; raises the refusal it is told to."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes, str | None]] = []
        self.refusal: FederationRefusal | None = None

    async def receive(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, remote: str | None
    ) -> bool:
        if self.refusal is not None:
            raise self.refusal
        new = all(body != seen[3] for seen in self.seen)
        self.seen.append((method, path, dict(headers), body, remote))
        return new


class FakeAdmin:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None, int]] = []

    async def refusals(self, limit: int) -> list[Refused]:
        self.asked.append(("refusals", None, limit))
        return [Refused(AT, "430900", MESSAGE, "partner-unknown", "430900 is not a partner", "10.1.2.3")]

    async def outbox(self, state: str | None, limit: int) -> OutboxSummary:
        self.asked.append(("outbox", state, limit))
        item = OutboxItem(MESSAGE, "430200", MESSAGE, 1, "dev.noted", AT, None, 2, 2, AT, "HTTP 503", 503)
        return OutboxSummary(pending=1, delivered=0, oldest_pending_at=AT, items=[item])

    async def inbox(self, state: str | None, limit: int) -> InboxSummary:
        self.asked.append(("inbox", state, limit))
        return InboxSummary(pending=0, applied=3, failed=0, skipped=1, items=[])


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


@pytest.fixture
def inbox() -> FakeInbox:
    return FakeInbox()


@pytest.fixture
def admin() -> FakeAdmin:
    return FakeAdmin()


@pytest.fixture
def client(inbox: FakeInbox, admin: FakeAdmin) -> Iterator[TestClient[Litestar]]:
    app = create_app(
        CONFIG,
        health=healthy,
        registry=CollectorRegistry(),
        route_handlers=[federation_messages_router(inbox), admin_federation_router(admin)],
        problem_map=register_federation_problems(ProblemMap()),
    )
    with TestClient(app) as c:
        yield c


def bearer(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(CONFIG, Principal(subject='u-1', role=role))}"}


def test_a_message_needs_no_token_and_reaches_the_port_byte_for_byte(client, inbox) -> None:
    body = b'{"kind":"dev.noted",  "seq":1}'  # odd spacing: the signature covers these exact bytes
    headers = {"Citypass-Region": "430200", "Content-Type": "application/json"}
    first = client.post("/federation/v1/messages", content=body, headers=headers)
    assert (first.status_code, first.json()) == (202, {"status": "accepted"})
    again = client.post("/federation/v1/messages", content=body, headers=headers)
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    method, path, seen_headers, seen_body, remote = inbox.seen[0]
    assert (method, path, seen_body) == ("POST", "/federation/v1/messages", body)
    assert seen_headers["citypass-region"] == "430200" and remote


@pytest.mark.parametrize("refusal", REFUSALS)
def test_each_refusal_answers_its_problem(client, inbox, refusal: type[FederationRefusal]) -> None:
    inbox.refusal = refusal("the reason, in words")
    response = client.post("/federation/v1/messages", content=b"{}")
    assert response.status_code == refusal.status
    problem = response.json()
    assert problem["type"] == PROBLEM_BASE + f"federation-{refusal.kind}"
    assert problem["detail"] == "the reason, in words"


def test_the_views_are_for_admins_only(client, admin) -> None:
    for path in ("refusals", "outbox", "inbox"):
        assert client.get(f"/api/v1/admin/federation/{path}").status_code == 401
        assert client.get(f"/api/v1/admin/federation/{path}", headers=bearer(Role.OFFICER)).status_code == 403
    assert admin.asked == []


def test_admins_see_refusals_and_both_queues(client, admin) -> None:
    who = bearer(Role.ADMIN)
    refusals = client.get("/api/v1/admin/federation/refusals", params={"limit": 5}, headers=who).json()
    assert refusals == [
        {
            "at": "2026-03-02T01:30:00Z",
            "region": "430900",
            "messageId": str(MESSAGE),
            "kind": "partner-unknown",
            "detail": "430900 is not a partner",
            "remote": "10.1.2.3",
        }
    ]
    outbox = client.get("/api/v1/admin/federation/outbox", params={"state": "pending"}, headers=who).json()
    assert (outbox["pending"], outbox["items"][0]["lastStatus"], outbox["items"][0]["lastError"]) == (
        1,
        503,
        "HTTP 503",
    )
    inbox = client.get("/api/v1/admin/federation/inbox", params={"state": "applied"}, headers=who).json()
    assert inbox == {"pending": 0, "applied": 3, "failed": 0, "skipped": 1, "items": []}
    assert admin.asked == [("refusals", None, 5), ("outbox", "pending", 50), ("inbox", "applied", 50)]
    bad = client.get("/api/v1/admin/federation/inbox", params={"state": "lost"}, headers=who)
    assert bad.status_code == 400
    assert (
        client.get("/api/v1/admin/federation/refusals", params={"limit": 0}, headers=who).status_code == 400
    )
