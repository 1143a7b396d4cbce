"""The booking service on PostgreSQL: racing holds never overbook, timers expire holds and record 爽约."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, time, timedelta

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.booking.service import BookingService, NotHallManagerError, PersonKeys
from backend.booking.timers import BookingTimers, booking_handlers, hold_key, no_show_key
from backend.calendar_data import base_calendar
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from backend.timers import TimerWorker
from domain.booking import (
    AppointmentState,
    BookingBannedError,
    BookingRules,
    HallConfig,
    ItemGroup,
    Session,
    Slot,
    SlotFullError,
    Visitor,
    Window,
    slot_id,
)
from domain.case import Actor, Channel, Role
from domain.case.checks import BEIJING
from domain.personal import IdNumber, PersonName, id_check_char
from projections.appointments import AppointmentProjection, AppointmentQueries
from tests.integration.store_support import Clock, catch_up

pytestmark = pytest.mark.integration

MONDAY = date(2026, 12, 7)
TUESDAY, WEDNESDAY = MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)
ITEM = "11430100006182474N010100300000"
MANAGER = Actor(id="manager-1", role=Role.MANAGER, hall="SMZJ")
CONFIG = HallConfig(
    name="市民之家",
    kind="市民之家",
    address="长沙市岳麓区金星中路",
    windows=tuple(Window(code=f"W{n}", groups=("A",)) for n in range(1, 5)),
    groups=(ItemGroup(code="A", name="市场准入", items=(ITEM,), prefix="A"),),
    sessions=(Session(start=time(9), end=time(12)),),
    rules=BookingRules(hold_minutes=5),
)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), BEIJING)


def visitor(n: int) -> Visitor:
    first17 = f"43010219900101{n % 1000:03d}"
    return Visitor(name=PersonName("张三"), id_number=IdNumber(first17 + id_check_char(first17)))


def citizen(n: int) -> Actor:
    return Actor(id=f"citizen-{n}", role=Role.CITIZEN)


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
def clock() -> Clock:
    return Clock(at(MONDAY, 9))


@pytest.fixture
def store(recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> AggregateStore:
    return AggregateStore(recorder, mapper, snapshot_every=0)


def booking(store: AggregateStore, clock: Clock) -> BookingService:
    return BookingService(store, calendar=base_calendar, clock=clock, person_key=PersonKeys(b"k" * 32))


@pytest.fixture
async def service(store: AggregateStore, clock: Clock) -> BookingService:
    bookings = booking(store, clock)
    await bookings.configure_hall(MANAGER, "SMZJ", CONFIG)
    return bookings


async def hold(service: BookingService, n: int, start: datetime, **how: object):  # type: ignore[no-untyped-def]
    return await service.hold(
        citizen(n), Channel.MINIAPP, hall_code="SMZJ", item_code=ITEM, start=start, visitor=visitor(n), **how
    )


async def test_two_services_racing_for_one_slot_fill_it_exactly(
    store: AggregateStore, service: BookingService, clock: Clock, recorder: EventRecorder
) -> None:
    # Two services: two processes' worth of in-process locks, so only the store's version check is shared.
    other = booking(store, clock)
    start = at(TUESDAY, 10)
    attempts = [hold(service if n % 2 else other, n, start) for n in range(40)]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 4 and all(isinstance(o, SlotFullError) for o in lost), lost[:3]
    slot: Slot = await store.get(slot_id("SMZJ", "A", start))
    assert slot.capacity == 4 and slot.taken(clock()) == 4


async def test_a_repeated_request_id_answers_with_the_same_hold(service: BookingService) -> None:
    first, again = await asyncio.gather(
        hold(service, 1, at(TUESDAY, 9), request_id="r-1"), hold(service, 1, at(TUESDAY, 9), request_id="r-1")
    )
    assert first.id == again.id


async def test_the_hold_timer_expires_an_unconfirmed_hold_and_frees_its_seat(
    service: BookingService, clock: Clock, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    held = await hold(service, 1, at(TUESDAY, 9))
    kept = await hold(service, 2, at(TUESDAY, 9))
    await service.confirm(citizen(2), Channel.MINIAPP, kept.id)
    projection, timers = AppointmentProjection(), BookingTimers()
    await catch_up(pool, mapper, projection, timers)
    due = dict(await pool.fetch("SELECT key, due_at FROM due_timers"))
    assert due[hold_key(held.id)] == held.expires_at and hold_key(kept.id) not in due
    assert due[no_show_key(kept.id)] == at(TUESDAY, 9, 30)
    worker = TimerWorker(pool, booking_handlers(service), clock)
    assert await worker.fire_due() == 0  # not yet due
    clock.now = held.expires_at
    assert await worker.fire_due() == 1
    assert (await service.appointment(held.id)).state is AppointmentState.EXPIRED
    await catch_up(pool, mapper, projection, timers)
    queries = AppointmentQueries(pool, base_calendar, clock)
    hall = await queries.hall("SMZJ")
    assert hall is not None
    day = await queries.day(hall, "A", TUESDAY)
    assert (day.slots[0].capacity, day.slots[0].left) == (4, 3)
    mine = await queries.mine("citizen-1")
    assert [(a.id, a.state) for a in mine] == [(held.id, "expired")]


async def test_two_no_shows_ban_the_person_and_the_next_hold_is_refused(
    service: BookingService, clock: Clock, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    for day in (TUESDAY, WEDNESDAY):
        made = await hold(service, 7, at(day, 9))
        await service.confirm(citizen(7), Channel.MINIAPP, made.id)
    await catch_up(pool, mapper, BookingTimers())
    worker = TimerWorker(pool, booking_handlers(service), clock)
    clock.now = at(WEDNESDAY, 9, 30)
    assert await worker.fire_due() == 2
    with pytest.raises(BookingBannedError) as refused:
        await hold(service, 7, at(MONDAY + timedelta(days=3), 9))
    assert refused.value.until == date(2027, 3, 9)


async def test_only_the_halls_manager_configures_it(service: BookingService) -> None:
    with pytest.raises(NotHallManagerError):
        await service.configure_hall(Actor(id="m2", role=Role.MANAGER, hall="YLQ"), "SMZJ", CONFIG)
    _, changed = await service.configure_hall(MANAGER, "SMZJ", CONFIG)
    assert not changed


async def _no_items(codes: object) -> dict[str, None]:
    return {}


async def test_a_confirmed_booking_gets_a_reminder_a_day_ahead_and_a_cancelled_one_takes_it_back(
    service: BookingService, clock: Clock, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    from notifications.appointment_notices import AppointmentNotices

    kept, dropped = await hold(service, 1, at(WEDNESDAY, 9)), await hold(service, 2, at(WEDNESDAY, 10))
    for n, made in ((1, kept), (2, dropped)):
        await service.confirm(citizen(n), Channel.MINIAPP, made.id)
    notices = AppointmentNotices(_no_items, clock)
    await catch_up(pool, mapper, AppointmentProjection(), notices)
    rows = {
        r["recipient"]: r
        for r in await pool.fetch(
            "SELECT recipient, purpose, state, next_attempt_at, variables FROM notification_outbox"
        )
    }
    reminder = rows["citizen-1"]
    assert (reminder["purpose"], reminder["state"]) == ("appointment_reminder", "pending")
    assert reminder["next_attempt_at"] == at(TUESDAY, 9)  # a day before the slot
    assert '"appointment_time": "2026年12月9日 09:00"' in reminder["variables"]
    assert (
        '"hall": "市民之家"' in reminder["variables"] and '"applicant_name": "张*"' in reminder["variables"]
    )
    await service.cancel(citizen(2), Channel.MINIAPP, dropped.id, "有事")
    await catch_up(pool, mapper, notices)
    states = dict(await pool.fetch("SELECT recipient, state FROM notification_outbox"))
    assert states == {"citizen-1": "pending", "citizen-2": "skipped"}


async def test_the_inbox_shows_a_reminder_from_its_due_time_and_never_one_taken_back_before(
    service: BookingService, clock: Clock, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    from notifications.inbox import Inbox, InboxQueries

    kept, dropped = await hold(service, 1, at(WEDNESDAY, 9)), await hold(service, 1 + 100, at(WEDNESDAY, 10))
    await service.confirm(citizen(1), Channel.MINIAPP, kept.id)
    await service.confirm(citizen(101), Channel.MINIAPP, dropped.id)
    await service.cancel(citizen(101), Channel.MINIAPP, dropped.id)
    inbox = Inbox(_no_items)
    await catch_up(pool, mapper, AppointmentProjection(), inbox)
    reads = InboxQueries(pool, clock)
    assert (await reads.list("citizen-1")).items == [] and await reads.unread("citizen-1") == 0
    clock.now = at(TUESDAY, 9)  # a day before the slot
    page = await reads.list("citizen-1")
    assert [(e.purpose, e.title) for e in page.items] == [
        ("appointment_reminder", "预约办事提醒")
    ] and page.unread == 1
    assert "2026年12月9日 09:00" in page.items[0].body and "市民之家" in page.items[0].body
    assert (await reads.list("citizen-101")).items == []  # cancelled before it was due
