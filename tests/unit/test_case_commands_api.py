"""The case command routes over a fake service: decoding, personal-data checks, roles, and error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from litestar import Litestar, Router
from litestar.testing import AsyncTestClient
from prometheus_client import CollectorRegistry

from domain.case import (
    Agent,
    CaseStatus,
    Enterprise,
    IllegalTransitionError,
    InvalidCommandError,
    MaterialsMissingError,
    NotAuthorisedActorError,
    NotEligibleError,
    Person,
)
from domain.case import Role as CaseRole
from domain.personal import Address, CreditCode, DocumentKind, IdDocument, IdNumber, PersonName, Phone
from miniapp_api.app import create_app
from miniapp_api.case_commands import CaseCommandService, case_command_handlers, register_case_problems
from miniapp_api.config import ApiConfig
from miniapp_api.principal import Principal, Role
from miniapp_api.problems import ProblemMap
from miniapp_api.schemas import HealthReport
from miniapp_api.tokens import issue_token

pytestmark = pytest.mark.unit

CONFIG = ApiConfig(
    jwt_secret="test-secret-" + "c" * 40, token_ttl_seconds=600, dev_login=False, max_body_bytes=8192
)
CASE = UUID(int=42)
SHA = "a" * 64
SUBMISSION: dict[str, Any] = {
    "itemCode": "FOOD",
    "clientRequestId": "req-1",
    "applicant": {
        "name": "张三",
        "idType": "resident_id",
        "idNumber": "430102199001011238",
        "phone": "+86 138 1234 1234",
        "address": "湖南省长沙市岳麓区麓山南路1号",
    },
    "materials": {"M01": SHA},
}


@dataclass(frozen=True)
class Done:
    case_id: UUID = CASE
    number: str = "430100202609290000001"
    status: CaseStatus = CaseStatus.SUBMITTED
    version: int = 1
    receipt_number: str = "SL430100202609290000001"
    query_password: str | None = "123456"


class FakeService:
    """Records each call; raises `self.error` when one is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []
        self.error: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        async def call(caller: Any, *args: Any, **kwargs: Any) -> Done:
            self.calls.append((name, caller, {"args": args, **kwargs}))
            if self.error is not None:
                raise self.error
            return Done()

        return call


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


@pytest.fixture
def fake() -> FakeService:
    return FakeService()


@pytest.fixture
async def client(fake: FakeService) -> AsyncIterator[AsyncTestClient[Litestar]]:
    service: CaseCommandService = fake  # type: ignore[assignment]  # a duck-typed fake of the port
    app = create_app(
        CONFIG,
        health=healthy,
        registry=CollectorRegistry(),
        route_handlers=[Router(path="/api/v1", route_handlers=case_command_handlers(service))],
        problem_map=register_case_problems(ProblemMap()),
    )
    async with AsyncTestClient(app) as c:
        yield c


def as_(role: Role, subject: str = "someone", **scopes: str) -> dict[str, str]:
    principal = Principal(subject=subject, role=role, **scopes)
    return {"Authorization": f"Bearer {issue_token(CONFIG, principal)}"}


async def test_submit_passes_validated_values(client: AsyncTestClient[Litestar], fake: FakeService) -> None:
    response = await client.post("/api/v1/cases", json=SUBMISSION, headers=as_(Role.CITIZEN, "citizen-zhang"))
    assert response.status_code == 201, response.text
    assert response.json() == {
        "caseId": str(CASE),
        "number": Done.number,
        "status": "submitted",
        "version": 1,
    }
    [(name, caller, kwargs)] = fake.calls
    assert name == "submit" and (caller.subject, caller.role) == ("citizen-zhang", CaseRole.CITIZEN)
    # Typed personal values, normalised by domain.personal, so the store seals them.
    assert kwargs["applicant"] == Person(
        name=PersonName("张三"),
        identity=IdNumber("430102199001011238"),
        phone=Phone("13812341234"),
        address=Address("湖南省长沙市岳麓区", "麓山南路1号"),
    )
    assert kwargs["agent"] is None
    assert kwargs["materials"]["M01"].sha256 == SHA


