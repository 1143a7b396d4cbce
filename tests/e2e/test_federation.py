"""Two cities, two real servers, one database server but no shared tables: 长沙 (430100) and 株洲 (430200).

Each registers the other as a partner through its admin API, with the keys the other
publishes. Messages put in one city's outbox reach the other through its relay, are
taken by the other's inbox and applied by its applier (the dev kind `dev.noted` notes
each one in the order applied), through an outage of the receiving server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from backend.database import connect
from backend.federation.handlers import DEV_NOTED
from backend.federation.messages import ENCODER, Envelope
from backend.federation.outbox import enqueue
from backend.federation.signing import SigningKey
from backend.settings import federation_keys
from tests.dbutil import database_url, drop_schema_sync, new_schema_name
from tests.e2e.case_journey_support import Headers, assert_problem, login, ok, wait_for
from tests.e2e.conftest import LiveServer, start_server, stop_server

pytestmark = pytest.mark.e2e

CHANGSHA, ZHUZHOU = "430100", "430200"
NAMES = {CHANGSHA: "长沙市", ZHUZHOU: "株洲市"}
ENV = {
    "CITYPASS_FEDERATION_RETRY_MIN_SECONDS": "0.05",
    "CITYPASS_FEDERATION_RETRY_MAX_SECONDS": "0.5",
    "CITYPASS_FEDERATION_TIMEOUT_SECONDS": "2",
}


@dataclass
class Cities:
    tmp: Path
    servers: dict[str, LiveServer]

    def env(self, region: str) -> dict[str, str]:
        return {**ENV, "CITYPASS_REGION": region}

    def client(self, region: str) -> httpx.Client:
        return httpx.Client(base_url=self.servers[region].base_url, timeout=10)

    def restart(self, region: str) -> None:
        """Start the city's server again on its own port and schema, as a machine coming back would."""
        old = self.servers[region]
        port = int(old.base_url.rsplit(":", 1)[1])
        self.servers[region] = start_server(self.tmp, old.schema, self.env(region), port=port)


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cities]:
    found = Cities(Path(tmp_path_factory.mktemp("federation")), {})
    try:
        for region in (CHANGSHA, ZHUZHOU):
            found.servers[region] = start_server(found.tmp, new_schema_name(), found.env(region))
        for region, partner in ((CHANGSHA, ZHUZHOU), (ZHUZHOU, CHANGSHA)):
            register(found, region, partner)
        yield found
    finally:
        for server in found.servers.values():
            stop_server(server)
            drop_schema_sync(server.schema)


def admin(client: httpx.Client) -> Headers:
    return login(client, "federation-admin", "admin")


def register(cities: Cities, region: str, partner: str) -> None:
    """In `region`, register `partner` with the keys it publishes, and wait for the read model."""
    with cities.client(partner) as theirs:
        published = ok(theirs.get("/federation/v1/keys"))
    assert published["region"] == partner
    keys = [{"kid": k["kid"], "publicKey": k["publicKey"]} for k in published["keys"]]
    body = {
        "name": NAMES[partner],
        "baseUrl": cities.servers[partner].base_url,
        "accepts": [],
        "publicKeys": keys,
    }
    with cities.client(region) as ours:
        who = admin(ours)
        ok(ours.put(f"/api/v1/admin/partners/{partner}", json=body, headers=who))
        wait_for(
            lambda: ours.get(f"/api/v1/admin/partners/{partner}", headers=who).status_code == 200, "registry"
        )


def put_in_outbox(server: LiveServer, partner: str, handoff: uuid.UUID, seqs: list[int]) -> list[uuid.UUID]:
    """What a consumer of the sending city would do: enqueue in a transaction of its own schema."""

    async def run() -> list[uuid.UUID]:
        conn = await connect(database_url(), server.schema)
        try:
            async with conn.transaction():
                return [await enqueue(conn, partner, note(handoff, seq)) for seq in seqs]
        finally:
            await conn.close()

    return asyncio.run(run())


def note(handoff: uuid.UUID, seq: int) -> Envelope:
    payload = msgspec.Raw(msgspec.json.encode({"said": f"第{seq}条"}))
    return Envelope(kind=DEV_NOTED, handoff=handoff, seq=seq, sent_at=datetime.now(UTC), payload=payload)


