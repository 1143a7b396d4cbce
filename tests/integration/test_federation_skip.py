"""Skipping a stuck inbox message on PostgreSQL: its handoff goes on, it is never applied, and only an
unsettled message with a stated reason can be skipped; also through the admin HTTP route."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from prometheus_client import CollectorRegistry

from backend.federation import admin as admin_module
from backend.federation.admin import (
    FederationAdmin,
    InboxMessageBusyError,
    InboxMessageNotFoundError,
    InboxMessageSettledError,
    SkipReasonError,
    register_federation_admin_problems,
)
from backend.federation.applier import Applier, ApplierRules
from backend.federation.handlers import AppliedMessage, Handler
from backend.federation.inbox import Inbox
from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from miniapp_api.federation_routes import admin_federation_router
from miniapp_api.principal import Principal, Role
from miniapp_api.problems import PROBLEM_BASE, ProblemMap
from miniapp_api.schemas import HealthReport
from miniapp_api.tokens import issue_token
from tests.integration.federation_support import (
    NOTED,
    ZHUZHOU,
    Directory,
    envelope,
    eventually,
    key_of,
    now,
    signed,
)

pytestmark = pytest.mark.integration

THEIR_KEY = key_of(ZHUZHOU)
RULES = ApplierRules(retry_min_seconds=0.05, retry_max_seconds=0.2, poll_seconds=0.2)
CONFIG = ApiConfig(jwt_secret="s" * 48, token_ttl_seconds=900, dev_login=False, max_body_bytes=65536)
REASON = "株洲 withdrew the case; their 办件 was closed by phone"


@pytest.fixture
def inbox(pool: asyncpg.Pool) -> Inbox:
    directory = Directory()
    directory.add(ZHUZHOU, "http://127.0.0.1:9", THEIR_KEY)
    return Inbox(lambda: pool, directory, {NOTED}, freshness_seconds=300, clock=now)


@pytest.fixture
def admin(pool: asyncpg.Pool) -> FederationAdmin:
    return FederationAdmin(lambda: pool, clock=now)


async def deliver(inbox: Inbox, handoff: uuid.UUID, seq: int) -> uuid.UUID:
    headers, body, message_id = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, seq))
    assert await inbox.receive("POST", "/federation/v1/messages", headers, body, "127.0.0.1")
    return message_id


async def row(pool: asyncpg.Pool, message_id: uuid.UUID) -> dict[str, object]:
    found = await pool.fetchrow("SELECT * FROM federation_inbox WHERE message_id = $1", message_id)
    assert found is not None
    return dict(found)


class Stuck:
    """A handler that always raises on seq 1 and applies the rest; it notes every run."""

    def __init__(self) -> None:
        self.runs: list[int] = []
        self.applied: list[int] = []

    async def __call__(self, message: AppliedMessage) -> None:
        self.runs.append(message.seq)
        if message.seq == 1:
            raise RuntimeError("the partner's case number does not parse")
        self.applied.append(message.seq)


def applier(pool: asyncpg.Pool, db_url: str, schema: str, handler: Handler) -> Applier:
    return Applier(lambda: pool, db_url, schema, {NOTED: handler}, RULES, clock=now)


async def test_a_skipped_message_unblocks_its_handoff_and_is_never_applied(
    inbox: Inbox, admin: FederationAdmin, pool: asyncpg.Pool, db_url: str, schema: str
) -> None:
    handoff, stuck = uuid.uuid4(), Stuck()
    first = await deliver(inbox, handoff, 1)
    second = await deliver(inbox, handoff, 2)
    running = applier(pool, db_url, schema, stuck)
    running.start()
    try:

        async def retried() -> bool:
            return stuck.runs.count(1) >= 3

        await eventually(retried, "seq 1 failing again and again")
        assert stuck.applied == [] and 2 not in stuck.runs  # seq 2 waits behind it
        assert (await row(pool, second))["applied_at"] is None
        listing = await admin.inbox(None, 10)
        assert (listing.failed, listing.pending, listing.skipped, listing.applied) == (1, 1, 0, 0)

        item = await admin.skip(ZHUZHOU, first, by="admin-li", reason=f"  {REASON}\n")
        assert (item.message_id, item.seq, item.skipped_by, item.skip_reason) == (
            first,
            1,
            "admin-li",
            REASON,
        )
        assert item.skipped_at is not None and item.applied_at is None and item.next_attempt_at is None
        runs_of_first = stuck.runs.count(1)

        async def second_applied() -> bool:
            return stuck.applied == [2]

        await eventually(second_applied, "seq 2 applied once seq 1 is skipped", within=5)
        await asyncio.sleep(4 * RULES.retry_max_seconds)  # any further run of seq 1 would show now
    finally:
        await running.stop()
    assert stuck.runs.count(1) == runs_of_first  # never run again, let alone applied
    skipped = await row(pool, first)
    assert skipped["applied_at"] is None and skipped["skipped_by"] == "admin-li"
    assert skipped["error"] == "RuntimeError: the partner's case number does not parse"  # kept on show

    listing = await admin.inbox("skipped", 10)
    assert (listing.skipped, listing.failed, listing.pending, listing.applied) == (1, 0, 0, 1)
    assert [(i.message_id, i.skip_reason) for i in listing.items] == [(first, REASON)]
    assert [i.seq for i in (await admin.inbox("failed", 10)).items] == []
    assert [i.seq for i in (await admin.inbox("applied", 10)).items] == [2]

    with pytest.raises(InboxMessageSettledError, match=r"skipped .* by admin-li"):
        await admin.skip(ZHUZHOU, first, by="admin-wang", reason="again")
    assert (await row(pool, first))["skipped_by"] == "admin-li"


async def test_an_applied_message_cannot_be_skipped_and_is_left_as_it_was(
    inbox: Inbox, admin: FederationAdmin, pool: asyncpg.Pool, db_url: str, schema: str
) -> None:
    handoff, stuck = uuid.uuid4(), Stuck()
    first = await deliver(inbox, handoff, 1)
    await pool.execute(
        "UPDATE federation_inbox SET applied_at = now() WHERE message_id = $1", first
    )  # as if its handler had run
    second = await deliver(inbox, handoff, 2)
    running = applier(pool, db_url, schema, stuck)
    running.start()
    try:

        async def applied() -> bool:
            return stuck.applied == [2]

        await eventually(applied, "seq 2 applied")
    finally:
        await running.stop()
    for message_id in (first, second):
        before = await row(pool, message_id)
        with pytest.raises(InboxMessageSettledError, match="was applied at"):
            await admin.skip(ZHUZHOU, message_id, by="admin-li", reason=REASON)
        assert await row(pool, message_id) == before
    assert (await admin.inbox(None, 10)).skipped == 0


async def test_an_unknown_message_or_a_missing_reason_is_refused_and_changes_nothing(
    inbox: Inbox, admin: FederationAdmin, pool: asyncpg.Pool
) -> None:
    message_id = await deliver(inbox, uuid.uuid4(), 1)
    before = await row(pool, message_id)
    with pytest.raises(InboxMessageNotFoundError):
        await admin.skip(ZHUZHOU, uuid.uuid4(), by="admin-li", reason=REASON)
    with pytest.raises(InboxMessageNotFoundError):  # the id is known, but from another sender
        await admin.skip("430300", message_id, by="admin-li", reason=REASON)
    for reason in ("", "   \n\t", "x" * (admin_module.SKIP_REASON_MAX + 1)):
        with pytest.raises(SkipReasonError):
            await admin.skip(ZHUZHOU, message_id, by="admin-li", reason=reason)
    assert await row(pool, message_id) == before
    listing = await admin.inbox(None, 10)
    assert (listing.pending, listing.skipped) == (1, 0)


async def test_a_skip_waits_for_a_handler_under_way_and_gives_up_after_its_wait(
    inbox: Inbox, admin: FederationAdmin, pool: asyncpg.Pool, db_url: str, schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The applier holds the handoff's lock while the handler runs: a skip never overlaps a run."""
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(message: AppliedMessage) -> None:
        started.set()
        await release.wait()

    message_id = await deliver(inbox, uuid.uuid4(), 1)
    running = applier(pool, db_url, schema, slow)
    running.start()
    try:
        await asyncio.wait_for(started.wait(), 10)
        monkeypatch.setattr(admin_module, "LOCK_WAIT", "100ms")
        with pytest.raises(InboxMessageBusyError):
            await admin.skip(ZHUZHOU, message_id, by="admin-li", reason=REASON)
        monkeypatch.setattr(admin_module, "LOCK_WAIT", "10s")
        waiting = asyncio.create_task(admin.skip(ZHUZHOU, message_id, by="admin-li", reason=REASON))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # held up by the run under way
        release.set()  # the handler returns: the message is applied before the skip gets its turn
        with pytest.raises(InboxMessageSettledError, match="was applied at"):
            await waiting
    finally:
        release.set()
        await running.stop()
    found = await row(pool, message_id)
    assert found["applied_at"] is not None and found["skipped_at"] is None


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


