"""通办 material files without a database: which files a handoff's partner may have, who signed, the route."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from backend.federation.material_files import ServedFile, files_since_handoff, material_url, uploaded
from backend.federation.refusals import (
    FederationRefusal,
    HeadersInvalid,
    KeyUnknown,
    MaterialNotServed,
    MessageStale,
    PartnerUnknown,
    SignatureInvalid,
    register_federation_problems,
)
from backend.federation.signed_requests import authenticate
from backend.federation.signing import SIGNATURE_HEADER, SigningKey
from domain.case import Case, ELicenceRef, MaterialIssue, UploadedFile
from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from miniapp_api.federation_routes import federation_files_router
from miniapp_api.problems import PROBLEM_BASE, ProblemMap
from miniapp_api.schemas import HealthReport
from tests.unit.case_builders import (
    CITIZEN,
    CLERK,
    COMMITMENT,
    DUE,
    MINIAPP,
    PASSWORD_HASH,
    STEP,
    WINDOW,
    sha,
    submit,
)

pytestmark = pytest.mark.unit

HANDOFF = uuid.UUID("5f3c2b1a-0d9e-4c8b-a7f6-e5d4c3b2a190")
ZHUZHOU = "430200"
NOW = 1_790_000_000


# Which files: those the case held when handed off, and every supplement's since.


def hand_off(case: Case) -> list[object]:
    """Hand the case to 株洲; the events recorded from then on are for the test to add to."""
    case.hand_off(CLERK, WINDOW, STEP, partner=ZHUZHOU, mode="remote_collect", handoff=HANDOFF)
    case.collect_events()
    return []


def test_a_handed_off_case_offers_its_files_and_no_e_licence() -> None:
    case = submit(materials={"id-card": UploadedFile(sha(1)), "licence": ELicenceRef("D430100-1")})
    assert uploaded(case.materials) == {sha(1)}
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
    assert files_since_handoff(case, hand_off(case)) == {sha(1)}


def test_a_supplement_after_the_handoff_adds_its_files() -> None:
    case = submit()  # id-card sha(1), lease sha(2)
    case.accept_with_missing_materials(
        CLERK, WINDOW, STEP, receipt_number="SL-2", query_password_hash=PASSWORD_HASH, missing=["fire-check"],
        minor=["fire-check"], commitment_sha256=COMMITMENT, supplement_due=DUE, on_credit_blacklist=False,
    )  # fmt: skip
    at_handoff = files_since_handoff(case, hand_off(case))
    case.supplement_materials(CITIZEN, MINIAPP, STEP, materials={"fire-check": UploadedFile(sha(3))})
    assert at_handoff == {sha(1), sha(2)}
    assert files_since_handoff(case, case.collect_events()) == {sha(1), sha(2), sha(3)}


def test_a_file_replaced_before_the_handoff_is_not_offered() -> None:
    case = submit()
    case.request_materials(CLERK, WINDOW, STEP, issues=[MaterialIssue(material_id="lease", reason="未盖章")])
    case.supplement_materials(CITIZEN, MINIAPP, STEP, materials={"lease": UploadedFile(sha(20))})
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-3", query_password_hash=PASSWORD_HASH)
    assert files_since_handoff(case, hand_off(case)) == {sha(1), sha(20)}  # not sha(2), the lease it replaced


def test_a_file_is_asked_for_under_the_partners_base_url_and_its_prefix() -> None:
    assert material_url("https://zw.zhuzhou.example/gw/", HANDOFF, sha(7)) == (
        f"https://zw.zhuzhou.example/gw/federation/v1/handoffs/{HANDOFF}/materials/{sha(7)}"
    )


# Who signed: as the inbox checks a message, over GET and an empty body.

KEY = SigningKey.from_seed("zz-1", b"\x11" * 32)
OTHER = SigningKey.from_seed("zz-1", b"\x12" * 32)  # the same key id, another key
PATH = f"/federation/v1/handoffs/{HANDOFF}/materials/{sha(1)}"


@dataclass(frozen=True)
class PartnerEntry:
    region: str
    base_url: str
    keys: Mapping[str, str]


class Directory:
    async def find(self, region: str) -> PartnerEntry | None:
        known = {ZHUZHOU: PartnerEntry(ZHUZHOU, "https://zw.zhuzhou.example", {KEY.kid: KEY.public_text()})}
        return known.get(region)


def signed(key: SigningKey = KEY, region: str = ZHUZHOU, path: str = PATH, at: int = NOW) -> dict[str, str]:
    return key.headers(region, "GET", path, b"", str(uuid.uuid4()), at)


def tampered() -> dict[str, str]:
    headers = signed()
    raw = bytearray(base64.b64decode(headers[SIGNATURE_HEADER]))
    raw[0] ^= 1
    return {**headers, SIGNATURE_HEADER: base64.b64encode(raw).decode()}


@pytest.mark.parametrize(
    ("headers", "path", "refusal"),
    [
        (lambda: signed(region="430300"), PATH, PartnerUnknown),  # 湘潭: a city we have no partner entry for
        (lambda: signed(SigningKey.from_seed("zz-0", b"\x11" * 32)), PATH, KeyUnknown),
        (lambda: signed(at=NOW - 301), PATH, MessageStale),
        (lambda: signed(at=NOW + 301), PATH, MessageStale),
        (tampered, PATH, SignatureInvalid),
        (lambda: signed(OTHER), PATH, SignatureInvalid),
        (signed, PATH.replace(sha(1), sha(2)), SignatureInvalid),  # signed for one file, asking another
        (lambda: {**signed(), "Citypass-Message-Id": "not-a-uuid"}, PATH, HeadersInvalid),
        (lambda: {}, PATH, HeadersInvalid),
    ],
)
async def test_a_request_not_signed_by_a_partner_over_exactly_this_is_refused(
    headers: Any, path: str, refusal: type[FederationRefusal]
) -> None:
    with pytest.raises(refusal):
        await authenticate(Directory(), "GET", path, headers(), b"", now=NOW, freshness=300)


async def test_a_partners_signed_request_says_who_signed_it() -> None:
    headers = signed()
    who = await authenticate(Directory(), "GET", PATH, headers, b"", now=NOW + 299, freshness=300)
    assert (who.region, who.kid, who.message_id) == (ZHUZHOU, KEY.kid, headers["Citypass-Message-Id"])
    with pytest.raises(SignatureInvalid):  # the body is signed too: empty, for a GET
        await authenticate(Directory(), "GET", PATH, headers, b"x", now=NOW, freshness=300)
    with pytest.raises(SignatureInvalid):
        await authenticate(Directory(), "POST", PATH, headers, b"", now=NOW, freshness=300)


# The route: no token, the request as sent to the port, the bytes and their digest back.

PDF = b"%PDF-1.7\nid-card\n%%EOF"
PDF_SHA = hashlib.sha256(PDF).hexdigest()
CONFIG = ApiConfig(jwt_secret="f" * 48, token_ttl_seconds=900, dev_login=False, max_body_bytes=65536)


class FakeFiles:
    """Serves PDF to anyone for HANDOFF; refuses what it is told to."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, uuid.UUID, str, bytes]] = []
        self.refusal: FederationRefusal | None = None

    async def serve(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        handoff: uuid.UUID,
        sha256: str,
        remote: str | None,
    ) -> ServedFile:
        self.asked.append((method, path, handoff, sha256, body))
        if self.refusal is not None:
            raise self.refusal
        if (handoff, sha256) != (HANDOFF, PDF_SHA):
            raise MaterialNotServed(f"no material {sha256} in a handoff {handoff} to you")
        return ServedFile(PDF, PDF_SHA, "application/pdf")


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