def notes(server: LiveServer, handoff: uuid.UUID) -> list[asyncpg.Record]:
    """What the receiving city applied for the handoff, in the order it applied it."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url())
        try:
            return await conn.fetch(
                f"SELECT partner, message_id, seq, payload FROM {server.schema}.federation_dev_notes "
                "WHERE handoff = $1 ORDER BY id",
                handoff,
            )
        finally:
            await conn.close()

    return asyncio.run(run())


def test_messages_reach_the_partner_city_through_its_outage_each_applied_once_in_order(
    cities: Cities,
) -> None:
    changsha, zhuzhou = cities.servers[CHANGSHA], cities.servers[ZHUZHOU]
    handoff = uuid.uuid4()
    sent = put_in_outbox(changsha, ZHUZHOU, handoff, [1, 2])
    wait_for(lambda: len(notes(zhuzhou, handoff)) == 2, "the first two applied in 株洲")

    stop_server(zhuzhou)  # 株洲 goes down; 长沙 keeps sending into the void
    sent += put_in_outbox(changsha, ZHUZHOU, handoff, [5, 3])
    sent += put_in_outbox(changsha, ZHUZHOU, handoff, [4])
    with cities.client(CHANGSHA) as client:
        who = admin(client)

        def failing() -> dict[str, Any] | None:
            outbox = ok(
                client.get("/api/v1/admin/federation/outbox", params={"state": "pending"}, headers=who)
            )
            tried = [m for m in outbox["items"] if m["consecutiveFailures"] >= 2]
            return outbox if outbox["pending"] == 3 and len(tried) == 3 else None

        down = wait_for(failing, "three messages failing while 株洲 is down")
        assert all("ConnectError" in m["lastError"] and m["lastStatus"] is None for m in down["items"])

        cities.restart(ZHUZHOU)
        wait_for(lambda: len(notes(cities.servers[ZHUZHOU], handoff)) == 5, "all five applied in 株洲")
        outbox = ok(client.get("/api/v1/admin/federation/outbox", headers=who))
        assert (outbox["pending"], outbox["delivered"]) == (0, 5)

    applied = notes(cities.servers[ZHUZHOU], handoff)
    assert [r["seq"] for r in applied] == [1, 2, 3, 4, 5]  # in order, whatever order they came in
    assert sorted(r["message_id"] for r in applied) == sorted(sent)  # each once
    assert {r["partner"] for r in applied} == {CHANGSHA}
    assert [msgspec.json.decode(r["payload"])["said"] for r in applied] == [f"第{n}条" for n in range(1, 6)]
    with cities.client(ZHUZHOU) as client:
        inbox = ok(client.get("/api/v1/admin/federation/inbox", headers=admin(client)))
        assert (inbox["applied"], inbox["pending"], inbox["failed"]) == (5, 0, 0)

    # Status flows back: 株洲 sends on the same handoff, numbered from 1 in its own direction.
    back = put_in_outbox(cities.servers[ZHUZHOU], CHANGSHA, handoff, [1])
    wait_for(lambda: len(notes(changsha, handoff)) == 1, "株洲's message applied in 长沙")
    assert [(r["partner"], r["message_id"]) for r in notes(changsha, handoff)] == [(ZHUZHOU, back[0])]


def changsha_key() -> SigningKey:
    """长沙's dev key, which anyone can derive: the dev deployments sign with it."""
    ((kid, seed),) = federation_keys("", CHANGSHA, "dev")
    return SigningKey.from_seed(kid, seed)


def post(client: httpx.Client, key: SigningKey, region: str, body: bytes, **options: Any) -> httpx.Response:
    message_id = options.get("message_id") or str(uuid.uuid4())
    stamp = int(time.time()) + options.get("skew", 0)
    headers = key.headers(region, "POST", "/federation/v1/messages", body, message_id, stamp)
    return client.post("/federation/v1/messages", content=options.get("sent", body), headers=headers)


def test_the_inbox_takes_signed_messages_once_and_refuses_and_records_the_rest(cities: Cities) -> None:
    key, handoff = changsha_key(), uuid.uuid4()
    body = ENCODER.encode(note(handoff, 1))
    with cities.client(ZHUZHOU) as client:
        message_id = str(uuid.uuid4())
        first = post(client, key, CHANGSHA, body, message_id=message_id)
        assert (first.status_code, first.json()) == (202, {"status": "accepted"})
        again = post(client, key, CHANGSHA, body, message_id=message_id)
        assert (again.status_code, again.json()) == (200, {"status": "duplicate"})

        assert_problem(
            client.post("/federation/v1/messages", content=body), 400, "federation-headers-invalid"
        )
        stranger = SigningKey.from_seed("xt-1", b"\x07" * 32)
        assert_problem(post(client, stranger, "430300", body), 403, "federation-partner-unknown")
        assert_problem(post(client, stranger, CHANGSHA, body), 401, "federation-key-unknown")
        assert_problem(post(client, key, CHANGSHA, body, skew=-3600), 401, "federation-message-stale")
        assert_problem(post(client, key, CHANGSHA, body, message_id=message_id, skew=-3600), 401,
                       "federation-message-stale")  # fmt: skip
        tampered = body.replace("第1条".encode(), "第9条".encode())
        assert tampered != body
        assert_problem(post(client, key, CHANGSHA, body, sent=tampered), 401, "federation-signature-invalid")
        other_kind = ENCODER.encode(msgspec.structs.replace(note(handoff, 2), kind="nobody.handles"))
        assert_problem(post(client, key, CHANGSHA, other_kind), 422, "federation-kind-unknown")
        assert_problem(
            post(client, key, CHANGSHA, b'{"kind":"dev.noted"}'), 400, "federation-message-invalid"
        )
        assert_problem(post(client, key, CHANGSHA, ENCODER.encode(note(handoff, 1))), 409,
                       "federation-sequence-conflict")  # fmt: skip

        refusals = ok(
            client.get("/api/v1/admin/federation/refusals", params={"limit": 9}, headers=admin(client))
        )
    assert [r["kind"] for r in reversed(refusals)] == [
        "headers-invalid", "partner-unknown", "key-unknown", "message-stale", "message-stale",
        "signature-invalid", "kind-unknown", "message-invalid", "sequence-conflict",
    ]  # fmt: skip
    assert refusals[-1]["region"] is None and refusals[-2]["region"] == "430300"
    assert refusals[4]["messageId"] == message_id  # the replay of a known message, refused all the same
    assert all(r["remote"] == "127.0.0.1" for r in refusals)
    wait_for(lambda: len(notes(cities.servers[ZHUZHOU], handoff)) == 1, "the one message applied")
    time.sleep(0.5)
    assert [r["seq"] for r in notes(cities.servers[ZHUZHOU], handoff)] == [1]  # once
