"""Complaints on PostgreSQL: the service's commands, one complaint per retried submission, the timers
fired through the TimerWorker, and the read model that hides an anonymous submitter from staff."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.calendar_data import base_calendar
from backend.complaints.service import ComplaintNotFoundError, ComplaintService
from backend.complaints.timers import OVERDUE, UNCONFIRMED, ComplaintTimers, complaint_handlers, overdue_key
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from backend.timers import TimerWorker
from domain.case import Actor, Channel, Role
from domain.case.checks import BEIJING
from domain.complaint import Complaint, ComplaintCategory, ComplaintState, ComplaintStateError
from domain.personal import Phone, id_check_char
from projections.complaint_reads import ComplaintQueries
from projections.complaints import ComplaintProjection
from tests.integration.store_support import Clock, catch_up

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=BEIJING)  # a Monday
REGION = "430100"
DEPT = "SCJGJ"
CITIZEN = Actor(id="citizen-complaints", role=Role.CITIZEN)
DESK = Actor(id="clerk-12345", role=Role.CLERK)
OFFICER = Actor(id="officer-scjgj", role=Role.OFFICER, department=DEPT)
ID_NUMBER = "43010219900101123" + id_check_char("43010219900101123")


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
def store(recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> AggregateStore:
    return AggregateStore(recorder, mapper, snapshot_every=0)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def service(store: AggregateStore, pool: asyncpg.Pool, clock: Clock) -> ComplaintService:
    return ComplaintService(store, pool, clock=clock, calendar=base_calendar, region=REGION)


async def file(service: ComplaintService, actor: Actor = CITIZEN, **changes: Any) -> Complaint:
    args: dict[str, Any] = {
        "category": ComplaintCategory.CANNOT_GET_DONE,
        "title": "营业执照变更跑了三次",
        "description": f"窗口没有一次性告知，我的电话13812341234，身份证{ID_NUMBER}",
        "hall": "CSSMZJ",
        "contact": Phone("13812341234"),
    }
    return await service.submit(actor, Channel.MINIAPP, **(args | changes))


async def pending(pool: asyncpg.Pool) -> dict[str, datetime]:
    rows = await pool.fetch("SELECT key, due_at FROM due_timers WHERE fired_at IS NULL")
    return {r["key"]: r["due_at"] for r in rows}


async def test_a_complaint_is_routed_answered_reopened_once_and_closed(
    service: ComplaintService, clock: Clock, recorder: EventRecorder
) -> None:
    first = await file(service, client_request_id="req-1")
    head = await recorder.max_notification_id()
    again = await file(service, client_request_id="req-1")
    assert again.id == first.id and again.number == first.number
    assert await recorder.max_notification_id() == head  # a retried submission appends nothing
    assert first.number == f"TS{REGION}2026030200001"
    assert (await file(service)).number == f"TS{REGION}2026030200002"

    routed = await service.route(DESK, first.id, DEPT)
    assert routed.state is ComplaintState.ROUTED
    assert routed.due == base_calendar().add_working_days(T0.date(), 10)
    await service.answer(OFFICER, first.id, "已约谈窗口", resolved=True)
    clock.now = T0 + timedelta(days=1)
    reopened = await service.confirm(CITIZEN, first.id, False, "没解决")
    assert reopened.state is ComplaintState.REOPENED
    assert reopened.due == base_calendar().add_working_days(clock.now.date(), 10)
    await service.answer(OFFICER, first.id, "已开通绿色通道", resolved=True)
    closed = await service.confirm(CITIZEN, first.id, True)
    assert closed.state is ComplaintState.CLOSED and closed.satisfied and not closed.escalated
    with pytest.raises(ComplaintStateError):
        await service.withdraw(CITIZEN, first.id, "算了")
    with pytest.raises(ComplaintNotFoundError):
        await service.complaint(uuid.uuid4())


async def test_the_overdue_and_unconfirmed_timers_fire_through_the_worker(
    service: ComplaintService, clock: Clock, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    complaint = await file(service)
    routed = await service.route(DESK, complaint.id, DEPT)
    assert routed.due is not None
    worker = TimerWorker(pool, complaint_handlers(service), clock)
    await catch_up(pool, mapper, ComplaintTimers())
    midnight = datetime.combine(routed.due + timedelta(days=1), time(0), BEIJING)
    assert await pending(pool) == {overdue_key(complaint.id, routed.due): midnight}
    clock.now = midnight - timedelta(seconds=1)
    assert await worker.fire_due() == 0
    clock.now = midnight + timedelta(hours=1)
    assert await worker.fire_due() == 1
    marked = await service.complaint(complaint.id)
    assert marked.overdue == (routed.due,) and marked.state is ComplaintState.ROUTED

    answered = await service.answer(OFFICER, complaint.id, "已处理", resolved=True)
    await catch_up(pool, mapper, ComplaintTimers())
    window = await pending(pool)
    assert set(window) == {f"{UNCONFIRMED}:{complaint.id}"}
    clock.now = window[f"{UNCONFIRMED}:{complaint.id}"]
    assert clock.now == midnight + timedelta(hours=1, days=7)  # answered then, 7 days to confirm
    assert await worker.fire_due() == 1
    closed = await service.complaint(complaint.id)
    assert closed.state is ComplaintState.CLOSED and closed.closed_by_default
    assert closed.version == answered.version + 1


async def test_an_answer_in_time_cancels_the_overdue_timer_and_a_verdict_the_window(
    service: ComplaintService, clock: Clock, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    complaint = await file(service)
    await service.route(DESK, complaint.id, DEPT)
    await catch_up(pool, mapper, ComplaintTimers())
    assert {k.split(":")[0] for k in await pending(pool)} == {OVERDUE}
    await service.answer(OFFICER, complaint.id, "已处理", resolved=False)
    reopened = await service.confirm(CITIZEN, complaint.id, False, "还是不行")
    assert reopened.due is not None
    await catch_up(pool, mapper, ComplaintTimers())  # the answer and the reopening in one batch
    assert set(await pending(pool)) == {overdue_key(complaint.id, reopened.due)}
    await service.answer(OFFICER, complaint.id, "已解决", resolved=True)
    await catch_up(pool, mapper, ComplaintTimers())
    assert set(await pending(pool)) == {f"{UNCONFIRMED}:{complaint.id}"}
    escalated = await service.confirm(CITIZEN, complaint.id, False, "仍不满意")
    assert escalated.state is ComplaintState.CLOSED and escalated.escalated
    await catch_up(pool, mapper, ComplaintTimers())
    assert await pending(pool) == {}
    clock.now = T0 + timedelta(days=60)
    assert await TimerWorker(pool, complaint_handlers(service), clock).fire_due() == 0


async def test_staff_never_see_an_anonymous_submitter_and_free_text_is_scrubbed(
    service: ComplaintService, clock: Clock, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    hidden = await file(service, anonymous_to_staff=True)
    known = await file(service, Actor(id="citizen-known", role=Role.CITIZEN), title="电话13998765432没人接")
    await service.route(DESK, hidden.id, DEPT)
    await catch_up(pool, mapper, ComplaintProjection())
    queries = ComplaintQueries(pool, base_calendar, clock)

    desk = {v.complaint_id: v for v in await queries.unrouted()}
    assert set(desk) == {known.id}
    assert desk[known.id].submitter == "citizen-known" and desk[known.id].title == "电话139****5432没人接"
    queue = await queries.department_queue(DEPT)
    assert [v.complaint_id for v in queue] == [hidden.id]
    view = queue[0]
    assert view.submitter is None and view.contact is None and view.anonymous
    assert "13812341234" not in view.description and ID_NUMBER not in view.description
    assert "138****1234" in view.description and "430***********" in view.description
    assert (view.state, view.light, view.working_days_left) == ("routed", "green", 10)
    assert (await queries.one(hidden.id)) == view
    mine = {v.complaint_id: v for v in await queries.mine(CITIZEN.id)}
    assert set(mine) == {hidden.id}
    assert mine[hidden.id].submitter == CITIZEN.id and mine[hidden.id].contact == "138****1234"

    clock.now = T0 + timedelta(days=13)  # 1 working day left
    assert (await queries.one(hidden.id)).light == "yellow"  # type: ignore[union-attr]
    clock.now = T0 + timedelta(days=30)
    assert (await queries.one(hidden.id)).light == "red"  # type: ignore[union-attr]
