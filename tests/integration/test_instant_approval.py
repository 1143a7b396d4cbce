"""秒批 on PostgreSQL: a submission through the case service, its timer set by the consumer, then fired."""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.utils import get_topic

from backend.calendar_data import base_calendar
from backend.cases.access import Caller
from backend.cases.deadlines import INSTANT_APPROVAL, instant_key
from backend.cases.service import CaseService
from domain.case import (
    AcceptanceMode,
    Case,
    CaseStatus,
    Channel,
    ELicenceRef,
    ResultCode,
    Role,
    UploadedFile,
)
from domain.case.values import MaterialSource
from projections.case_progress import CaseProgressProjection, CaseQueries
from tests.integration.case_deadlines_support import (  # noqa: F401 (fixture)
    FOOD,
    PASSWORDS,
    ZHANG,
    Harness,
    at,
    harness_fixture,
)

pytestmark = pytest.mark.integration

CROSS_PROVINCE = "11430100MB1D48251H200500200000"  # 跨省异地就医备案: 秒批; M01 (or 医保电子凭证), M02
CITIZEN = Caller(subject="citizen-zhang", role=Role.CITIZEN, name="张三")
SUBMITTED_AT = at(2026, 5, 6, 10)  # a Wednesday
SHA = "ab" * 32
CARD = ELicenceRef("H43010219900307123400", issuer="长沙市医疗保障局")


async def submit(harness: Harness, item: str, materials: dict[str, MaterialSource], request: str) -> UUID:
    """申请 through the case service at SUBMITTED_AT, then let the deadlines consumer see it."""
    service = CaseService(
        harness.store,
        harness.pool,
        harness.catalogue,
        region="430100",
        clock=harness.clock,
        materials_exist={SHA}.__contains__,
        password_hasher=PASSWORDS.hash,
    )
    harness.clock.now = SUBMITTED_AT
    done = await service.submit(
        CITIZEN, item_code=item, client_request_id=request, applicant=ZHANG, materials=materials
    )
    await harness.catch_up()
    return done.case_id


async def test_a_complete_submission_of_an_eligible_item_is_approved_at_once(harness: Harness) -> None:
    case_id = await submit(harness, CROSS_PROVINCE, {"M01": CARD, "M02": UploadedFile(SHA)}, "complete")
    assert (await harness.timers(case_id))[INSTANT_APPROVAL] == (SUBMITTED_AT, False)

    assert await harness.fire_at(SUBMITTED_AT) == 1
    case = await harness.case(case_id)
    assert case.status is CaseStatus.CONCLUDED and case.approved
    assert case.conclusion is not None and case.conclusion.result is ResultCode.APPROVED
    assert case.conclusion.concluded_by == "system:秒批"
    terms = case.acceptance
    assert terms is not None and terms.mode is AcceptanceMode.INSTANT
    assert terms.receipt_number == f"SL{case.number}" and terms.accepted_on == SUBMITTED_AT.date()
    # The event itself names the rule that decided, and the timer that asked it.
    stored = await harness.recorder.select_events(case_id)
    assert [e.topic for e in stored] == [get_topic(Case.Submitted), get_topic(Case.InstantlyApproved)]
    event = harness.mapper.to_domain_event(stored[1])
    assert isinstance(event, Case.InstantlyApproved)
    assert (event.acceptance.rule_id, event.acceptance.rule_version) == ("秒批.材料齐全", "2026.1")
    assert event.actor.id == "system:秒批" and event.request_id == instant_key(case_id)
    # The deemed-acceptance timer went with the approval; the 秒批 one stays fired.
    assert await harness.timers(case_id) == {INSTANT_APPROVAL: (SUBMITTED_AT, True)}

    # Fired again (the worker fires at least once): the approval stays one event.
    await harness.worker.handlers[INSTANT_APPROVAL](
        instant_key(case_id), {"case_id": str(case_id), "item_code": CROSS_PROVINCE}
    )
    assert (await harness.case(case_id)).version == 2

    # What the applicant reads: concluded, approved, and the step in plain words.
    await harness.catch_up(CaseProgressProjection())
    progress = await CaseQueries(harness.pool, base_calendar, harness.clock).progress(case_id)
    assert progress is not None
    summary = progress.case
    assert (summary.status, summary.status_label, summary.current_step) == (
        CaseStatus.CONCLUDED,
        "已办结",
        "秒批通过",
    )
    assert summary.receipt_number == terms.receipt_number and summary.accepted_on == SUBMITTED_AT.date()
    assert [entry.label for entry in progress.timeline] == ["提交申请", "秒批通过"]


async def test_a_missing_material_leaves_the_case_to_the_office(harness: Harness) -> None:
    case_id = await submit(harness, CROSS_PROVINCE, {"M01": CARD}, "short")
    assert await harness.fire_at(SUBMITTED_AT) == 1
    case = await harness.case(case_id)
    assert case.status is CaseStatus.SUBMITTED and case.acceptance is None and case.version == 1
    timers = await harness.timers(case_id)
    assert timers[INSTANT_APPROVAL] == (SUBMITTED_AT, True)  # done: the rule said no
    assert timers["case.deem_accepted"][1] is False  # the normal way: 5 days for the office


async def test_an_item_without_instant_approval_gets_no_such_timer(harness: Harness) -> None:
    case_id = await submit(harness, FOOD, {"M01": UploadedFile(SHA)}, "food")
    assert set(await harness.timers(case_id)) == {"case.deem_accepted"}


async def test_a_case_withdrawn_before_the_timer_fires_is_left_alone(harness: Harness) -> None:
    complete: dict[str, MaterialSource] = {"M01": CARD, "M02": UploadedFile(SHA)}
    seen, unseen = [await submit(harness, CROSS_PROVINCE, complete, r) for r in ("seen", "unseen")]
    for case_id in (seen, unseen):
        case = await harness.case(case_id)
        case.withdraw(case.submitted_by, Channel.MINIAPP, SUBMITTED_AT, reason="已无需备案")
        if case_id == seen:
            await harness.save(case)  # the consumer sees the withdrawal: the timer goes
        else:
            await harness.store.save(case)  # the consumer lags: the timer fires on a withdrawn case
    assert await harness.timers(seen) == {}
    assert await harness.fire_at(SUBMITTED_AT) == 1
    for case_id in (seen, unseen):
        case = await harness.case(case_id)
        assert case.status is CaseStatus.WITHDRAWN and case.acceptance is None and case.version == 2
    # Fired and done, and the withdrawal, once the consumer saw it, took the deemed-acceptance timer.
    assert await harness.timers(unseen) == {INSTANT_APPROVAL: (SUBMITTED_AT, True)}