@pytest.fixture
async def client(admin: FederationAdmin) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the test's own event loop, where its pool lives (litestar's test clients run another);
    it has no start-up hooks, so no lifespan is run."""
    app = create_app(
        CONFIG,
        health=healthy,
        registry=CollectorRegistry(),
        route_handlers=[admin_federation_router(admin)],
        problem_map=register_federation_admin_problems(ProblemMap()),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://citypass.test") as c:
        yield c


def bearer(role: Role, subject: str = "admin-li") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(CONFIG, Principal(subject=subject, role=role))}"}


async def test_an_admin_skips_through_the_api(
    client: httpx.AsyncClient, inbox: Inbox, pool: asyncpg.Pool
) -> None:
    message_id = await deliver(inbox, uuid.uuid4(), 1)
    path = f"/api/v1/admin/federation/inbox/{ZHUZHOU}/{message_id}/skip"
    body = {"reason": REASON}
    assert (await client.post(path, json=body)).status_code == 401
    assert (await client.post(path, json=body, headers=bearer(Role.OFFICER))).status_code == 403

    async def problem(response_path: str, sent: object, status: int, slug: str) -> None:
        response = await client.post(response_path, json=sent, headers=bearer(Role.ADMIN))
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"] == PROBLEM_BASE + slug

    await problem(path, {"reason": "  "}, 400, "federation-skip-reason")
    await problem(path, {}, 400, "validation")
    await problem(path.replace(str(message_id), str(uuid.uuid4())), body, 404, "federation-message-not-found")
    assert (await row(pool, message_id))["skipped_at"] is None

    done = await client.post(path, json=body, headers=bearer(Role.ADMIN, "admin-zhao"))
    assert done.status_code == 200, done.text
    item = done.json()
    assert (item["messageId"], item["skippedBy"], item["skipReason"]) == (
        str(message_id),
        "admin-zhao",
        REASON,
    )
    assert item["skippedAt"] and item["appliedAt"] is None
    await problem(path, body, 409, "federation-message-settled")

    listing = await client.get(
        "/api/v1/admin/federation/inbox", params={"state": "skipped"}, headers=bearer(Role.ADMIN)
    )
    assert listing.status_code == 200
    shown = listing.json()
    assert (shown["skipped"], shown["pending"], shown["failed"], shown["applied"]) == (1, 0, 0, 0)
    assert [(i["messageId"], i["skippedBy"]) for i in shown["items"]] == [(str(message_id), "admin-zhao")]
