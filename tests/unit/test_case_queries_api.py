"""The case read routes over fakes: who may read which case, one 404 for anonymous misses, officer scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import msgspec
import pytest
from litestar import Litestar, Router
from litestar.testing import AsyncTestClient
from prometheus_client import CollectorRegistry

from domain.case import CaseStatus, NextAction, NextStep, TaskStep
from miniapp_api.app import create_app
from miniapp_api.case_queries import CaseReader, QueueReader, case_query_handlers
from miniapp_api.config import ApiConfig
from miniapp_api.principal import Principal, Role
from miniapp_api.schemas import HealthReport
from miniapp_api.tokens import issue_token
from projections.case_deadlines import DeadlineView
from projections.case_progress import AnonymousProgress, CaseProgress, CaseSummary, PublicStep, TimelineEntry
from projections.work_queue import LightCounts, QueueItem, QueuePage

pytestmark = pytest.mark.unit

CONFIG = ApiConfig(
    jwt_secret="test-secret-" + "q" * 40, token_ttl_seconds=600, dev_login=False, max_body_bytes=4096
)
AT = datetime(2026, 9, 29, 9, 0, tzinfo=UTC)
CASE_ID = UUID(int=7)
NUMBER = "430100202609280000001"
KEY = "a" * 64
DEADLINE = DeadlineView(
    start=date(2026, 9, 29),
    limit_amount=3,
    limit_unit="working",
    due=date(2026, 10, 9),
    provisional=False,
    years_assumed=(),
    working_days_left=1,
    light="yellow",
    suspended=False,
)
SUMMARY = CaseSummary(
    case_id=CASE_ID,
    number=NUMBER,
    item_code="FOOD",
    applicant_kind="person",
    applicant_name="张*",
    status=CaseStatus.IN_HANDLING,
    status_label="办理中",
    current_step="转SCJGJ办理",
    submitted_at=AT,
    accepted_on=date(2026, 9, 29),
    receipt_number="SL-1",
    deadline=DEADLINE,
)


def entry(version: int, label: str, internal: bool = False) -> TimelineEntry:
    return TimelineEntry(
        version=version,
        at=AT,
        label=label,
        internal=internal,
        actor_role="clerk",
        actor_name="周*",
        channel="hall_window",
    )


PROGRESS = CaseProgress(
    case=SUMMARY,
    submitter="citizen-zhang",
    applicant_id="430***********1234",
    applicant_phone="138****1234",
    departments=("SCJGJ",),
    timeline=(
        entry(1, "提交申请"),
        entry(2, "已受理"),
        entry(3, "转SCJGJ办理"),
        entry(4, "承办签收", internal=True),
    ),
    next_steps=(NextStep(action=NextAction.RATE),),
)
FINISHED_TASK = QueueItem(
    case_id=CASE_ID,
    number=NUMBER,
    item_code="FOOD",
    department="SCJGJ",
    step=TaskStep.APPROVE,
    step_label="批准",
    state="approved",
    claimed_by=None,
    routed_at=AT,
    finished_at=datetime(2026, 10, 9, 2, 0, tzinfo=UTC),
    case_status=CaseStatus.CONCLUDED,
    deadline=msgspec.structs.replace(DEADLINE, light=None, working_days_left=None),
)


class FakeCases:
    def __init__(self) -> None:
        self.anonymous_calls: list[tuple[str, str]] = []

    async def my_cases(self, subject: str) -> list[CaseSummary]:
        return [SUMMARY] if subject == "citizen-zhang" else []

    async def progress(self, case: UUID | str) -> CaseProgress | None:
        return PROGRESS if case in (NUMBER, str(CASE_ID)) else None

    async def anonymous_progress(self, receipt_number: str, password: str) -> AnonymousProgress | None:
        self.anonymous_calls.append((receipt_number, password))
        if (receipt_number, password) != ("SL-1", "right"):
            return None
        return AnonymousProgress(
            number=NUMBER,
            item_code="FOOD",
            status=CaseStatus.IN_HANDLING,
            status_label="办理中",
            current_step="转SCJGJ办理",
            accepted_on=date(2026, 9, 29),
            deadline=DEADLINE,
            timeline=(PublicStep(at=AT, label="提交申请"),),
        )

    async def dossier(self, applicant_key: str) -> list[CaseSummary]:
        return [SUMMARY] if applicant_key == KEY else []


class FakeQueue:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def queue(self, department: str, **filters: Any) -> QueuePage:
        self.calls.append({"department": department, **filters})
        items = [FINISHED_TASK] if filters["scope"] == "finished" else []
        return QueuePage(
            items=items,
            total=len(items),
            page=filters["page"],
            size=filters["size"],
            counts=LightCounts(red=2, yellow=1, green=0, none=3),
        )


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


@pytest.fixture
def fakes() -> tuple[FakeCases, FakeQueue]:
    return FakeCases(), FakeQueue()


@pytest.fixture
async def client(fakes: tuple[FakeCases, FakeQueue]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    cases: CaseReader = fakes[0]  # the fakes satisfy the ports, checked by mypy
    queue: QueueReader = fakes[1]
    app = create_app(
        CONFIG,
        health=healthy,
        registry=CollectorRegistry(),
        route_handlers=[Router(path="/api/v1", route_handlers=case_query_handlers(cases, queue))],
    )
    async with AsyncTestClient(app) as c:
        yield c


def as_(role: Role, subject: str = "someone", department: str | None = None) -> dict[str, str]:
    principal = Principal(subject=subject, role=role, department=department)
    return {"Authorization": f"Bearer {issue_token(CONFIG, principal)}"}


async def test_citizen_reads_own_case_without_internal_steps(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get(
        f"/api/v1/cases/{NUMBER}/progress", headers=as_(Role.CITIZEN, "citizen-zhang")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["label"] for s in body["timeline"]] == ["提交申请", "已受理", "转SCJGJ办理"]
    assert "actorName" not in body["timeline"][0]  # staff names are for staff
    assert (body["applicantId"], body["applicantPhone"], body["case"]["applicantName"]) == (
        "430***********1234",
        "138****1234",
        "张*",
    )
    assert body["case"]["deadline"]["light"] == "yellow" and body["nextSteps"][0]["label"] == "评价"
    assert "submitter" not in body
    mine = await client.get("/api/v1/cases", headers=as_(Role.CITIZEN, "citizen-zhang"))
    assert [c["number"] for c in mine.json()] == [NUMBER]


async def test_another_citizens_case_is_403(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get(f"/api/v1/cases/{CASE_ID}/progress", headers=as_(Role.CITIZEN, "citizen-li"))
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    missing = await client.get("/api/v1/cases/nope/progress", headers=as_(Role.CITIZEN, "citizen-zhang"))
    assert missing.status_code == 404


async def test_officer_only_with_a_task_on_the_case(client: AsyncTestClient[Litestar]) -> None:
    path = f"/api/v1/cases/{NUMBER}/progress"
    ours = await client.get(path, headers=as_(Role.OFFICER, "o-1", "SCJGJ"))
    assert ours.status_code == 200
    assert len(ours.json()["timeline"]) == 4 and ours.json()["timeline"][3]["actorName"] == "周*"
    assert (await client.get(path, headers=as_(Role.OFFICER, "o-2", "GAJ"))).status_code == 403
    assert (await client.get(path, headers=as_(Role.AUDITOR, "aud"))).status_code == 200
    assert (await client.get(path, headers=as_(Role.CLERK, "clerk"))).status_code == 200
    assert (await client.get(path, headers=as_(Role.PARTNER, "430200"))).status_code == 403


async def test_anonymous_progress_has_one_answer_for_every_miss(
    client: AsyncTestClient[Litestar], fakes: tuple[FakeCases, FakeQueue]
) -> None:
    right = await client.get("/api/v1/progress", params={"receipt": "SL-1", "password": "right"})
    assert right.status_code == 200 and right.json()["statusLabel"] == "办理中"
    assert "applicantName" not in right.json()
    wrong_password = await client.get("/api/v1/progress", params={"receipt": "SL-1", "password": "wrong"})
    wrong_receipt = await client.get("/api/v1/progress", params={"receipt": "SL-9", "password": "right"})
    assert wrong_password.status_code == wrong_receipt.status_code == 404
    assert wrong_password.json() == wrong_receipt.json()
    assert fakes[0].anonymous_calls[-2:] == [("SL-1", "wrong"), ("SL-9", "right")]
    assert (await client.get("/api/v1/progress", params={"receipt": "SL-1"})).status_code == 400


async def test_queue_is_the_officers_own_department(
    client: AsyncTestClient[Litestar], fakes: tuple[FakeCases, FakeQueue]
) -> None:
    response = await client.get(
        "/api/v1/staff/queue",
        params={"state": "claimed", "light": "red", "page": 2, "size": 5},
        headers=as_(Role.OFFICER, "o-1", "SCJGJ"),
    )
    assert response.status_code == 200, response.text
    assert fakes[1].calls == [
        {
            "department": "SCJGJ",
            "scope": "open",  # by default only open work
            "state": "claimed",
            "light": "red",
            "item": None,
            "page": 2,
            "size": 5,
        }
    ]
    assert response.json() == {
        "items": [],
        "total": 0,
        "page": 2,
        "size": 5,
        "counts": {"red": 2, "yellow": 1, "green": 0, "none": 3},
    }
    assert (await client.get("/api/v1/staff/queue", headers=as_(Role.OFFICER, "o-3"))).status_code == 403
    assert (await client.get("/api/v1/staff/queue", headers=as_(Role.CLERK, "c"))).status_code == 403
    for wrong in ({"light": "blue"}, {"scope": "closed"}, {"state": "waiting"}, {"size": 101}):
        bad = await client.get("/api/v1/staff/queue", params=wrong, headers=as_(Role.OFFICER, "o", "SCJGJ"))
        assert bad.status_code == 400, wrong


async def test_queue_history_of_finished_tasks(
    client: AsyncTestClient[Litestar], fakes: tuple[FakeCases, FakeQueue]
) -> None:
    response = await client.get(
        "/api/v1/staff/queue",
        params={"scope": "finished", "item": "FOOD"},
        headers=as_(Role.OFFICER, "o-1", "SCJGJ"),
    )
    assert response.status_code == 200, response.text
    assert fakes[1].calls[-1] == {
        "department": "SCJGJ",
        "scope": "finished",
        "state": None,
        "light": None,
        "item": "FOOD",
        "page": 1,
        "size": 20,
    }
    body = response.json()
    (task,) = body["items"]
    assert (task["state"], task["stepLabel"], task["caseStatus"]) == ("approved", "批准", "concluded")
    assert (task["finishedAt"], task["deadline"]["light"]) == ("2026-10-09T02:00:00Z", None)
    assert (body["total"], body["counts"]["none"]) == (1, 3)


async def test_dossier_for_clerks_and_auditors(client: AsyncTestClient[Litestar]) -> None:
    path = f"/api/v1/staff/dossiers/{KEY}"
    assert [c["number"] for c in (await client.get(path, headers=as_(Role.AUDITOR, "a"))).json()] == [NUMBER]
    assert (await client.get(path, headers=as_(Role.CLERK, "c"))).status_code == 200
    assert (await client.get(path, headers=as_(Role.OFFICER, "o", "SCJGJ"))).status_code == 403
    assert (await client.get(path, headers=as_(Role.CITIZEN, "citizen-zhang"))).status_code == 403
    assert (
        await client.get("/api/v1/staff/dossiers/430102199001011234", headers=as_(Role.CLERK, "c"))
    ).status_code == 400