async def test_an_enterprise_and_its_agent_are_typed(
    client: AsyncTestClient[Litestar], fake: FakeService
) -> None:
    body = {
        **SUBMISSION,
        "applicant": {
            "kind": "enterprise",
            "name": " 长沙星城科技有限公司 ",
            "idType": "uscc",
            "idNumber": "91430100ma4l0000x9",
            "phone": "(0731) 8888 0000",
            "address": "湖南省长沙市天心区",
        },
        "agent": {
            "name": "John SMITH",
            "idType": "passport",
            "idNumber": "e 1234 5678",
            "phone": "137 0000 1111",
        },
    }
    response = await client.post("/api/v1/cases", json=body, headers=as_(Role.CITIZEN))
    assert response.status_code == 201, response.text
    [(_, _, kwargs)] = fake.calls
    assert kwargs["applicant"] == Enterprise(
        name="长沙星城科技有限公司",
        identity=CreditCode("91430100MA4L0000X9"),
        phone=Phone("0731-88880000"),
        address=Address("湖南省长沙市天心区", ""),
    )
    assert kwargs["agent"] == Agent(
        name=PersonName("John SMITH"),
        identity=IdDocument(DocumentKind.PASSPORT, "E12345678"),
        phone=Phone("13700001111"),
    )


@pytest.mark.parametrize(
    ("applicant", "agent", "fields"),
    [
        ({"idType": "uscc", "idNumber": "91430100MA4L0000X9"}, None, ["applicant.idNumber"]),
        ({"kind": "enterprise"}, None, ["applicant.idNumber"]),  # a resident ID names no enterprise
        ({"name": "张3", "phone": "12345"}, None, ["applicant.name", "applicant.phone"]),
        (
            {},
            {"name": "王五", "idType": "uscc", "idNumber": "91430100MA4L0000X9", "phone": "1"},
            ["agent.idNumber", "agent.phone"],  # an agent is a natural person
        ),
        ({"address": " "}, None, ["applicant.address"]),
    ],
)
async def test_every_bad_personal_field_is_named(
    client: AsyncTestClient[Litestar],
    fake: FakeService,
    applicant: dict[str, str],
    agent: dict[str, str] | None,
    fields: list[str],
) -> None:
    body: dict[str, Any] = {**SUBMISSION, "applicant": {**SUBMISSION["applicant"], **applicant}}
    if agent is not None:
        body["agent"] = agent
    response = await client.post("/api/v1/cases", json=body, headers=as_(Role.CITIZEN))
    assert response.status_code == 400, response.text
    assert [e["field"] for e in response.json()["errors"]] == fields
    assert fake.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"itemCode": "FOOD"}',
        b'{"itemCode": "FOOD", "clientRequestId": "r", "applicant": {}, "materials": {"M01": "not-a-hash"}}',
    ],
)
async def test_malformed_bodies_are_400(
    client: AsyncTestClient[Litestar], fake: FakeService, body: bytes
) -> None:
    response = await client.post(
        "/api/v1/cases", content=body, headers={**as_(Role.CITIZEN), "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert fake.calls == []


async def test_an_invalid_id_number_names_its_field(
    client: AsyncTestClient[Litestar], fake: FakeService
) -> None:
    bad = {**SUBMISSION, "applicant": {**SUBMISSION["applicant"], "idNumber": "430102199001011234"}}
    response = await client.post("/api/v1/cases", json=bad, headers=as_(Role.CITIZEN))
    assert response.status_code == 400
    problem = response.json()
    assert [e["field"] for e in problem["errors"]] == ["applicant.idNumber"]
    assert "430102199001011234" not in response.text  # the value itself is never echoed
    assert fake.calls == []


async def test_wrong_roles_are_403(client: AsyncTestClient[Litestar], fake: FakeService) -> None:
    staff = f"/api/v1/staff/cases/{CASE}"
    cases = [
        ("/api/v1/cases", SUBMISSION, as_(Role.OFFICER, department="SCJGJ")),
        ("/api/v1/cases", SUBMISSION, as_(Role.AUDITOR)),
        (f"{staff}/acceptance", {"mode": "standard"}, as_(Role.CITIZEN)),
        (f"{staff}/routing", None, as_(Role.AUDITOR)),
        (f"{staff}/tasks/SCJGJ/claim", None, as_(Role.CLERK, hall="SMZJ")),
        (f"{staff}/trips", {"purpose": "领证"}, as_(Role.OFFICER, department="SCJGJ")),
        (f"{staff}/commitment-revocation", {"reason": "核查不实"}, as_(Role.CLERK, hall="SMZJ")),
    ]
    for path, body, headers in cases:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 403, (path, response.text)
    assert fake.calls == []


async def test_revoking_a_commitment_approval_needs_a_reason(
    client: AsyncTestClient[Litestar], fake: FakeService
) -> None:
    path = f"/api/v1/staff/cases/{CASE}/commitment-revocation"
    officer = as_(Role.OFFICER, subject="officer-1", department="SCJGJ")
    missing = await client.post(path, json={}, headers=officer)
    assert missing.status_code == 400 and "reason" in missing.text
    assert fake.calls == []
    done = await client.post(
        path, json={"reason": "现场核查不符"}, headers={**officer, "Idempotency-Key": "rev-1"}
    )
    assert done.status_code == 200, done.text
    name, caller, call = fake.calls[0]
    assert name == "revoke_commitment_approval" and caller.department == "SCJGJ"
    assert call == {"args": (CASE,), "reason": "现场核查不符", "request_id": "rev-1"}


async def test_acceptance_returns_the_one_time_password(
    client: AsyncTestClient[Litestar], fake: FakeService
) -> None:
    path = f"/api/v1/staff/cases/{CASE}/acceptance"
    clerk = as_(Role.CLERK, "clerk-1", hall="SMZJ")
    response = await client.post(path, json={"mode": "standard"}, headers={**clerk, "Idempotency-Key": "k-1"})
    assert response.status_code == 200, response.text
    assert response.json()["queryPassword"] == "123456"
    assert response.json()["receiptNumber"] == Done.receipt_number
    name, caller, kwargs = fake.calls[-1]
    assert (name, caller.hall, kwargs["request_id"], kwargs["args"]) == ("accept", "SMZJ", "k-1", (CASE,))
    missing = await client.post(path, json={"mode": "missing_materials", "missing": ["M04"]}, headers=clerk)
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "commitmentSha256"
    response = await client.post(
        path, json={"mode": "missing_materials", "missing": ["M04"], "commitmentSha256": SHA}, headers=clerk
    )
    assert response.status_code == 200 and fake.calls[-1][0] == "accept_with_missing_materials"


@pytest.mark.parametrize(
    ("error", "status", "slug"),
    [
        (IllegalTransitionError("cannot accept"), 409, "case-transition"),
        (MaterialsMissingError("owed", ["M04"]), 422, "materials-missing"),
        (NotAuthorisedActorError("no"), 403, "not-authorised-actor"),
        (InvalidCommandError("reason is required"), 422, "invalid-command"),
        (NotEligibleError("blacklisted"), 422, "not-eligible"),
    ],
)
async def test_domain_errors_become_problems(
    client: AsyncTestClient[Litestar], fake: FakeService, error: Exception, status: int, slug: str
) -> None:
    fake.error = error
    response = await client.post(
        f"/api/v1/staff/cases/{CASE}/conclusion",
        json={"result": "approved"},
        headers=as_(Role.CLERK, hall="SMZJ"),
    )
    assert response.status_code == status
    assert response.json()["type"].endswith(f"/{slug}")
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_task_routes_carry_the_department(client: AsyncTestClient[Litestar], fake: FakeService) -> None:
    headers = as_(Role.OFFICER, "o-1", department="GAJ")
    base = f"/api/v1/staff/cases/{CASE}/tasks/GAJ"
    assert (await client.post(f"{base}/claim", headers=headers)).status_code == 200
    assert (
        await client.post(f"{base}/approve", json={"opinion": "同意"}, headers=headers)
    ).status_code == 200
    returned = await client.post(f"{base}/return", json={"to": "window", "reason": "缺件"}, headers=headers)
    assert returned.status_code == 200
    assert [(c[0], c[2]["department"]) for c in fake.calls] == [
        ("claim_task", "GAJ"),
        ("approve_task_step", "GAJ"),
        ("return_task", "GAJ"),
    ]
    assert (
        await client.post(f"{base}/return", json={"to": "nowhere", "reason": "x"}, headers=headers)
    ).status_code == 400
