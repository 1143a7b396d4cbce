"""办理地 on PostgreSQL: each step of a case received from a partner city goes back to it, in order, once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import msgspec
import pytest
from eventsourcing.persistence import Mapper

from backend.cases.access import Caller
from backend.cases.passwords import QueryPasswords
from backend.cases.service import CaseService
from backend.consumers.rebuild import rebuild
from backend.federation.followups import follow_up_handlers
from backend.federation.handlers import AppliedMessage
from backend.federation.handling_rules import handled_case_id, parties
from backend.federation.reports import TongbanReports
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import generate_data_key, parse_data_keys
from backend.store.recorder import EventRecorder
from domain.case import CaseStatus, MaterialIssue, ResultCode, Role, UploadedFile
from projections.catalogue import CatalogueQueries, department_names
from tests.integration.store_support import Clock, catch_up
from tests.integration.tongban_handling_support import (
    CHANGSHA,
    NOW,
    SOLE_TRADER,
    ZHANG,
    ZHUZHOU,
    Handling,
    handling,
    outbox,
    requested,
)

pytestmark = pytest.mark.integration

CLERK = Caller(subject="clerk-1", role=Role.CLERK, name="周七", hall="SMZJ")
OFFICER = Caller(subject="officer-scjgj-1", role=Role.OFFICER, department="SCJGJ")
CITIZEN = Caller(subject="citizen-li", role=Role.CITIZEN, name="李四")
SCJGJ = "长沙市市场监督管理局"
PERSON = parties(ZHANG, None)[0]
PASSWORDS = QueryPasswords(parse_data_keys(generate_data_key("2026-q")))


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
async def city(pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> Handling:
    return await handling(pool, recorder, mapper)


@pytest.fixture
def service(city: Handling) -> CaseService:
    return CaseService(
        city.store, city.pool, CatalogueQueries(city.pool), region=CHANGSHA, clock=Clock(NOW),
        materials_exist=lambda _: True, password_hasher=PASSWORDS.hash,
    )  # fmt: skip


def reports(pool: asyncpg.Pool) -> TongbanReports:
    async def names(codes: Sequence[str]) -> dict[str, str]:
        return await department_names(pool, codes)

    return TongbanReports(names)


async def test_every_step_goes_back_in_order_and_a_rebuild_sends_nothing_new(
    city: Handling, service: CaseService, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    handoff = uuid.uuid4()
    await city.handler(requested(handoff))
    case_id = handled_case_id(ZHUZHOU, handoff)
    number = (await city.store.get(case_id)).number
    # A case of our own citizen's, beside it: nothing of it goes anywhere.
    await service.submit(CITIZEN, item_code=SOLE_TRADER, client_request_id="own", applicant=PERSON)
    consumer = reports(city.pool)
    await catch_up(city.pool, mapper, consumer)
    assert [(s.seq, s.kind, s.payload) for s in await outbox(city.pool, handoff)] == [
        (1, "handoff.accepted", {"caseNumber": number}),
    ]

    await service.accept(CLERK, case_id)
    await service.route(CLERK, case_id)
    await catch_up(city.pool, mapper, consumer)  # a run midway: the link and the facts carry over
    for _step in ("承办", "审核", "批准"):
        await service.claim_task(OFFICER, case_id, department="SCJGJ")
        await service.approve_task_step(OFFICER, case_id, department="SCJGJ", opinion="同意")
    await service.conclude(CLERK, case_id, result=ResultCode.APPROVED)
    await catch_up(city.pool, mapper, consumer)

    sent = await outbox(city.pool, handoff)
    assert [s.seq for s in sent] == list(range(1, 11))
    assert sent[0].kind == "handoff.accepted" and sent[-1].kind == "decision.reported"
    assert sent[-1].payload == {"result": "approved", "reason": None}
    steps = [(s.payload["step"], s.payload["label"], s.payload["internal"]) for s in sent[1:-1]]
    assert all(s.kind == "status.reported" for s in sent[1:-1])
    assert steps == [
        ("case.accepted", "已受理", False),
        ("case.routed", f"转{SCJGJ}办理", False),
        ("task.claimed", f"{SCJGJ}：承办签收", True),
        ("task.step_approved", f"{SCJGJ}：承办通过", False),
        ("task.claimed", f"{SCJGJ}：审核签收", True),
        ("task.step_approved", f"{SCJGJ}：审核通过", False),
        ("task.claimed", f"{SCJGJ}：批准签收", True),
        ("task.approved", f"{SCJGJ}：批准通过", False),
    ]
    assert all(s.payload["occurredAt"].startswith("2026-09-29T10:00:00") for s in sent[1:-1])
    total = await city.pool.fetchval("SELECT count(*) FROM federation_outbox")
    assert total == len(sent)  # the citizen's own case sent nothing

    # A rebuild from position 0, one event a batch (Submitted and its link apart): the same ids, dropped.
    await rebuild(recorder, consumer, mapper.to_domain_event, batch_size=1)
    assert await outbox(city.pool, handoff) == sent
    assert await city.pool.fetchval("SELECT count(*) FROM federation_outbox") == total
    rows = await city.pool.fetch("SELECT case_id, partner, handoff, base_version FROM tongban_reports")
    assert [tuple(r) for r in rows] == [(case_id, ZHUZHOU, handoff, 2)]


async def approve(service: CaseService, case_id: uuid.UUID) -> None:
    await service.accept(CLERK, case_id)
    await service.route(CLERK, case_id)
    for _step in ("承办", "审核", "批准"):
        await service.claim_task(OFFICER, case_id, department="SCJGJ")
        await service.approve_task_step(OFFICER, case_id, department="SCJGJ", opinion="同意")
    await service.conclude(CLERK, case_id, result=ResultCode.APPROVED)


async def test_our_windows_refusal_goes_back_as_a_refusal_with_the_path_forward(
    city: Handling, service: CaseService, mapper: Mapper[uuid.UUID]
) -> None:
    handoff = uuid.uuid4()
    await city.handler(requested(handoff))
    case_id = handled_case_id(ZHUZHOU, handoff)
    await service.refuse_acceptance(
        CLERK, case_id, reason="经营场所不在本市", path_forward="请向经营场所所在地申请"
    )
    await catch_up(city.pool, mapper, reports(city.pool))
    sent = await outbox(city.pool, handoff)
    assert [(s.seq, s.kind) for s in sent] == [(1, "handoff.accepted"), (2, "handoff.refused")]
    assert sent[1].payload == {"reason": "经营场所不在本市", "pathForward": "请向经营场所所在地申请"}


async def test_the_paper_coming_the_result_sent_and_the_paper_archived(
    city: Handling, service: CaseService, mapper: Mapper[uuid.UUID]
) -> None:
    handoff = uuid.uuid4()
    await city.handler(requested(handoff))
    case_id = handled_case_id(ZHUZHOU, handoff)
    handlers = follow_up_handlers(lambda: city.store, Clock(NOW))
    posted = follow_up(handoff, 2, "materials.posted", waybillNumber="EMS1001", carrier="EMS")
    await handlers["materials.posted"](posted)
    await handlers["materials.posted"](posted)  # applied again after a crash: nothing more
    await approve(service, case_id)
    await service.mail_result(CLERK, case_id, waybill_number="EMS3001")
    await service.archive_paper_materials(CLERK, case_id)
    case = await city.store.get(case_id)
    assert case.paper is not None and case.paper.waybill_number == "EMS1001" and case.paper.archived_at
    await catch_up(city.pool, mapper, reports(city.pool))
    sent = await outbox(city.pool, handoff)
    kinds = [s.kind for s in sent]
    assert kinds[-3:] == ["decision.reported", "result.delivered", "materials.archived"]
    assert sent[1].kind == "status.reported" and sent[1].payload["internal"] is True  # the paper they posted
    assert {k: sent[-2].payload[k] for k in ("method", "reference", "carrier")} == {
        "method": "mail", "reference": "EMS3001", "carrier": "EMS",
    }  # fmt: skip
    assert [s.seq for s in sent] == list(range(1, len(sent) + 1))


async def test_a_withdrawal_there_withdraws_our_case_once_and_not_after_our_decision(
    city: Handling, service: CaseService
) -> None:
    handlers = follow_up_handlers(lambda: city.store, Clock(NOW))
    open_one, decided, refused = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await city.handler(requested(open_one))
    await city.handler(requested(decided))
    await approve(service, handled_case_id(ZHUZHOU, decided))
    withdrawal = follow_up(open_one, 2, "handoff.withdrawn", reason="申请人撤回")
    await handlers["handoff.withdrawn"](withdrawal)
    await handlers["handoff.withdrawn"](withdrawal)
    withdrawn = await city.store.get(handled_case_id(ZHUZHOU, open_one))
    assert withdrawn.status is CaseStatus.WITHDRAWN and withdrawn.conclusion.concluded_by == ZHUZHOU
    assert [type(e).__name__ for e in await events(city, open_one)].count("Concluded") == 1
    # It crossed our decision on the way, or the handoff opened no case: nothing changes, nothing raises.
    before = (await city.store.get(handled_case_id(ZHUZHOU, decided))).version
    await handlers["handoff.withdrawn"](follow_up(decided, 2, "handoff.withdrawn"))
    assert (await city.store.get(handled_case_id(ZHUZHOU, decided))).version == before
    await handlers["handoff.withdrawn"](follow_up(refused, 2, "handoff.withdrawn"))
    assert not await city.store.recorder.select_events(handled_case_id(ZHUZHOU, refused), limit=1)


def follow_up(handoff: uuid.UUID, seq: int, kind: str, **payload: object) -> AppliedMessage:
    return AppliedMessage(
        partner=ZHUZHOU, message_id=uuid.uuid4(), handoff=handoff, seq=seq, kind=kind,
        payload=msgspec.json.encode(payload), sent_at=NOW, received_at=NOW,
    )  # fmt: skip


async def events(city: Handling, handoff: uuid.UUID) -> list[object]:
    stored = await city.store.recorder.select_events(handled_case_id(ZHUZHOU, handoff))
    return [city.store.mapper.to_domain_event(e) for e in stored]


async def test_our_notice_goes_back_and_the_supplement_from_there_answers_it(
    city: Handling, service: CaseService, mapper: Mapper[uuid.UUID]
) -> None:
    handoff = uuid.uuid4()
    await city.handler(requested(handoff))
    case_id = handled_case_id(ZHUZHOU, handoff)
    issues = [MaterialIssue(material_id="M02", reason="复印件不清晰")]
    await service.request_materials(CLERK, case_id, issues=issues)
    await catch_up(city.pool, mapper, reports(city.pool))
    sent = await outbox(city.pool, handoff)
    assert (sent[-1].kind, sent[-1].payload["issues"]) == (
        "materials.requested", [{"materialId": "M02", "reason": "复印件不清晰"}],
    )  # fmt: skip
    handlers = follow_up_handlers(lambda: city.store, Clock(NOW))
    supplement = follow_up(handoff, 2, "materials.supplemented",
                           materials=[{"materialId": "M02", "sha256": "c" * 64}], attempt=1)  # fmt: skip
    await handlers["materials.supplemented"](supplement)
    await handlers["materials.supplemented"](supplement)  # applied again: nothing more
    case = await city.store.get(case_id)
    assert case.status is CaseStatus.PRE_REVIEW and case.materials["M02"] == UploadedFile("c" * 64)
    assert case.supplement_attempts == 1
    # A supplement nobody here asked for (a 容缺 owed there, say) changes nothing.
    unasked = [{"materialId": "M03", "sha256": "d" * 64}]
    await handlers["materials.supplemented"](
        follow_up(handoff, 3, "materials.supplemented", materials=unasked, attempt=2)
    )
    assert (await city.store.get(case_id)).version == case.version
    await catch_up(city.pool, mapper, reports(city.pool))
    back = await outbox(city.pool, handoff)
    assert back[-1].kind == "status.reported" and back[-1].payload["internal"] is True  # their own supplement