@pytest.fixture
def files() -> FakeFiles:
    return FakeFiles()


@pytest.fixture
def client(files: FakeFiles) -> Iterator[TestClient[Litestar]]:
    app = create_app(
        CONFIG,
        health=healthy,
        registry=CollectorRegistry(),
        route_handlers=[federation_files_router(files)],
        problem_map=register_federation_problems(ProblemMap()),
    )
    with TestClient(app) as c:
        yield c


def test_a_file_is_answered_with_its_type_and_digest(client: TestClient[Litestar], files: FakeFiles) -> None:
    path = f"/federation/v1/handoffs/{HANDOFF}/materials/{PDF_SHA}"
    answer = client.get(path + "?v=1")
    assert (answer.status_code, answer.content) == (200, PDF)
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["etag"] == f'"{PDF_SHA}"'
    assert (
        answer.headers["repr-digest"]
        == f"sha-256=:{base64.b64encode(hashlib.sha256(PDF).digest()).decode()}:"
    )
    assert answer.headers["cache-control"] == "private, no-store"
    assert files.asked == [("GET", path + "?v=1", HANDOFF, PDF_SHA, b"")]  # the path as sent, query and all


@pytest.mark.parametrize(
    ("refusal", "status"),
    [(None, 404), (MaterialNotServed("x"), 404), (SignatureInvalid("x"), 401), (PartnerUnknown("x"), 403)],
)
def test_a_refusal_is_its_problem(
    client: TestClient[Litestar], files: FakeFiles, refusal: FederationRefusal | None, status: int
) -> None:
    files.refusal = refusal
    answer = client.get(f"/federation/v1/handoffs/{HANDOFF}/materials/{sha(9)}")
    kind = refusal.kind if refusal is not None else "material-not-found"
    assert answer.status_code == status
    assert answer.json()["type"] == PROBLEM_BASE + f"federation-{kind}"
