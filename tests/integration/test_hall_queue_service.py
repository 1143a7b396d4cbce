"""The hall queue on PostgreSQL: booked and walk-in check-ins, who may work a hall's windows,
a missed booked ticket becoming a 爽约 through the log, and the screen's waits worked out by hand."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg
import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper, Tracking

from backend.booking.service import BookingService, PersonKeys
from backend.calendar_data import base_calendar
from backend.cases.access import NotYourCaseError
from backend.hall_queue.errors import LocationRequiredError, NotHallStaffError
from backend.hall_queue.no_shows import MISSED_NO_SHOW, QueueNoShows, missed_key, queue_no_show_handlers
from backend.hall_queue.service import HallQueueService
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from backend.timers import TimerWorker
from domain.booking import (
    Appointment,
    AppointmentState,
    GeoPoint,
    HallConfig,
    ItemGroup,
    Session,
    TooFarFromHallError,
    Visitor,
    Window,
)
from domain.case import Actor, Case, Channel, Person, Role
from domain.case.records import Trip
from domain.hall_queue import BEIJING, HallQueue
from domain.personal import Address, IdNumber, PersonName, Phone, id_check_char
from miniapp_api.queue_routes import _frames as screen_frames
from projections.hall_queue import HallQueueProjection
from projections.hall_queue_reads import CallView, HallQueueQueries, NextTicket, ticket_status
from tests.integration.store_support import Clock, catch_up

pytestmark = pytest.mark.integration

HALL = "SMZJ"
MONDAY = date(2026, 12, 7)
TUESDAY = MONDAY + timedelta(days=1)
FOOD, KAIBAN = "11430100006182474N010100300000", "11430100MB1C55389F201200100000"
MANAGER = Actor(id="manager-1", role=Role.MANAGER, hall=HALL)
CLERK = Actor(id="clerk-1", role=Role.CLERK, name="周敏", hall=HALL)
HERE = GeoPoint(lat=28.2282, lon=112.9388)
NEAR = GeoPoint(lat=28.2290, lon=112.9390)  # about 90 m away
FAR = GeoPoint(lat=28.2382, lon=112.9388)  # about 1.1 km north
CONFIG = HallConfig(
    name="市民之家",
    kind="市民之家",
    address="长沙市岳麓区金星中路",
    # W1 calls 市场准入 only, W2 both lines.
    windows=(Window(code="W1", groups=("A",)), Window(code="W2", groups=("A", "B"))),
    groups=(
        ItemGroup(code="A", name="市场准入", items=(FOOD,), prefix="A"),
        ItemGroup(code="B", name="企业开办", items=(KAIBAN,), prefix="B"),
    ),
    sessions=(Session(start=time(9), end=time(12)),),
    location=HERE,
)


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), BEIJING)


def citizen(n: int) -> Actor:
    return Actor(id=f"citizen-{n}", role=Role.CITIZEN)


def id_number(n: int) -> IdNumber:
    first17 = f"43010219900101{n % 1000:03d}"
    return IdNumber(first17 + id_check_char(first17))


class WatchedStore(AggregateStore):
    """The real store, noting which aggregates each append carried: a fake of nothing, a witness."""

    def __init__(self, recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> None:
        super().__init__(recorder, mapper, snapshot_every=0)
        self.appends: list[list[str]] = []

    async def save(self, *aggregates: Aggregate, tracking: Tracking | None = None) -> list[int]:
        self.appends.append(sorted(type(a).__name__ for a in aggregates if a.pending_events))
        return await super().save(*aggregates, tracking=tracking)


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
def clock() -> Clock:
    return Clock(at(MONDAY, 9))


@pytest.fixture
def store(recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> WatchedStore:
    return WatchedStore(recorder, mapper)


@pytest.fixture
async def bookings(store: WatchedStore, clock: Clock) -> BookingService:
    service = BookingService(store, calendar=base_calendar, clock=clock, person_key=PersonKeys(b"k" * 32))
    await service.configure_hall(MANAGER, HALL, CONFIG)
    return service


@pytest.fixture
def queue(store: WatchedStore, clock: Clock, bookings: BookingService) -> HallQueueService:
    return HallQueueService(store, clock=clock, bookings=bookings)


async def submitted_case(store: AggregateStore, owner: Actor, n: int) -> Case:
    case = Case.submit(
        owner, Channel.MINIAPP, at(MONDAY, 8), case_id=uuid.uuid4(), number=f"43010020261207{n:06d}",
        applicant=Person(
            name=PersonName("张三"), identity=id_number(n), phone=Phone("13812341234"),
            address=Address("湖南省长沙市岳麓区", "麓山南路1号"),
        ),
        item_code=KAIBAN, catalogue_version="1",
    )  # fmt: skip
    await store.save(case)
    return case


async def booked(
    bookings: BookingService, n: int, start: datetime, case_id: uuid.UUID | None = None
) -> Appointment:
    """Booked on Monday at 09:00 (Tuesday is then bookable) and confirmed."""
    visitor = Visitor(name=PersonName("张三"), id_number=id_number(n))
    held = await bookings.hold(
        citizen(n),
        Channel.MINIAPP,
        hall_code=HALL,
        item_code=FOOD,
        start=start,
        visitor=visitor,
        case_id=case_id,
    )
    return await bookings.confirm(citizen(n), Channel.MINIAPP, held.id)


async def test_a_booked_check_in_appends_ticket_check_in_and_trip_together_once(
    queue: HallQueueService, bookings: BookingService, store: WatchedStore, clock: Clock
) -> None:
    case = await submitted_case(store, citizen(1), 1)
    appointment = await booked(bookings, 1, at(TUESDAY, 9), case_id=case.id)
    clock.now = at(TUESDAY, 8, 30)
    store.appends.clear()
    ticket = await queue.check_in(
        citizen(1), Channel.MINIAPP, hall=HALL, appointment_id=appointment.id, location=NEAR
    )
    assert (ticket.ticket, ticket.queue, ticket.booked, ticket.ahead, ticket.name) == (
        "A001",
        "A",
        True,
        0,
        "张*",
    )
    assert ticket.estimated_wait_seconds is None  # no window open yet: no estimate to give
    assert store.appends == [["Appointment", "Case", "HallQueue"]]  # one atomic append of all three
    checked_in = await bookings.appointment(appointment.id)
    assert (checked_in.state, checked_in.ticket) == (AppointmentState.CHECKED_IN, "A001")
    reloaded: Case = await store.get(case.id)
    assert reloaded.trip_log == (Trip(at=at(TUESDAY, 8, 30), purpose="取号", hall=HALL),)
    # A retry (a lost answer, a second tap) is given the same ticket and records nothing.
    again = await queue.check_in(
        citizen(1), Channel.MINIAPP, hall=HALL, appointment_id=appointment.id, location=NEAR
    )
    assert again.ticket == "A001" and len(store.appends) == 1
    # A walk-in taken at the kiosk by the clerk needs no location, and lines up behind the booking.
    walk_in = await queue.check_in(CLERK, Channel.KIOSK, hall=HALL, item_code=FOOD)
    assert (walk_in.ticket, walk_in.booked, walk_in.ahead, walk_in.name) == ("A002", False, 1, None)


async def test_refused_check_ins_append_nothing(
    queue: HallQueueService, store: WatchedStore, recorder: EventRecorder, clock: Clock
) -> None:
    others_case = await submitted_case(store, citizen(2), 2)
    clock.now = at(TUESDAY, 8, 30)
    head = await recorder.max_notification_id()
    with pytest.raises(TooFarFromHallError):
        await queue.check_in(citizen(1), Channel.MINIAPP, hall=HALL, group="A", location=FAR)
    with pytest.raises(LocationRequiredError):
        await queue.check_in(citizen(1), Channel.MINIAPP, hall=HALL, group="A")
    with pytest.raises(NotYourCaseError):
        await queue.check_in(
            citizen(1), Channel.MINIAPP, hall=HALL, group="B", case_id=others_case.id, location=NEAR
        )
    assert await recorder.max_notification_id() == head


async def test_only_the_halls_clerks_and_manager_work_its_windows(
    queue: HallQueueService, recorder: EventRecorder, clock: Clock
) -> None:
    clock.now = at(TUESDAY, 8, 50)
    head = await recorder.max_notification_id()
    for stranger in (
        Actor(id="clerk-9", role=Role.CLERK, hall="YLQ"),
        Actor(id="manager-9", role=Role.MANAGER, hall="YLQ"),
        Actor(id="officer-1", role=Role.OFFICER, department="SCJGJ"),
    ):
        with pytest.raises(NotHallStaffError):
            await queue.open_window(stranger, HALL, "W1")
        with pytest.raises(NotHallStaffError):
            await queue.check_in(stranger, Channel.KIOSK, hall=HALL, group="A")
    assert await recorder.max_notification_id() == head
    opened = await queue.open_window(MANAGER, HALL, "W1")
    assert (opened.window, opened.open, opened.changed) == ("W1", True, True)
    assert not (await queue.open_window(CLERK, HALL, "W1")).changed
    # 转号: the clerk sends the visitor in hand to the head of line B, under the same number.
    await queue.check_in(CLERK, Channel.KIOSK, hall=HALL, group="A")
    await queue.call_next(CLERK, HALL, "W1")
    moved = await queue.transfer(CLERK, HALL, "W1", "B")
    assert (moved.ticket, moved.queue, moved.state, moved.ahead, moved.window) == (
        "A001",
        "B",
        "waiting",
        0,
        None,
    )


async def test_a_booked_ticket_missed_at_the_window_becomes_a_no_show_through_the_log(
    queue: HallQueueService,
    bookings: BookingService,
    store: WatchedStore,
    clock: Clock,
    pool: asyncpg.Pool,
    mapper: Mapper[uuid.UUID],
) -> None:
    appointment = await booked(bookings, 3, at(TUESDAY, 9))
    clock.now = at(TUESDAY, 8, 50)
    await queue.check_in(CLERK, Channel.KIOSK, hall=HALL, appointment_id=appointment.id)
    await queue.check_in(CLERK, Channel.KIOSK, hall=HALL, group="B")  # a walk-in, missed too
    await queue.open_window(CLERK, HALL, "W2")
    states = []
    for window in ("W2", "W2"):
        clock.now += timedelta(minutes=1)
        called = await queue.call_next(CLERK, HALL, window)
        for _ in range(3):  # miss_after_calls is 3: the call, two recalls, then the third recall misses
            clock.now += timedelta(minutes=1)
            states.append((called.ticket, (await queue.recall(CLERK, HALL, window)).state))
    missed_at = at(TUESDAY, 8, 54)
    assert states == [
        ("A001", "called"), ("A001", "called"), ("A001", "missed"),
        ("B001", "called"), ("B001", "called"), ("B001", "missed"),
    ]  # fmt: skip
    await catch_up(pool, mapper, QueueNoShows())
    due = await pool.fetch("SELECT key, kind, due_at FROM due_timers")
    # Only the booked ticket: a walk-in has no appointment to mark.
    assert [tuple(r) for r in due] == [(missed_key(appointment.id), MISSED_NO_SHOW, missed_at)]
    worker = TimerWorker(pool, queue_no_show_handlers(bookings), clock)
    assert await worker.fire_due() == 1
    assert (await bookings.appointment(appointment.id)).state is AppointmentState.NO_SHOW
    stored = await store.recorder.select_events(appointment.id)
    no_show: Any = mapper.to_domain_event(stored[-1])
    assert (type(no_show), no_show.how) == (Appointment.NoShow, "missed")
    assert await worker.fire_due() == 0  # fired once; a replay of the log finds the key fired


async def test_the_screen_places_and_estimates_by_hand(
    queue: HallQueueService,
    store: WatchedStore,
    clock: Clock,
    pool: asyncpg.Pool,
    mapper: Mapper[uuid.UUID],
) -> None:
    case = await submitted_case(store, citizen(2), 2)

    async def step(hh: int, mm: int) -> None:
        clock.now = at(TUESDAY, hh, mm)

    await step(8, 50)
    for window in ("W1", "W2"):
        await queue.open_window(CLERK, HALL, window)
    await step(8, 51)
    await queue.check_in(citizen(1), Channel.MINIAPP, hall=HALL, group="A", location=NEAR)  # A001
    await step(8, 52)
    for _ in range(5):  # A002 … A006
        await queue.check_in(CLERK, Channel.KIOSK, hall=HALL, group="A")
    await queue.check_in(CLERK, Channel.KIOSK, hall=HALL, group="B", case_id=case.id)  # B001, 张三's
    await step(9, 0)
    assert (await queue.call_next(CLERK, HALL, "W1")).ticket == "A001"
    # W2's heads are A002 and B001, both walk-ins: A002 joined first.
    assert (await queue.call_next(CLERK, HALL, "W2")).ticket == "A002"
    await step(9, 4)
    await queue.serve(CLERK, HALL, "W1")  # 240 s
    await step(9, 7)
    await queue.serve(CLERK, HALL, "W2")  # 420 s
    await catch_up(pool, mapper, HallQueueProjection())
    reads = HallQueueQueries(pool, clock)
    # Line A: recent services 240 and 420, average 330 s, over 2 open windows (W1, W2):
    # A003 0 ahead → 0; A004 1 → 1 × 330 / 2 = 165; A005 2 → 330; A006 3 → 495; a new ticket 4 → 660.
    waits = [
        (t.ticket, t.ahead, t.estimated_wait_seconds)
        for t in await tickets(reads, "A003", "A004", "A005", "A006")
    ]
    assert waits == [("A003", 0, 0.0), ("A004", 1, 165.0), ("A005", 2, 330.0), ("A006", 3, 495.0)]
    assert (await reads.display(HALL, TUESDAY)).lines[0].estimated_wait_seconds == 660.0

    await step(9, 8)
    await queue.close_window(CLERK, HALL, "W1")
    await step(9, 10)
    assert (await queue.call_next(CLERK, HALL, "W2")).ticket == "A003"
    await catch_up(pool, mapper, HallQueueProjection())
    # Line A, W2 alone open: A004 0 → 0; A005 1 → 1 × 330 / 1 = 330; A006 2 → 660; a new ticket 3 → 990.
    # Line B, none served yet, so the default 300 s, over W2: B001 0 → 0; a new ticket 1 → 1 × 300 / 1 = 300.
    screen = await reads.display(HALL, TUESDAY)
    today: HallQueue | None = await queue.today(HALL)
    assert today is not None and screen.version == today.version
    assert screen.calls == (CallView(window="W2", ticket="A003", name=None, called_at=at(TUESDAY, 9, 10)),)
    assert [
        (line.code, line.waiting, line.active_windows, line.estimated_wait_seconds) for line in screen.lines
    ] == [
        ("A", 3, 1, 990.0),
        ("B", 1, 1, 300.0),
    ]
    assert [t.ticket for t in screen.lines[0].next] == ["A004", "A005", "A006"]
    assert screen.lines[1].next == (NextTicket(ticket="B001", name="张*", booked=False),)
    waits = [
        (t.ticket, t.ahead, t.estimated_wait_seconds) for t in await tickets(reads, "A004", "A005", "A006")
    ]
    assert waits == [("A004", 0, 0.0), ("A005", 1, 330.0), ("A006", 2, 660.0)]
    # The read model answers as the aggregate does, ticket by ticket.
    for t in await tickets(reads, "A001", "A002", "A003", "A004", "A005", "A006", "B001"):
        assert t == ticket_status(today, t.ticket)
    # Each account's tickets: the citizen's own walk-in, and the ticket taken for 张三's case.
    assert [(t.ticket, t.state) for t in await reads.my_tickets("citizen-1", TUESDAY)] == [("A001", "served")]
    mine = await reads.my_tickets("citizen-2", TUESDAY)
    assert [(t.ticket, t.ahead, t.estimated_wait_seconds, t.near_turn) for t in mine] == [
        ("B001", 0, 0.0, True)
    ]
    assert await pool.fetchval("SELECT count(*) FROM hall_queue_tickets WHERE name LIKE '%三%'") == 0


async def test_the_screen_stream_sends_changes_and_beats_while_quiet(
    queue: HallQueueService, clock: Clock, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    clock.now = at(TUESDAY, 8, 50)
    await catch_up(pool, mapper, HallQueueProjection())  # the server installs its read models before serving
    reads = HallQueueQueries(pool, clock)
    frames = screen_frames(reads, HALL, poll_seconds=0.02, heartbeat_seconds=0.1)
    first = await anext(frames)  # before the day's first event: an empty screen
    assert (first.event, first.id, first.comment) == ("display", "2026-12-08:0", None)
    assert (await anext(frames)).comment == "heartbeat"
    await queue.open_window(CLERK, HALL, "W1")
    await catch_up(pool, mapper, HallQueueProjection())
    changed = await anext(frames)
    assert changed.id == "2026-12-08:2"  # Opened, WindowOpened
    assert '"activeWindows":1' in str(changed.data)
    await frames.aclose()


async def tickets(reads: HallQueueQueries, *numbers: str) -> list[Any]:
    found = [await reads.ticket(HALL, TUESDAY, n) for n in numbers]
    assert None not in found
    return found


async def _no_items(codes: object) -> dict[str, None]:
    return {}


async def test_your_turn_is_near_reaches_the_outbox_for_the_citizen_three_ahead(
    queue: HallQueueService, clock: Clock, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    from notifications.appointment_notices import AppointmentNotices

    clock.now = at(TUESDAY, 8, 50)
    for n in range(5):
        await queue.check_in(citizen(n), Channel.MINIAPP, hall=HALL, group="A", location=HERE)
    await queue.open_window(CLERK, HALL, "W1")
    await queue.call_next(CLERK, HALL, "W1")  # A001 called: A005 has A002–A004 ahead
    await catch_up(pool, mapper, AppointmentNotices(_no_items, clock))
    rows = await pool.fetch("SELECT purpose, recipient, urgent, state, variables FROM notification_outbox")
    assert [(r["purpose"], r["recipient"], r["urgent"], r["state"]) for r in rows] == [
        ("turn_near", "citizen-4", True, "pending")
    ]
    assert (
        '"ticket_number": "A005"' in rows[0]["variables"] and '"waiting_ahead": "3"' in rows[0]["variables"]
    )
