"""好差评 on PostgreSQL: a concluded case is invited through the log, rated once, a 差评 opens its ticket."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.calendar_data import base_calendar
from backend.consumers import ensure_installed
from backend.consumers.batch import process_batch
from backend.consumers.generations import active_generation
from backend.rating.service import RatingRules, RatingService, TicketNotFoundError
from backend.rating.timers import DEFAULT, OVERDUE, REMIND, RatingTimers, rating_handlers
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from backend.timers import TimerWorker
from domain.case import Actor, Case, Channel, Role
from domain.case.checks import BEIJING
from domain.rating import (
    AlreadyRatedError,
    Level,
    Occasion,
    Rating,
    RectificationTicket,
    TicketState,
    online_rating_id,
    ticket_id,
)
from domain.rating import Channel as RatingChannel
from notifications.rating_notices import RatingNotices
from tests.integration.store_support import Clock, catch_up
from tests.unit.case_builders import CITIZEN, DEPT, ITEM, build_with_history

pytestmark = pytest.mark.integration

OFFICER = Actor(id="officer-q", role=Role.OFFICER, department=DEPT)
SUPERVISOR = Actor(id="hcp-admin", role=Role.SUPERVISOR)


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
def store(recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> AggregateStore:
    return AggregateStore(recorder, mapper, snapshot_every=0)


async def _no_items(codes: object) -> dict[str, None]:
    return {}


async def _no_names(codes: object) -> dict[str, str]:
    return {}


async def _departments() -> dict[str, str]:
    return {ITEM: DEPT}


async def concluded_case(store: AggregateStore) -> Case:
    case, events = build_with_history("concluded")
    await store.recorder.append([store.mapper.to_stored_event(e) for e in events])
    return case


async def test_a_concluded_case_is_invited_through_the_log_and_defaults_if_never_rated(
    store: AggregateStore, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    case = await concluded_case(store)
    assert case.conclusion is not None
    concluded = case.conclusion.concluded_at.astimezone(BEIJING)
    clock = Clock(concluded)
    service = RatingService(store, clock=clock, calendar=base_calendar, item_departments=_departments)
    worker = TimerWorker(pool, rating_handlers(service), clock)
    await catch_up(pool, mapper, RatingTimers())
    assert await worker.fire_due() == 1  # the invitation, due at once
    rating: Rating = await store.get(online_rating_id(case.id))
    assert (rating.applicant, rating.occasion.department, rating.occasion.case_number) == (
        CITIZEN.id, DEPT, case.number,
    )  # fmt: skip
    assert rating.closes_on == concluded.date() + timedelta(days=7)
    await catch_up(pool, mapper, RatingTimers())
    kinds = {
        r["kind"]: r["due_at"]
        for r in await pool.fetch("SELECT kind, due_at FROM due_timers WHERE fired_at IS NULL")
    }
    assert set(kinds) == {REMIND, DEFAULT}
    clock.now = kinds[DEFAULT]
    assert await worker.fire_due() == 2  # the reminder (long due) and the default
    rating = await store.get(online_rating_id(case.id))
    assert rating.reminded and rating.answer is not None and rating.answer.is_default
    assert rating.answer.level is Level.BASIC
    assert await service.invite_for_case(case.id) is not None  # a repeat invitation changes nothing
    assert (await store.get(online_rating_id(case.id))).version == rating.version
    # The reminder went to the applicant through the outbox (the first invitation goes with the conclusion).
    notices = RatingNotices(_no_items, _no_names, clock, cutoff=timedelta(days=3650))
    await ensure_installed(pool, notices)
    async with pool.acquire() as conn:
        generation = await active_generation(conn, notices.name)
        async with conn.transaction():
            await process_batch(conn, notices, mapper.to_domain_event, generation, 500)
    rows = await pool.fetch("SELECT purpose, recipient, variables FROM notification_outbox")
    assert [(r["purpose"], r["recipient"]) for r in rows] == [("rating_invitation", CITIZEN.id)]
    assert case.number in rows[0]["variables"]


async def test_a_bad_rating_opens_its_ticket_in_the_same_append_and_an_upheld_appeal_excludes_it(
    store: AggregateStore, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], recorder: EventRecorder
) -> None:
    case = await concluded_case(store)
    assert case.conclusion is not None
    clock = Clock(case.conclusion.concluded_at.astimezone(BEIJING) + timedelta(hours=1))
    service = RatingService(
        store, clock=clock, calendar=base_calendar, item_departments=_departments,
        rules=RatingRules(rectification_working_days=5),
    )  # fmt: skip
    await service.invite_for_case(case.id)
    rating_id = online_rating_id(case.id)
    head = await recorder.max_notification_id()
    rating, ticket = await service.rate(CITIZEN, Channel.MINIAPP, rating_id, 1, comment="窗口让我跑了三趟")
    assert ticket is not None and await recorder.max_notification_id() == (head or 0) + 2
    assert ticket.unit == DEPT and ticket.due == base_calendar().add_working_days(clock.now.date(), 5)
    again, same = await service.rate(CITIZEN, Channel.MINIAPP, rating_id, 1, comment="窗口让我跑了三趟")
    assert same is not None and same.id == ticket.id and again.version == rating.version  # a retry
    with pytest.raises(AlreadyRatedError):
        await service.rate(CITIZEN, Channel.MINIAPP, rating_id, 4)
    await catch_up(pool, mapper, RatingTimers())
    due = {r["kind"] for r in await pool.fetch("SELECT kind FROM due_timers WHERE fired_at IS NULL")}
    assert due == {OVERDUE}  # rated: the reminder and the default were cancelled
    await service.appeal(OFFICER, ticket.id, "同日对全部事项差评")
    decided = await service.decide_appeal(SUPERVISOR, ticket.id, True, "经核实属恶意差评")
    assert decided.state is TicketState.EXCLUDED and (await service.rating(rating_id)).excluded
    await catch_up(pool, mapper, RatingTimers())
    assert await pool.fetchval("SELECT count(*) FROM due_timers WHERE fired_at IS NULL") == 0


async def test_a_good_rating_opens_no_ticket(store: AggregateStore) -> None:
    case = await concluded_case(store)
    assert case.conclusion is not None
    clock = Clock(case.conclusion.concluded_at.astimezone(BEIJING))
    service = RatingService(store, clock=clock, calendar=base_calendar, item_departments=_departments)
    await service.invite_for_case(case.id)
    _, ticket = await service.rate(CITIZEN, Channel.MINIAPP, online_rating_id(case.id), 5)
    assert ticket is None
    with pytest.raises(TicketNotFoundError):
        await service.ticket(ticket_id(online_rating_id(case.id)))
    assert isinstance(await store.find(online_rating_id(case.id)), Rating)
    assert not isinstance(await store.find(ticket_id(online_rating_id(case.id))), RectificationTicket)


async def test_the_boards_and_metrics_rebuilt_from_zero_are_identical(
    store: AggregateStore, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], recorder: EventRecorder
) -> None:
    from backend.consumers.rebuild import rebuild
    from projections.rating_reads import RatingQueries
    from projections.ratings import RatingProjection

    clock = Clock(datetime(2026, 12, 1, 10, tzinfo=BEIJING))
    service = RatingService(store, clock=clock, calendar=base_calendar, item_departments=_departments)
    for n, level in enumerate([5, 4, 1, 3, 2]):
        occasion = Occasion(
            channel=RatingChannel.OFFLINE, department=DEPT if n % 2 else "GAJ", item_code=ITEM,
            case_id=uuid.uuid4(), case_number=f"4301002026120100000{n}", hall="SMZJ", window=f"0{n % 2}",
            clerk=f"clerk-{n % 2}",
        )  # fmt: skip
        rating_id = uuid.uuid4()
        await store.save(
            Rating.invite(rating_id, occasion=occasion, applicant=CITIZEN.id, indicator_set="offline-v1",
                          closes_on=date(2026, 12, 8), at=clock.now)
        )  # fmt: skip
        comment = "没有一次告知" if level <= 2 else None
        await service.rate(CITIZEN, Channel.MINIAPP, rating_id, level, comment=comment)
    projection = RatingProjection()
    await ensure_installed(pool, projection)
    async with pool.acquire() as conn:
        generation = await active_generation(conn, projection.name)
        async with conn.transaction():
            await process_batch(conn, projection, mapper.to_domain_event, generation, 500)
    reads = RatingQueries(pool, base_calendar, clock)
    since, until = date(2026, 1, 1), date(2026, 12, 31)
    before = (await reads.metrics(since, until), await reads.board("department", since, until, public=False))
    assert before[0].ratings == 5 and before[0].bad_ratings == 2 and before[0].tickets == 2
    assert await rebuild(recorder, RatingProjection(), mapper.to_domain_event, batch_size=2) == generation + 1
    after = (await reads.metrics(since, until), await reads.board("department", since, until, public=False))
    assert after == before


async def test_a_units_tickets_turn_yellow_two_working_days_before_due_and_red_after(
    store: AggregateStore, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    from projections.rating_reads import RatingQueries
    from projections.ratings import RatingProjection

    opened = datetime(2026, 12, 1, 10, tzinfo=BEIJING)  # a Tuesday
    clock = Clock(opened)
    service = RatingService(
        store, clock=clock, calendar=base_calendar, item_departments=_departments,
        rules=RatingRules(rectification_working_days=5),
    )  # fmt: skip
    occasion = Occasion(channel=RatingChannel.ONLINE, department=DEPT, item_code=ITEM, case_id=uuid.uuid4())
    rating_id = uuid.uuid4()
    await store.save(
        Rating.invite(rating_id, occasion=occasion, applicant=CITIZEN.id, indicator_set="online-v1",
                      closes_on=date(2026, 12, 8), at=opened)
    )  # fmt: skip
    _, ticket = await service.rate(CITIZEN, Channel.MINIAPP, rating_id, 2, comment="等待太久")
    assert ticket is not None and ticket.due == date(2026, 12, 8)  # five working days on
    projection = RatingProjection()
    await ensure_installed(pool, projection)
    async with pool.acquire() as conn:
        generation = await active_generation(conn, projection.name)
        async with conn.transaction():
            await process_batch(conn, projection, mapper.to_domain_event, generation, 500)
    reads = RatingQueries(pool, base_calendar, clock)
    lights = []
    for day in (date(2026, 12, 1), date(2026, 12, 4), date(2026, 12, 8), date(2026, 12, 9)):
        clock.now = datetime.combine(day, opened.timetz())
        (view,) = await reads.unit_tickets(DEPT)
        lights.append((view.working_days_left, view.light))
    # Tuesday: 5 left; Friday: 2 (Mon, Tue); the due day itself: 0; the day after: overdue.
    assert lights == [(5, "green"), (2, "yellow"), (0, "yellow"), (-1, "red")]
    assert await reads.unit_tickets("GAJ") == []  # another unit sees none of it


async def test_a_served_visit_someone_follows_is_invited_through_the_log_with_its_window_and_clerk(
    store: AggregateStore, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    from domain.hall_queue import HallQueue, QueueSpec, WindowSpec
    from domain.personal import PersonName
    from domain.rating import visit_rating_id

    clerk = Actor(id="clerk-7", role=Role.CLERK, hall="SMZJ")
    at = datetime(2026, 12, 1, 9, tzinfo=BEIJING)
    queue = HallQueue.open(
        "SMZJ", at.date(), [QueueSpec(code="A", prefix="A", name="市场准入")],
        [WindowSpec(code="03", queues=("A",))], actor=clerk, at=at,
    )  # fmt: skip
    queue.open_window("03", at=at, actor=clerk)
    followed = queue.check_in("A", at=at, actor=CITIZEN, channel=Channel.MINIAPP, subject=CITIZEN.id,
                              name=PersonName("张三"))  # fmt: skip
    kiosk = queue.check_in("A", at=at, actor=clerk, channel=Channel.KIOSK)  # nobody follows it online
    for _ in (followed, kiosk):
        queue.call_next("03", at=at + timedelta(minutes=1), actor=clerk)
        queue.serve("03", at=at + timedelta(minutes=9), actor=clerk)
    await store.save(queue)
    clock = Clock(at + timedelta(minutes=10))
    service = RatingService(store, clock=clock, calendar=base_calendar, item_departments=_departments)
    await catch_up(pool, mapper, RatingTimers())
    worker = TimerWorker(pool, rating_handlers(service), clock)
    assert await worker.fire_due() == 2  # one invitation timer per served ticket
    rating: Rating = await store.get(visit_rating_id("SMZJ", "2026-12-01", followed))
    o = rating.occasion
    assert (o.channel, o.hall, o.window, o.clerk, o.department, o.applicant_name) == (
        RatingChannel.OFFLINE, "SMZJ", "03", "clerk-7", "ZWFW", "张*",
    )  # fmt: skip
    assert rating.applicant == CITIZEN.id and rating.indicator_set == "offline-v1"
    assert await store.find(visit_rating_id("SMZJ", "2026-12-01", kiosk)) is None
