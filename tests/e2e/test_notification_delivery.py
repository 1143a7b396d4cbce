"""Notifications delivered end to end, by real processes, to fake providers on loopback.

The server runs as in production: `citypass serve --no-consumers` for HTTP and one
`citypass worker` for the consumers and the dispatcher, every channel pointed at the
fakes by the environment. A citizen's case is heard of by WeChat, push or SMS as their
grants, devices and preferences allow; a worker killed mid-run leaves nothing
undelivered, and only what it had sent without recording reaches anyone twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifications.intents import Purpose
from notifications.templates import TEMPLATES
from tests.dbutil import drop_schema_sync, new_schema_name
from tests.e2e.case_journey_support import (
    HALL,
    ZHANG,
    Headers,
    Person,
    login,
    ok,
    pdf,
    resident_id,
    submission,
    upload,
    wait_for,
)
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.e2e.notify_support import (
    SEND_TIMEOUT_SECONDS,
    Pending,
    Providers,
    SchemaDb,
    Worker,
    attempt_details,
    claimed_keys,
    fake_providers,
    launch_worker,
    outcomes,
    page_key,
    pending_count,
    seed_outbox,
    wait_until_running,
)

pytestmark = pytest.mark.e2e

ME = "/api/v1/me"
ADMIN = "/api/v1/admin/notifications"
MATERIALS = ("M01", "M02", "M03", "M04")
WANG = Person("王五", resident_id(789), "13700005678", "湖南省长沙市开福区湘江中路3号")

# The dispatcher's rules for these tests. A row's lease is renewed every third of it until the row
# is recorded, so a lease shorter than a slow send still keeps the row from the worker's other
# lanes; a killed worker's rows come free one lease after its last renewal.
LEASE_SECONDS = 3
DELIVERY_RULES = {
    "CITYPASS_NOTIFY_POLL_SECONDS": "0.05",
    "CITYPASS_NOTIFY_QUIET_HOURS": "off",
    "CITYPASS_NOTIFY_BACKOFF_SECONDS": "0.05",
    "CITYPASS_NOTIFY_BACKOFF_MAX_SECONDS": "0.5",
    "CITYPASS_NOTIFY_SETTLE_SECONDS": "0",  # the fakes list a send at once
    "CITYPASS_NOTIFY_LEASE_SECONDS": str(LEASE_SECONDS),
    "CITYPASS_NOTIFY_LANES": "4",
    "CITYPASS_NOTIFY_BATCH": "40",
    "CITYPASS_NOTIFY_SMS_LIMITS": "off",  # a few numbers take every SMS of the kill test
    "CITYPASS_NOTIFY_SEND_TIMEOUT_SECONDS": str(SEND_TIMEOUT_SECONDS),
}


@dataclass
class Deployment:
    providers: Providers
    server: LiveServer
    worker: Worker
    db: SchemaDb
    tmp: Path
    env: dict[str, str]

    def replace_with_dispatcher(self) -> Worker:
        """A `citypass dispatcher` in the dead worker's place: the outbox needs nothing else to drain."""
        dispatcher = launch_worker(self.tmp, self.server.schema, self.env, "dispatcher")
        self.worker = wait_until_running(dispatcher)
        return self.worker


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("delivery")
    schema = new_schema_name()
    with fake_providers() as providers, ExitStack() as cleanup:
        cleanup.callback(drop_schema_sync, schema)
        env = {**providers.env, **DELIVERY_RULES}
        first = launch_worker(tmp, schema, env)  # starts beside the server: migrations take a lock
        cleanup.callback(first.stop)
        server = start_server(tmp, schema, env, args=["--no-consumers"])
        cleanup.callback(stop_server, server)
        db = SchemaDb(schema)
        cleanup.callback(db.close)
        deployed = Deployment(providers, server, wait_until_running(first), db, tmp, env)
        cleanup.callback(lambda: deployed.worker.stop())  # whichever worker runs by then
        yield deployed


@pytest.fixture
def client(deployment: Deployment) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployment.server.base_url, timeout=10) as c:
        yield c


def submit(client: httpx.Client, citizen: Headers, request_id: str, person: Person, uploaded: Any) -> str:
    body = submission(request_id, person, uploaded)
    return str(ok(client.post("/api/v1/cases", json=body, headers=citizen), 201)["caseId"])


def accept(client: httpx.Client, clerk: Headers, case_id: str) -> None:
    for action, body in (("pre-review", {"decision": "pass"}), ("acceptance", {"mode": "standard"})):
        ok(client.post(f"/api/v1/staff/cases/{case_id}/{action}", json=body, headers=clerk))


def inbox(client: httpx.Client, citizen: Headers, case_id: str) -> dict[str, str]:
    """The case's entries in the citizen's inbox: purpose -> key."""
    items = ok(client.get(f"{ME}/inbox", params={"limit": 100}, headers=citizen))["items"]
    return {e["purpose"]: e["key"] for e in items if e["caseId"] == case_id}


