"""The hall queue's commands, refusals, line order and replay, one rule at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot

from backend.store.mapper import make_mapper
from domain.case.values import Actor, Channel, Role
from domain.hall_queue import (
    BEIJING,
    AlreadyCheckedInError,
    HallQueue,
    HallQueueError,
    InvalidCommandError,
    InvalidQueueConfigError,
    NothingToCallError,
    NoTicketInHandError,
    QueueSpec,
    TicketNotWaitingError,
    TicketState,
    UnknownQueueError,
    UnknownTicketError,
    UnknownWindowError,
    WindowBusyError,
    WindowClosedError,
    WindowSpec,
    estimated_wait,
    queue_id,
    ticket_number,
    turn_is_near,
)
from domain.personal import PersonName

pytestmark = pytest.mark.unit

HALL = "长沙市民之家"
T0 = datetime(2026, 5, 6, 8, 30, tzinfo=BEIJING)  # a Wednesday, half an hour before the doors open
DAY = T0.date()
CLERK = Actor(id="clerk-1", role=Role.CLERK, name="窗口一", hall=HALL)
CITIZEN = Actor(id="citizen-1", role=Role.CITIZEN)
KIOSK = Actor(id="kiosk-3", role=Role.SYSTEM)

# "A" for 证照, "B" for 社保; window 1 calls A only, window 2 both, window 3 B only.
PERMITS = QueueSpec(code="permits", prefix="A", name="证照办理")
SOCIAL = QueueSpec(code="social", prefix="B", name="社保医保")
WINDOWS = (
    WindowSpec(code="1", queues=("permits",)),
    WindowSpec(code="2", queues=("permits", "social")),
    WindowSpec(code="3", queues=("social",)),
)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def appointment(n: int) -> UUID:
    return UUID(int=n)


def opened(*windows: str, miss_after_calls: int = 3) -> HallQueue:
    q = HallQueue.open(
        HALL, DAY, (PERMITS, SOCIAL), WINDOWS, miss_after_calls=miss_after_calls, actor=CLERK, at=T0
    )
    for w in windows:
        q.open_window(w, at=T0, actor=CLERK)
    return q


def walk_in(q: HallQueue, queue: str = "permits", minute: float = 1) -> str:
    return q.check_in(queue, at=at(minute), actor=KIOSK, channel=Channel.KIOSK)


def booked(q: HallQueue, n: int, slot_minute: float, queue: str = "permits", minute: float = 1) -> str:
    return q.check_in(
        queue,
        at=at(minute),
        actor=CITIZEN,
        channel=Channel.MINIAPP,
        appointment_id=appointment(n),
        slot_start=at(slot_minute),
    )


def names(q: HallQueue) -> list[str]:
    return [type(e).__name__ for e in q.collect_events()]


def line(q: HallQueue, queue: str = "permits") -> list[str]:
    return [t.ticket for t in q.waiting(queue)]


def replayed(events: Sequence[Any]) -> HallQueue:
    rebuilt: HallQueue | None = None
    for e in events:
        rebuilt = e.mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


# Opening the day.


def test_the_id_follows_from_hall_and_day_and_every_window_starts_closed() -> None:
    q = opened()
    assert q.id == queue_id(HALL, DAY) == queue_id(HALL, date(2026, 5, 6))
    assert queue_id(HALL, DAY + timedelta(days=1)) != q.id != queue_id("岳麓区政务服务中心", DAY)
    assert (q.hall, q.day, q.miss_after_calls) == (HALL, DAY, 3)
    assert [q.active_windows(c) for c in ("permits", "social")] == [0, 0]
    assert names(q) == ["Opened"]


def spec(code: str = "p", prefix: str = "P") -> QueueSpec:
    return QueueSpec(code=code, prefix=prefix, name="x")


def serving(*queues: str, code: str = "1") -> WindowSpec:
    return WindowSpec(code=code, queues=queues)


@pytest.mark.parametrize(
    ("queues", "windows", "miss_after_calls", "match"),
    [
        pytest.param((), (serving("p"),), 3, "at least one queue", id="no queue"),
        pytest.param((spec(),), (), 3, "at least one window", id="no window"),
        pytest.param((spec(), spec(prefix="Q")), (serving("p"),), 3, "queue code repeated", id="same code"),
        pytest.param((spec(), spec("q")), (serving("p"),), 3, "ticket prefix repeated", id="same prefix"),
        pytest.param((spec(prefix="P1"),), (serving("p"),), 3, "capital letters", id="digit in prefix"),
        pytest.param((spec(prefix="p"),), (serving("p"),), 3, "capital letters", id="lower-case prefix"),
        pytest.param((spec(prefix=""),), (serving("p"),), 3, "capital letters", id="empty prefix"),
        pytest.param((spec(" "),), (serving(" "),), 3, "queue code must not be blank", id="blank code"),
        pytest.param((spec(),), (serving("p", code=""),), 3, "window code", id="blank window"),
        pytest.param((spec(),), (serving("q"),), 3, "unknown queues", id="unknown queue"),
        pytest.param((spec(),), (serving(),), 3, "serves no queue", id="window serving nothing"),
        pytest.param((spec(),), (serving("p"), serving("p")), 3, "window code repeated", id="same window"),
        pytest.param((spec(),), (serving("p", "p"),), 3, "queue of window 1 repeated", id="queue twice"),
        pytest.param((spec(),), (serving("p"),), 0, "at least 1", id="no calls allowed"),
        pytest.param((spec(),), (serving("p"),), True, "at least 1", id="bool as calls"),
    ],
)
def test_a_bad_configuration_opens_nothing(
    queues: tuple[QueueSpec, ...], windows: tuple[WindowSpec, ...], miss_after_calls: int, match: str
) -> None:
    with pytest.raises(InvalidQueueConfigError, match=match):
        HallQueue.open(HALL, DAY, queues, windows, miss_after_calls=miss_after_calls, actor=CLERK, at=T0)


def test_a_good_configuration_of_one_queue_and_window_opens() -> None:
    q = HallQueue.open(HALL, DAY, [spec()], [serving("p")], miss_after_calls=1, actor=CLERK, at=T0)
    assert (list(q.queues), list(q.windows), q.miss_after_calls) == (["p"], ["1"], 1)


def test_a_naive_time_or_a_blank_hall_is_refused() -> None:
    with pytest.raises(InvalidCommandError):
        HallQueue.open(HALL, DAY, (PERMITS,), WINDOWS[:1], actor=CLERK, at=T0.replace(tzinfo=None))
    with pytest.raises(InvalidCommandError):
        HallQueue.open(" ", DAY, (PERMITS,), WINDOWS[:1], actor=CLERK, at=T0)


# 取号.


def test_tickets_are_numbered_per_queue_from_001() -> None:
    q = opened()
    issued = [walk_in(q), walk_in(q), walk_in(q, "social"), booked(q, 1, 60), walk_in(q, "social")]
    assert issued == ["A001", "A002", "B001", "A003", "B002"]


@pytest.mark.parametrize(
    ("prefix", "sequence", "number"),
    [("A", 1, "A001"), ("A", 42, "A042"), ("A", 999, "A999"), ("A", 1000, "A1000"), ("VIP", 7, "VIP007")],
)
def test_ticket_numbers_keep_three_digits_and_grow_past_them(prefix: str, sequence: int, number: str) -> None:
    assert ticket_number(prefix, sequence) == number


def test_the_thousandth_ticket_of_a_queue_is_a1000() -> None:
    q = opened()
    numbers = [walk_in(q) for _ in range(1000)]
    assert numbers[998:] == ["A999", "A1000"]


def test_a_ticket_records_the_visit_and_the_channel() -> None:
    q = opened()
    q.collect_events()
    case = UUID(int=99)
    q.check_in(
        "social",
        at=at(5),
        actor=CITIZEN,
        channel=Channel.MINIAPP,
        appointment_id=appointment(1),
        slot_start=at(30),
        name=PersonName(name="张三"),
        subject="医保转移接续",
        case_id=case,
    )
    [issued] = q.collect_events()
    assert isinstance(issued, HallQueue.TicketIssued)
    assert (issued.ticket, issued.queue, issued.sequence, issued.booked) == ("B001", "social", 1, True)
    assert (issued.appointment_id, issued.slot_start, issued.case_id) == (appointment(1), at(30), case)
    assert (issued.actor, issued.channel, issued.timestamp) == (CITIZEN, Channel.MINIAPP, at(5))
    view = q.ticket("B001")
    assert (view.state, view.booked, view.subject, view.issued_at) == (
        TicketState.WAITING,
        True,
        "医保转移接续",
        at(5),
    )
    assert view.display_name == "张*"
    assert q.ticket(walk_in(q)).display_name is None


def test_times_are_kept_in_beijing_time() -> None:
    q = opened()
    q.check_in("permits", at=datetime(2026, 5, 6, 1, 0, tzinfo=UTC), actor=KIOSK, channel=Channel.KIOSK)
    issued_at = q.ticket("A001").issued_at
    assert (issued_at, issued_at.utcoffset()) == (at(30), timedelta(hours=8))


# The order of a line.


def test_booked_visitors_go_first_by_slot_then_walk_ins_by_arrival() -> None:
    q = opened()
    a1 = walk_in(q, minute=1)
    a2 = booked(q, 1, slot_minute=60, minute=2)
    a3 = booked(q, 2, slot_minute=30, minute=3)
    a4 = walk_in(q, minute=4)
    a5 = booked(q, 3, slot_minute=30, minute=5)  # same slot as A003, checked in later
    assert line(q) == [a3, a5, a2, a1, a4]
    assert [q.position(t) for t in (a3, a5, a2, a1, a4)] == [0, 1, 2, 3, 4]
    assert q.ahead(a4) == 4
    assert line(q, "social") == []


def test_only_waiting_tickets_have_a_place_in_line() -> None:
    q = opened("1")
    walk_in(q)
    q.call_next("1", at=at(2), actor=CLERK)
    with pytest.raises(TicketNotWaitingError):
        q.ahead("A001")
    with pytest.raises(UnknownTicketError):
        q.position("A404")


# 叫号.


def test_a_window_calls_booked_heads_before_walk_in_heads_across_its_queues() -> None:
    q = opened("2")
    walk_in(q, "permits", minute=1)  # A001
    walk_in(q, "social", minute=2)  # B001
    booked(q, 1, slot_minute=90, queue="permits", minute=3)  # A002
    booked(q, 2, slot_minute=60, queue="social", minute=4)  # B002
    calls = []
    for minute in range(10, 14):
        calls.append(q.call_next("2", at=at(minute), actor=CLERK))
        q.serve("2", at=at(minute + 0.5), actor=CLERK)
    assert calls == ["B002", "A002", "A001", "B001"]


def test_a_call_is_recorded_with_its_window_and_count() -> None:
    q = opened("1")
    walk_in(q)
    q.collect_events()
    assert q.call_next("1", at=at(10), actor=CLERK) == "A001"
    [called] = q.collect_events()
    assert isinstance(called, HallQueue.Called)
    assert (called.ticket, called.window, called.calls, called.actor, called.timestamp) == (
        "A001",
        "1",
        1,
        CLERK,
        at(10),
    )
    assert q.in_hand("1") == "A001"
    assert q.in_hand("2") is None
    assert q.current_calls() == [("1", "A001")]
    view = q.ticket("A001")
    assert (view.state, view.window, view.calls, view.called_at) == (TicketState.CALLED, "1", 1, at(10))


def test_current_calls_follow_the_configured_window_order() -> None:
    q = opened("1", "2", "3")
    for queue in ("social", "permits", "permits"):
        walk_in(q, queue)
    q.call_next("3", at=at(5), actor=CLERK)
    q.call_next("2", at=at(6), actor=CLERK)
    q.call_next("1", at=at(7), actor=CLERK)
    assert q.current_calls() == [("1", "A002"), ("2", "A001"), ("3", "B001")]


# 过号: three calls, and the fourth press records the miss.


def test_a_ticket_is_missed_when_recalled_after_its_last_call() -> None:
    q = opened("1")
    booked(q, 7, slot_minute=30)
    q.call_next("1", at=at(10), actor=CLERK)
    assert q.recall("1", at=at(11), actor=CLERK) is TicketState.CALLED
    assert q.recall("1", at=at(12), actor=CLERK) is TicketState.CALLED
    assert q.ticket("A001").calls == 3
    assert q.recall("1", at=at(13), actor=CLERK) is TicketState.MISSED
    events = q.collect_events()
    assert [type(e).__name__ for e in events[-4:]] == ["Called", "Called", "Called", "Missed"]
    assert [e.calls for e in events[-4:] if isinstance(e, HallQueue.Called | HallQueue.Missed)] == [
        1,
        2,
        3,
        3,
    ]
    missed = events[-1]
    assert isinstance(missed, HallQueue.Missed)
    assert (missed.ticket, missed.window, missed.booked, missed.appointment_id) == (
        "A001",
        "1",
        True,
        appointment(7),
    )
    assert q.in_hand("1") is None
    view = q.ticket("A001")
    assert (view.state, view.called_at, view.last_called_at) == (TicketState.MISSED, at(10), at(12))


@pytest.mark.parametrize(("limit", "recalls_before_miss"), [(1, 0), (2, 1), (3, 2), (5, 4)])
def test_the_miss_comes_after_the_configured_number_of_calls(limit: int, recalls_before_miss: int) -> None:
    q = opened("1", miss_after_calls=limit)
    walk_in(q)
    q.call_next("1", at=at(10), actor=CLERK)
    outcomes = [q.recall("1", at=at(11 + i), actor=CLERK) for i in range(recalls_before_miss + 1)]
    assert outcomes == [TicketState.CALLED] * recalls_before_miss + [TicketState.MISSED]


# Serving.


def test_service_runs_from_the_last_call_and_frees_the_window() -> None:
    q = opened("1")
    walk_in(q)
    q.call_next("1", at=at(10), actor=CLERK)
    q.recall("1", at=at(11), actor=CLERK)
    q.collect_events()
    assert q.serve("1", at=at(15.5), actor=CLERK) == "A001"
    [served] = q.collect_events()
    assert isinstance(served, HallQueue.Served)
    assert (served.ticket, served.window, served.queue) == ("A001", "1", "permits")
    assert (served.called_at, served.served_at, served.service_seconds) == (at(10), at(15.5), 270.0)
    assert q.in_hand("1") is None
    assert q.recent_service_seconds("permits") == [270.0]
    assert q.recent_service_seconds("social") == []
    view = q.ticket("A001")
    assert (view.state, view.served_at, view.window) == (TicketState.SERVED, at(15.5), "1")


def test_recent_service_times_are_the_last_n_oldest_first() -> None:
    q = opened("1")
    for minute, length in enumerate((1, 2, 3, 4), start=1):
        walk_in(q, minute=minute)
        q.call_next("1", at=at(10 * minute), actor=CLERK)
        q.serve("1", at=at(10 * minute + length), actor=CLERK)
    assert q.recent_service_seconds("permits", n=2) == [180.0, 240.0]
    assert q.recent_service_seconds("permits") == [60.0, 120.0, 180.0, 240.0]
    assert q.recent_service_seconds("permits", n=0) == []


# 转号.


def test_a_transferred_ticket_keeps_its_number_and_heads_the_other_line() -> None:
    q = opened("1")
    walk_in(q, "permits")  # A001
    booked(q, 1, slot_minute=20, queue="social")  # B001
    walk_in(q, "social")  # B002
    q.call_next("1", at=at(10), actor=CLERK)
    q.collect_events()
    q.transfer("1", "social", at=at(12), actor=CLERK)
    [moved] = q.collect_events()
    assert isinstance(moved, HallQueue.Transferred)
    assert (moved.ticket, moved.from_queue, moved.to_queue, moved.window) == (
        "A001",
        "permits",
        "social",
        "1",
    )
    assert line(q, "social") == ["A001", "B001", "B002"]
    view = q.ticket("A001")
    assert (view.queue, view.state, view.window, view.calls, view.transferred) == (
        "social",
        TicketState.WAITING,
        None,
        0,
        True,
    )
    assert view.called_at == at(10)  # the first call still ended the visitor's first wait
    assert q.in_hand("1") is None


def test_earlier_transfers_stay_ahead_of_later_ones() -> None:
    q = opened("1")
    for queue in ("permits", "permits", "social"):
        walk_in(q, queue)
    for minute in (10, 20):
        q.call_next("1", at=at(minute), actor=CLERK)
        q.transfer("1", "social", at=at(minute + 1), actor=CLERK)
    assert line(q, "social") == ["A001", "A002", "B001"]


def test_a_transferred_ticket_competes_across_queues_from_its_transfer() -> None:
    q = opened("1", "2")
    walk_in(q, "social", minute=1)  # B001, before A001
    walk_in(q, "permits", minute=2)  # A001
    walk_in(q, "permits", minute=3)  # A002
    q.call_next("1", at=at(10), actor=CLERK)  # A001
    q.transfer("1", "social", at=at(11), actor=CLERK)
    # Window 2 sees heads A002 (joined third) and A001 (heads social, joined at its transfer, fourth).
    assert q.call_next("2", at=at(12), actor=CLERK) == "A002"
    q.serve("2", at=at(13), actor=CLERK)
    assert q.call_next("2", at=at(14), actor=CLERK) == "A001"
    assert line(q, "social") == ["B001"]


# Windows.


def test_windows_open_and_close_once_and_are_counted_per_queue() -> None:
    q = opened()
    assert q.open_window("2", at=at(1), actor=CLERK) is True
    assert q.open_window("2", at=at(2), actor=CLERK) is False
    assert q.open_window("1", at=at(3), actor=CLERK) is True
    assert (q.active_windows("permits"), q.active_windows("social")) == (2, 1)
    assert q.close_window("2", at=at(4), actor=CLERK) is True
    assert q.close_window("2", at=at(5), actor=CLERK) is False
    assert (q.active_windows("permits"), q.active_windows("social")) == (1, 0)
    assert names(q) == ["Opened", "WindowOpened", "WindowOpened", "WindowClosed"]


def test_check_in_needs_no_open_window() -> None:
    q = opened()
    assert walk_in(q) == "A001"
    with pytest.raises(WindowClosedError):
        q.call_next("1", at=at(2), actor=CLERK)


# Every refusal, and that it records nothing.


def busy() -> HallQueue:
    """Window 1 holds A001, A002 waits, window 3 is closed, appointment 1 has checked in."""
    q = opened("1", "2")
    booked(q, 1, slot_minute=30)
    walk_in(q)
    q.call_next("1", at=at(5), actor=CLERK)
    return q


REFUSALS: list[tuple[str, Callable[[HallQueue], object], type[HallQueueError]]] = [
    ("check in to an unknown queue", lambda q: walk_in(q, "passports"), UnknownQueueError),
    ("check in an appointment twice", lambda q: booked(q, 1, slot_minute=40), AlreadyCheckedInError),
    (
        "check in with a slot but no appointment",
        lambda q: q.check_in("permits", at=at(9), actor=KIOSK, channel=Channel.KIOSK, slot_start=at(30)),
        InvalidCommandError,
    ),
    (
        "check in with an appointment but no slot",
        lambda q: q.check_in(
            "permits", at=at(9), actor=KIOSK, channel=Channel.KIOSK, appointment_id=appointment(5)
        ),
        InvalidCommandError,
    ),
    (
        "check in at a naive time",
        lambda q: q.check_in("permits", at=at(9).replace(tzinfo=None), actor=KIOSK, channel=Channel.KIOSK),
        InvalidCommandError,
    ),
    ("call at an unknown window", lambda q: q.call_next("9", at=at(9), actor=CLERK), UnknownWindowError),
    ("call at a closed window", lambda q: q.call_next("3", at=at(9), actor=CLERK), WindowClosedError),
    ("call with a ticket in hand", lambda q: q.call_next("1", at=at(9), actor=CLERK), WindowBusyError),
    ("recall with nothing in hand", lambda q: q.recall("2", at=at(9), actor=CLERK), NoTicketInHandError),
    ("serve with nothing in hand", lambda q: q.serve("2", at=at(9), actor=CLERK), NoTicketInHandError),
    ("serve at an unknown window", lambda q: q.serve("9", at=at(9), actor=CLERK), UnknownWindowError),
    (
        "transfer with nothing in hand",
        lambda q: q.transfer("2", "social", at=at(9), actor=CLERK),
        NoTicketInHandError,
    ),
    (
        "transfer to an unknown queue",
        lambda q: q.transfer("1", "passports", at=at(9), actor=CLERK),
        UnknownQueueError,
    ),
    (
        "transfer to its own queue",
        lambda q: q.transfer("1", "permits", at=at(9), actor=CLERK),
        InvalidCommandError,
    ),
    (
        "close a window with a ticket in hand",
        lambda q: q.close_window("1", at=at(9), actor=CLERK),
        WindowBusyError,
    ),
    ("open an unknown window", lambda q: q.open_window("9", at=at(9), actor=CLERK), UnknownWindowError),
]


@pytest.mark.parametrize(
    ("command", "error"), [(c, e) for _, c, e in REFUSALS], ids=[n for n, _, _ in REFUSALS]
)
def test_a_refused_command_records_nothing(
    command: Callable[[HallQueue], object], error: type[HallQueueError]
) -> None:
    q = busy()
    q.collect_events()
    version, before = q.version, [q.ticket(t) for t in ("A001", "A002")]
    with pytest.raises(error):
        command(q)
    assert q.collect_events() == []
    assert q.version == version
    assert [q.ticket(t) for t in ("A001", "A002")] == before


def test_nothing_to_call_records_nothing() -> None:
    q = opened("3")
    walk_in(q, "permits")  # window 3 does not serve permits
    q.collect_events()
    with pytest.raises(NothingToCallError):
        q.call_next("3", at=at(5), actor=CLERK)
    assert q.collect_events() == []


@pytest.mark.parametrize(
    "query",
    [
        lambda q: q.waiting("passports"),
        lambda q: q.active_windows("passports"),
        lambda q: q.recent_service_seconds("passports"),
        lambda q: q.in_hand("9"),
        lambda q: q.ticket("C001"),
    ],
)
def test_queries_name_what_they_do_not_know(query: Callable[[HallQueue], object]) -> None:
    with pytest.raises((UnknownQueueError, UnknownWindowError, UnknownTicketError)):
        query(busy())


# Replay and storage.


def a_busy_morning() -> HallQueue:
    q = opened("1", "2", miss_after_calls=2)
    walk_in(q, "permits", minute=1)
    booked(q, 1, slot_minute=30, queue="social", minute=2)
    q.check_in("social", at=at(3), actor=CLERK, channel=Channel.HALL_WINDOW, name=PersonName(name="欧阳娜娜"))
    walk_in(q, "permits", minute=4)
    q.call_next("1", at=at(10), actor=CLERK)  # A001
    q.call_next("2", at=at(10), actor=CLERK)  # B001, booked
    q.serve("2", at=at(14), actor=CLERK)
    q.transfer("1", "social", at=at(15), actor=CLERK)
    q.call_next("2", at=at(16), actor=CLERK)  # A002, which joined before the transfer
    q.recall("2", at=at(17), actor=CLERK)
    q.recall("2", at=at(18), actor=CLERK)  # missed: two calls are the limit here
    q.call_next("2", at=at(19), actor=CLERK)  # A001, heading social
    q.serve("2", at=at(20), actor=CLERK)
    q.close_window("1", at=at(21), actor=CLERK)
    return q  # B002 still waits


def test_replaying_the_events_rebuilds_the_same_state() -> None:
    q = a_busy_morning()
    events = q.collect_events()
    rebuilt = replayed(events)
    assert rebuilt == q
    assert vars(rebuilt) == vars(q)
    for code in ("permits", "social"):
        assert rebuilt.waiting(code) == q.waiting(code)
    assert rebuilt.current_calls() == q.current_calls()
    states = {number: view.state for number, view in q.tickets.items()}
    assert states == {"A001": "served", "B001": "served", "B002": "waiting", "A002": "missed"}


def test_events_and_snapshots_survive_the_store_mapper() -> None:
    mapper = make_mapper()
    q = a_busy_morning()
    events = q.collect_events()
    restored = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]
    assert restored == events
    assert replayed(restored) == q
    snapshot = mapper.to_domain_event(mapper.to_stored_event(Snapshot.take(q)))
    assert isinstance(snapshot, Snapshot)
    assert snapshot.mutate(None) == q


# Wait estimates and the "turn is near" notice.


@pytest.mark.parametrize(
    ("ahead", "recent", "windows", "expected"),
    [
        (0, [240.0], 1, 0.0),  # next to be called: told no wait
        (3, [], 1, 900.0),  # 3 × the 300 s default
        (3, [240.0, 360.0], 2, 450.0),  # 3 × 300 ÷ 2
        (5, [120.0], 4, 150.0),  # 5 × 120 ÷ 4
        (2, [100.0, 200.0, 600.0], 3, 200.0),  # 2 × 300 ÷ 3
        (4, [60.0], 0, None),  # no window open: no estimate
    ],
)
def test_estimated_wait(ahead: int, recent: list[float], windows: int, expected: float | None) -> None:
    assert estimated_wait(ahead, recent, windows) == expected


def test_estimated_wait_uses_the_given_default_and_refuses_a_negative_count() -> None:
    assert estimated_wait(2, [], 1, default_service_seconds=90.0) == 180.0
    with pytest.raises(ValueError):
        estimated_wait(-1, [], 1)


@pytest.mark.parametrize(
    ("before", "after", "near"),
    [(5, 4, False), (4, 3, True), (5, 3, True), (6, 0, True), (3, 2, False), (3, 3, False), (2, 4, False)],
)
def test_the_turn_is_near_once_when_the_count_crosses_three(before: int, after: int, near: bool) -> None:
    assert turn_is_near(before, after) is near


def test_a_call_that_moves_a_ticket_to_three_ahead_tells_it_once() -> None:
    q = opened("1")
    tickets = [
        q.check_in("permits", at=at(1), actor=CITIZEN, channel=Channel.MINIAPP, subject=f"citizen-{n}")
        for n in range(6)
    ]
    q.collect_events()
    # P001 is called: P005 (index 4) now has 3 ahead (P002, P003, P004).
    q.call_next("1", at=at(2), actor=CLERK)
    near = [e for e in q.collect_events() if isinstance(e, HallQueue.TurnNear)]
    assert [(e.ticket, e.ahead, e.subject) for e in near] == [(tickets[4], 3, "citizen-4")]
    q.serve("1", at=at(3), actor=CLERK)
    q.call_next("1", at=at(4), actor=CLERK)
    # Next call: P006 crosses to 3 ahead; P005, already told, is not told again at 2.
    near = [e for e in q.collect_events() if isinstance(e, HallQueue.TurnNear)]
    assert [(e.ticket, e.ahead) for e in near] == [(tickets[5], 3)]
