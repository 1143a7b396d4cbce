"""通办 material files between two real deployments: 株洲 holds the bytes 长沙's applicant uploaded.

长沙 (收件地) hands a case off; 株洲 (办理地) fetches each of its files, signed, from
`GET /federation/v1/handoffs/{handoff}/materials/{sha256}` before it opens the case, and
its clerk reads them from 株洲's own material store. Each city has its own files
directory, so nothing is shared but HTTP. 长沙 refuses a city it does not know, a file
of a case not handed to the asker, and a signature that does not match; and when 长沙
is down as 株洲 applies the handoff, the handoff waits, and is taken on once 长沙 is back.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from backend.federation.delivery import MESSAGES_PATH
from backend.federation.signing import SIGNATURE_HEADER, SigningKey
from backend.settings import federation_keys
from tests.dbutil import database_url, drop_schema_sync, new_schema_name
from tests.e2e.case_journey_support import Headers, assert_problem, login, ok, pdf, upload, wait_for
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.e2e.stream_support import Desk
from tests.e2e.tongban_support import CHANGSHA, ENV, GETI, WANG, ZHUZHOU, register, staff, stream

pytestmark = pytest.mark.e2e

DEAD = "http://127.0.0.1:9"  # nobody listens


def dev_key(region: str) -> SigningKey:
    """The key a dev deployment of `region` signs with (derived from the region, see settings)."""
    [(kid, seed)] = federation_keys("", region, "dev")
    return SigningKey.from_seed(kid, seed)


@dataclass
class Cities:
    servers: dict[str, LiveServer]
    env: dict[str, dict[str, str]]

    def client(self, region: str) -> httpx.Client:
        return httpx.Client(base_url=self.servers[region].base_url, timeout=10)

    def restart(self, region: str) -> None:
        down = self.servers[region]
        port = int(down.base_url.rsplit(":", 1)[1])
        self.servers[region] = start_server(down.log_path.parent, down.schema, self.env[region], port=port)


@pytest.fixture(scope="module")
def cities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cities]:
    tmp = Path(tmp_path_factory.mktemp("tongban-files"))
    env = {
        region: {**ENV, "CITYPASS_REGION": region, "CITYPASS_FILES_DIR": str(tmp / region / "files")}
        for region in (CHANGSHA, ZHUZHOU)
    }
    both = Cities({}, env)
    try:
        for region in (CHANGSHA, ZHUZHOU):
            both.servers[region] = start_server(tmp, new_schema_name(), env[region])
        register(both.servers, CHANGSHA, ZHUZHOU, accepts=[{"itemCode": GETI, "modes": ["remote_collect"]}])
        register(both.servers, ZHUZHOU, CHANGSHA, accepts=[])
        yield both
    finally:
        for server in both.servers.values():
            stop_server(server)
            drop_schema_sync(server.schema)


@dataclass(frozen=True)
class Handed:
    origin: str  # 长沙's case
    number: str  # its 办件编号
    files: dict[str, bytes]  # by sha256


def hand_off(cs: httpx.Client, who: str) -> Handed:
    """长沙: the applicant uploads every material of GETI; the window accepts and hands off to 株洲."""
    desk = Desk.open(cs, who)
    guide = ok(cs.get(f"/api/v1/services/{GETI}"))
    files = {m["id"]: pdf(f"{m['id']} {who} {uuid.uuid4()}") for m in guide["materials"]}
    body = {
        "itemCode": GETI, "clientRequestId": who, "applicant": WANG.as_applicant(), "form": {},
        "materials": {m: upload(cs, desk.citizen, data) for m, data in files.items()},
    }  # fmt: skip
    origin = str(ok(cs.post("/api/v1/cases", json=body, headers=desk.citizen), 201)["caseId"])
    desk.act(origin, "pre-review", {"decision": "pass"})
    desk.act(origin, "acceptance", {"mode": "standard"})
    sent = staff(cs, desk.clerk, origin, "handoff", {"partner": ZHUZHOU, "mode": "remote_collect"})
    number = sent["number"]  # from the command's answer: the progress view may not have it yet
    return Handed(origin, number, {hashlib.sha256(data).hexdigest(): data for data in files.values()})


def arrived(zz: httpx.Client, number: str) -> dict[str, Any] | None:
    """株洲's case for 长沙's case `number`, once opened."""
    events = stream(zz, login(zz, "admin-zz", "admin"))
    found = [e for e in events if e["type"] == "case.received_from_partner" and e["originNumber"] == number]
    return found[0] if found else None


def read_material(zz: httpx.Client, clerk: Headers, sha256: str) -> httpx.Response:
    return zz.get(f"/api/v1/materials/{sha256}", headers=clerk)


@dataclass(frozen=True)
class Journey:
    handed: Handed
    handoff: str


@pytest.fixture(scope="module")
def journey(cities: Cities) -> Journey:
    with cities.client(CHANGSHA) as cs, cities.client(ZHUZHOU) as zz:
        handed = hand_off(cs, "files-wang")
        received = wait_for(lambda: arrived(zz, handed.number), "the handoff in 株洲")
    return Journey(handed, received["handoff"])


def test_zhuzhou_holds_the_bytes_changsha_received(cities: Cities, journey: Journey) -> None:
    with cities.client(ZHUZHOU) as zz:
        clerk = login(zz, "clerk-zz-files", "clerk", name="株洲窗口", hall="ZZZWFW")
        for sha256, data in journey.handed.files.items():
            answer = read_material(zz, clerk, sha256)
            assert (answer.status_code, answer.content) == (200, data)
            assert answer.headers["content-type"] == "application/pdf"
        stranger = hashlib.sha256(pdf("never handed off")).hexdigest()
        assert_problem(read_material(zz, clerk, stranger), 404, "material-not-found")


def fetch(base_url: str, path: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(base_url + path, headers=headers, timeout=10)


def signed(key: SigningKey, region: str, path: str) -> dict[str, str]:
    return key.headers(region, "GET", path, b"", str(uuid.uuid4()), int(time.time()))


def test_changsha_serves_a_file_only_to_the_city_it_handed_the_case_to(
    cities: Cities, journey: Journey
) -> None:
    base = cities.servers[CHANGSHA].base_url
    sha256, data = next(iter(journey.handed.files.items()))
    path = f"/federation/v1/handoffs/{journey.handoff}/materials/{sha256}"
    answer = fetch(base, path, signed(dev_key(ZHUZHOU), ZHUZHOU, path))
    assert (answer.status_code, answer.content) == (200, data)
    assert answer.headers["etag"] == f'"{sha256}"'
    assert answer.headers["repr-digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:"

    # 湘潭 is no partner of 长沙's: refused before anything is looked up.
    xiangtan = SigningKey.from_seed("xt-e2e", b"\x09" * 32)
    assert_problem(fetch(base, path, signed(xiangtan, "430300", path)), 403, "federation-partner-unknown")
    # 株洲, signed well, asking for a file 长沙 holds that is not in a case handed to it: 404, as for
    # a file that is nowhere, or a handoff that never was.
    with cities.client(CHANGSHA) as cs:
        other = upload(cs, login(cs, "citizen-files-other", "citizen"), pdf("another applicant's scan"))
    for handoff, file in ((journey.handoff, other), (journey.handoff, "e" * 64), (uuid.uuid4(), sha256)):
        asked = f"/federation/v1/handoffs/{handoff}/materials/{file}"
        refused = fetch(base, asked, signed(dev_key(ZHUZHOU), ZHUZHOU, asked))
        assert_problem(refused, 404, "federation-material-not-found")
    # A signature changed on the way, or made for another file.
    headers = signed(dev_key(ZHUZHOU), ZHUZHOU, path)
    raw = bytearray(base64.b64decode(headers[SIGNATURE_HEADER]))
    raw[-1] ^= 1
    tampered = {**headers, SIGNATURE_HEADER: base64.b64encode(raw).decode()}
    assert_problem(fetch(base, path, tampered), 401, "federation-signature-invalid")
    elsewhere = f"/federation/v1/handoffs/{journey.handoff}/materials/{other}"
    assert_problem(fetch(base, elsewhere, headers), 401, "federation-signature-invalid")

    with cities.client(CHANGSHA) as cs:
        admin = login(cs, "admin-cs-files", "admin")
        kinds = [r["kind"] for r in ok(cs.get("/api/v1/admin/federation/refusals", headers=admin))]
    assert kinds[:6] == ["signature-invalid"] * 2 + ["material-not-found"] * 3 + ["partner-unknown"]


def outbox_request(server: LiveServer) -> asyncpg.Record | None:
    """长沙's handoff.requested still waiting to be delivered, if any."""

    async def run() -> asyncpg.Record | None:
        conn = await asyncpg.connect(database_url())
        try:
            await conn.execute(f"SET search_path TO {server.schema}")
            return await conn.fetchrow(
                "SELECT message_id, body FROM federation_outbox "
                "WHERE kind = 'handoff.requested' AND delivered_at IS NULL"
            )
        finally:
            await conn.close()

    return asyncio.run(run())