def settled(client: httpx.Client, admin: Headers, citizen: Headers, case_id: str, purpose: str) -> Any:
    """The notification's history, as an admin reads it, once it is no longer pending."""
    key = wait_for(
        lambda: inbox(client, citizen, case_id).get(purpose), f"{purpose} of {case_id} in my inbox"
    )

    def history() -> Any:
        response = client.get(f"{ADMIN}/{key}", headers=admin)
        if response.status_code == 404:
            return None  # the outbox consumer has not written it yet
        found = ok(response)
        return found if found["notification"]["state"] != "pending" else None

    return wait_for(history, f"{purpose} of {case_id} delivered")


def ended(history: Any) -> tuple[str, str, list[tuple[str, str, str]]]:
    """State, channel and every attempt (channel, provider, outcome) of a notification's history."""
    tried = [(a["channel"], a["provider"], a["outcome"]) for a in history["attempts"]]
    return history["notification"]["state"], history["notification"]["channel"], tried


def test_a_citizen_hears_by_wechat_grant_then_push_then_sms_when_push_is_muted(
    deployment: Deployment, client: httpx.Client
) -> None:
    fakes = deployment.providers
    run = uuid.uuid4().hex[:8]
    citizen = login(client, f"deliver-{run}", "citizen", name="张小明")
    clerk = login(client, f"clerk-{run}", "clerk", name="周敏", hall=HALL)
    admin = login(client, f"admin-{run}", "admin")
    fid, openid = f"fid-{run}", f"o{run}"
    ok(client.put(f"{ME}/devices/{fid}", json={"platform": "android"}, headers=citizen))
    wx_submitted = TEMPLATES[Purpose.SUBMITTED, "wechat"].template_id
    grant = {"openid": openid, "results": {wx_submitted: "accept"}}
    ok(client.post(f"{ME}/wechat-grants", json=grant, headers=citizen))
    uploaded = {m: upload(client, citizen, pdf(f"{m} {run}")) for m in MATERIALS}

    first = submit(client, citizen, f"{run}-1", ZHANG, uploaded)
    submitted = settled(client, admin, citizen, first, "submitted")
    key = submitted["notification"]["key"]
    assert ended(submitted) == ("delivered", "wechat", [("wechat", "wechat", "done")])
    to_openid = [(page_key(m), m["template_id"]) for m in fakes.wechat.delivered if m.get("touser") == openid]
    assert to_openid == [(key, wx_submitted)]
    assert fakes.received_per_key()[key] == 1  # by WeChat alone
    grants = ok(client.get(f"{ME}/wechat-grants", headers=citizen))["grants"]
    assert [g["open"] for g in grants if g["templateId"] == wx_submitted] == [0]  # the grant is spent

    accept(client, clerk, first)
    accepted = settled(client, admin, citizen, first, "accepted")
    key = accepted["notification"]["key"]
    assert ended(accepted) == ("delivered", "push", [("push", "fcm", "done")])
    assert [m["fid"] for m in fakes.fcm.delivered if m["data"]["key"] == key] == [fid]
    assert fakes.received_per_key()[key] == 1
    assert inbox(client, citizen, first) == {
        "submitted": submitted["notification"]["key"],
        "accepted": accepted["notification"]["key"],
    }

    # Push switched off for 受理: the second case's acceptance goes by SMS, to the number it was filed with.
    mute = {"preferences": [{"purpose": "accepted", "channel": "push", "enabled": False}]}
    ok(client.put(f"{ME}/notification-preferences", json=mute, headers=citizen))
    second = submit(client, citizen, f"{run}-2", WANG, uploaded)
    assert settled(client, admin, citizen, second, "submitted")["notification"]["channel"] == "push"
    accept(client, clerk, second)
    by_sms = settled(client, admin, citizen, second, "accepted")
    key = by_sms["notification"]["key"]
    assert ended(by_sms) == ("delivered", "sms", [("sms", "aliyun-sms", "done")])
    assert [(s.phone, s.delivered) for s in fakes.aliyun.sent if s.key == key] == [("+8613700005678", True)]
    assert fakes.received_per_key()[key] == 1  # by SMS only: no push, no WeChat
    assert set(inbox(client, citizen, second)) == {"submitted", "accepted"}


# Each files a case with a mobile of their own: the kill test's SMS spread over their numbers.
NAMES = ("赵一", "钱二", "孙三", "李四", "周五", "吴六", "郑七", "王八")
N_NOTIFICATIONS = 240
PURPOSES = (Purpose.ACCEPTED, Purpose.CONCLUDED, Purpose.RESUMED)