def point_at(cs: httpx.Client, region: str, base_url: str) -> None:
    """In 长沙, move the partner to `base_url`, and wait for the registry's read model to say so."""
    admin = login(cs, "admin-cs-files", "admin")
    partner = ok(cs.get(f"/api/v1/admin/partners/{region}", headers=admin))
    accepts = [{"itemCode": a["itemCode"], "modes": a["modes"]} for a in partner["accepts"]]
    body = {"name": partner["name"], "baseUrl": base_url, "accepts": accepts}
    ok(cs.put(f"/api/v1/admin/partners/{region}", json=body, headers=admin))
    wait_for(
        lambda: ok(cs.get(f"/api/v1/admin/partners/{region}", headers=admin))["baseUrl"] == base_url or None,
        "the partner's new address in 长沙's registry",
    )


def test_a_handoff_applied_while_changsha_is_down_waits_and_is_taken_on_when_it_is_back(
    cities: Cities,
) -> None:
    # 长沙's relay cannot reach 株洲 for a moment: the handoff waits in its outbox, and the test carries
    # it to 株洲 itself once 长沙 is down, signed as 长沙's relay would sign it.
    with cities.client(CHANGSHA) as cs:
        point_at(cs, ZHUZHOU, DEAD)
        handed = hand_off(cs, "files-down")
    row = wait_for(lambda: outbox_request(cities.servers[CHANGSHA]), "the handoff in 长沙's outbox")
    stop_server(cities.servers[CHANGSHA])
    body, message_id = bytes(row["body"]), str(row["message_id"])
    headers = dev_key(CHANGSHA).headers(CHANGSHA, "POST", MESSAGES_PATH, body, message_id, int(time.time()))
    zz_url = cities.servers[ZHUZHOU].base_url
    answer = httpx.post(zz_url + MESSAGES_PATH, content=body, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text

    with cities.client(ZHUZHOU) as zz:
        admin = login(zz, "admin-zz", "admin")

        def failed() -> dict[str, Any] | None:
            items = ok(zz.get("/api/v1/admin/federation/inbox", headers=admin))["items"]
            return next((i for i in items if i["messageId"] == message_id and i["error"]), None)

        held = wait_for(failed, "株洲's applier meeting 长沙 down")
        assert "MaterialTransferError" in held["error"] and held["appliedAt"] is None
        assert arrived(zz, handed.number) is None  # no case yet; and no refusal went out either:
        sent = ok(zz.get("/api/v1/admin/federation/outbox", headers=admin))["items"]
        assert not [m for m in sent if m["handoff"] == held["handoff"]]

        cities.restart(CHANGSHA)
        wait_for(lambda: arrived(zz, handed.number), "the handoff taken on once 长沙 is back")
        clerk = login(zz, "clerk-zz-files", "clerk", name="株洲窗口", hall="ZZZWFW")
        for sha256, data in handed.files.items():
            assert read_material(zz, clerk, sha256).content == data