def readers(
    run: str, cases: list[uuid.UUID], fakes: Providers
) -> tuple[list[Pending], dict[str, str], dict[str, str]]:
    """One notification per reader; half hold a WeChat grant, a third a device; some of each are dead ends."""
    pending: list[Pending] = []
    devices: dict[str, str] = {}
    openids: dict[str, str] = {}
    for n in range(N_NOTIFICATIONS):
        subject = f"reader-{run}-{n}"
        if n % 2 == 0:
            openids[subject] = f"o{run}x{n}"
            if n % 10 == 0:  # the user withdrew the subscription: WeChat keeps refusing it
                fakes.wechat.fail(openids[subject], 43101, 43101, 43101)
        if n % 3 == 0:
            devices[subject] = f"fid-{run}-{n}"
            if n % 9 == 0:  # the app was uninstalled
                fakes.fcm.fail(devices[subject], "UNREGISTERED", "UNREGISTERED", "UNREGISTERED")
        pending.append(Pending(PURPOSES[n % len(PURPOSES)], subject, cases[n % len(cases)]))
    return pending, devices, openids


def test_a_worker_killed_mid_run_leaves_nothing_pending_and_only_its_unrecorded_sends_doubled(
    deployment: Deployment, client: httpx.Client
) -> None:
    fakes, db = deployment.providers, deployment.db
    run = uuid.uuid4().hex[:8]
    filer = login(client, f"filer-{run}", "citizen", name="张小明")
    uploaded = {m: upload(client, filer, pdf(f"{m} {run}")) for m in MATERIALS}
    people = [
        Person(name, resident_id(600 + n), f"139000000{n:02d}", "湖南省长沙市芙蓉区五一大道4号")
        for n, name in enumerate(NAMES)
    ]
    cases = [uuid.UUID(submit(client, filer, f"{run}-{n}", p, uploaded)) for n, p in enumerate(people)]
    # Their own 提交 notices go out before the SMS gateways start failing.
    sent = "SELECT count(*) FROM notification_outbox WHERE case_id = ANY($1::uuid[]) AND state = 'delivered'"
    wait_for(lambda: db.fetchval(sent, cases) == len(cases), "the cases' own notices sent")
    pending, devices, openids = readers(run, cases, fakes)
    keys = {p.key for p in pending}

    fakes.fail_sms(0.3)
    try:
        seed_outbox(db, pending, devices, openids)
        killed = deployment.worker
        # Rows waiting on a slow SMS gateway hold sends not recorded yet: kill the worker then.
        wait_for(
            lambda: len(claimed_keys(db) & set(fakes.received_per_key())) >= 30,
            "the worker holding sends it has not recorded",
        )
        killed.kill()
        time.sleep(0.3)  # the fakes finish recording the requests that reached them before the kill
        sent_by_the_killed = set(fakes.received_per_key())
        assert pending_count(db) > N_NOTIFICATIONS // 2, "the worker should die mid-run"
        held_by_the_killed = claimed_keys(db)

        started = time.monotonic()
        replacement = deployment.replace_with_dispatcher()
        wait_for(lambda: pending_count(db) == 0, "the new worker draining the outbox", timeout=90)
        drained_in = time.monotonic() - started
    finally:
        fakes.fail_sms(0)

    ends = outcomes(db, keys)
    assert len(ends) == N_NOTIFICATIONS
    assert {r["state"] for r in ends} <= {"delivered", "dead"}
    assert "taken over before they were recorded" not in replacement.log(), (
        f"a row outlived the {LEASE_SECONDS}s lease (drained in {drained_in:.1f}s)"
    )

    received = fakes.received_per_key()
    twice = {k for k, n in received.items() if n > 1}
    assert twice <= sent_by_the_killed, {k: received[k] for k in twice - sent_by_the_killed}
    assert max(received.values()) == 2  # once by the killed worker, once by the new one
    # What the killed worker had sent without recording it went again, with the same key.
    assert held_by_the_killed & sent_by_the_killed & twice, (
        "the kill should fall between sending and recording"
    )
    delivered = {r["key"]: r["channel"] for r in ends if r["state"] == "delivered"}
    assert {k for k, channel in delivered.items() if channel != "inbox"} <= set(received)
    assert {"wechat", "push", "sms"} <= set(delivered.values())

    # Every attempt is on record, and each delivery ends in one "done" on its channel.
    for end in ends:
        assert end["recorded"] == end["attempts"], end
        if end["state"] == "delivered" and end["channel"] != "inbox":
            assert end["done"] == 1, end
    tried = attempt_details(db, keys)
    troubles = {("wechat", "wechat", "drop"), ("push", "fcm", "drop"), ("sms", "aliyun-sms", "retry")}
    assert troubles <= {t[:3] for t in tried}
    # Sends of unclear fate (slow answers) were settled by asking the gateway.
    assert any(detail == "on the provider's record after an unclear answer" for *_, detail in tried)
    assert not db.fetchval(
        "SELECT count(*) FROM wechat_grants WHERE spent_at IS NULL AND reserved_by IS NOT NULL"
    )
