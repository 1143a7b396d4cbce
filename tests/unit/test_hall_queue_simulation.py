"""A scripted morning at two windows, with its waits worked out by hand, and a property over random days."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.case.values import Channel
from domain.hall_queue import (
    BEIJING,
    HallQueue,
    NothingToCallError,
    NoTicketInHandError,
    QueueSpec,
    TicketState,
    WindowBusyError,
    WindowSpec,
    estimated_wait,
    turn_is_near,
)
from domain.personal import PersonName
from tests.unit.test_hall_queue import CITIZEN, CLERK, KIOSK, replayed

pytestmark = pytest.mark.unit

HALL = "岳麓区政务服务中心"
A = QueueSpec(code="A", prefix="A", name="证照办理")
B = QueueSpec(code="B", prefix="B", name="社保医保")
# Window 1 calls A only; window 2 calls both, so it is the only window for B.
WINDOWS = (WindowSpec(code="1", queues=("A",)), WindowSpec(code="2", queues=("A", "B")))


def clock(hhmm: str, second: int = 0) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2026, 5, 7, hour, minute, second, tzinfo=BEIJING)


def wait(q: HallQueue, ticket: str) -> float | None:
    queue = q.ticket(ticket).queue
    return estimated_wait(q.ahead(ticket), q.recent_service_seconds(queue), q.active_windows(queue))


class Morning:
    """The clerks' and visitors' moves, each at its minute; a test checks the hall between them."""

    def __init__(self) -> None:
        self.q = HallQueue.open(HALL, clock("08:50").date(), (A, B), WINDOWS, actor=CLERK, at=clock("08:40"))
        self.calls: list[tuple[str, str]] = []

    def walk_in(self, queue: str, hhmm: str, second: int = 0, name: str | None = None) -> str:
        person = None if name is None else PersonName(name=name)
        return self.q.check_in(queue, at=clock(hhmm, second), actor=KIOSK, channel=Channel.KIOSK, name=person)

    def booked(self, queue: str, hhmm: str, slot: str, n: int) -> str:
        return self.q.check_in(
            queue,
            at=clock(hhmm),
            actor=CITIZEN,
            channel=Channel.MINIAPP,
            appointment_id=UUID(int=n),
            slot_start=clock(slot),
        )

    def call(self, window: str, hhmm: str) -> str:
        ticket = self.q.call_next(window, at=clock(hhmm), actor=CLERK)
        self.calls.append((window, ticket))
        return ticket

    def serve(self, window: str, hhmm: str) -> str:
        return self.q.serve(window, at=clock(hhmm), actor=CLERK)


def test_a_morning_at_two_windows() -> None:
    day = Morning()
    q = day.q
    q.open_window("1", at=clock("08:50"), actor=CLERK)
    q.open_window("2", at=clock("08:50"), actor=CLERK)

    assert day.walk_in("A", "08:55", name="张三") == "A001"
    assert day.walk_in("B", "08:56") == "B001"
    assert day.booked("A", "08:57", slot="09:30", n=1) == "A002"
    assert day.walk_in("A", "08:58") == "A003"
    assert day.booked("B", "08:59", slot="09:00", n=2) == "B002"
    assert day.booked("A", "09:00", slot="09:00", n=3) == "A004"
    assert day.walk_in("B", "09:01") == "B003"
    assert day.walk_in("A", "09:02") == "A005"
    assert [t.ticket for t in q.waiting("A")] == ["A004", "A002", "A001", "A003", "A005"]
    assert [t.ticket for t in q.waiting("B")] == ["B002", "B001", "B003"]
    # Nobody served yet, so the 300 s default: A005 has 4 ahead × 300 s ÷ 2 windows = 600 s;
    # B003 has 2 ahead × 300 s ÷ 1 window = 600 s; A004 is next, 0 ahead: 0 s.
    assert (wait(q, "A005"), wait(q, "B003"), wait(q, "A004")) == (600.0, 600.0, 0.0)

    assert day.call("1", "09:03") == "A004"
    assert day.call("2", "09:03") == "B002"  # both heads booked: B002's 09:00 slot beats A002's 09:30
    day.serve("1", "09:07")  # A004: 09:03 → 09:07 = 240 s
    # A005: 3 ahead (A002, A001, A003) × 240 s ÷ 2 windows = 360 s.
    assert wait(q, "A005") == 360.0
    assert day.call("1", "09:07") == "A002"
    day.serve("2", "09:09")  # B002: 09:03 → 09:09 = 360 s, in B
    assert day.call("2", "09:09") == "A001"  # walk-in heads: A001 checked in before B001

    # A001 does not come up: three calls, and the fourth press records the miss.
    assert q.recall("2", at=clock("09:10"), actor=CLERK) is TicketState.CALLED
    assert q.recall("2", at=clock("09:11"), actor=CLERK) is TicketState.CALLED
    assert q.recall("2", at=clock("09:12"), actor=CLERK) is TicketState.MISSED
    assert day.call("2", "09:12") == "B001"  # heads A003 and B001: B001 checked in earlier

    day.serve("1", "09:13")  # A002: 09:07 → 09:13 = 360 s
    # A005: 1 ahead (A003) × mean(240, 360) = 300 s ÷ 2 windows = 150 s. B003 heads B, with B001 in hand.
    assert (wait(q, "A005"), wait(q, "B003")) == (150.0, 0.0)
    assert day.call("1", "09:13") == "A003"

    # A003 came to the wrong counter: it goes to the head of B, ahead of B003.
    q.transfer("1", "B", at=clock("09:15"), actor=CLERK)
    assert [t.ticket for t in q.waiting("B")] == ["A003", "B003"]
    # B003: 1 ahead × 360 s (B's one service, B002) ÷ 1 window = 360 s.
    assert wait(q, "B003") == 360.0
    assert day.call("1", "09:15") == "A005"
    day.serve("2", "09:17")  # B001: 09:12 → 09:17 = 300 s
    assert day.call("2", "09:17") == "A003"  # A is empty; A003 heads B
    day.serve("1", "09:20")  # A005: 09:15 → 09:20 = 300 s
    q.close_window("1", at=clock("09:21"), actor=CLERK)

    assert day.walk_in("A", "09:21") == "A006"
    assert day.walk_in("A", "09:21", second=30) == "A007"
    # A007: 1 ahead × mean(240, 360, 300) = 300 s ÷ 1 open window for A (window 2) = 300 s.
    assert wait(q, "A007") == 300.0

    day.serve("2", "09:22")  # A003: 09:17 → 09:22 = 300 s, counted in B, where it was served
    assert day.call("2", "09:22") == "B003"  # heads A006 and B003: B003 joined before A006
    day.serve("2", "09:26")  # B003: 240 s
    assert day.call("2", "09:26") == "A006"
    assert wait(q, "A007") == 0.0
    day.serve("2", "09:30")  # A006: 240 s
    assert day.call("2", "09:30") == "A007"
    day.serve("2", "09:33")  # A007: 180 s
    with pytest.raises(NothingToCallError):
        q.call_next("2", at=clock("09:34"), actor=CLERK)

    assert day.calls == [
        ("1", "A004"),
        ("2", "B002"),
        ("1", "A002"),
        ("2", "A001"),
        ("2", "B001"),
        ("1", "A003"),
        ("1", "A005"),
        ("2", "A003"),
        ("2", "B003"),
        ("2", "A006"),
        ("2", "A007"),
    ]
    assert q.recent_service_seconds("A") == [240.0, 360.0, 300.0, 240.0, 180.0]
    assert q.recent_service_seconds("B") == [360.0, 300.0, 300.0, 240.0]
    missed = [t for t, view in q.tickets.items() if view.state is TicketState.MISSED]
    assert missed == ["A001"]
    assert all(view.state is TicketState.SERVED for t, view in q.tickets.items() if t != "A001")
    a003 = q.ticket("A003")
    assert (a003.queue, a003.window, a003.called_at, a003.served_at) == (
        "B",
        "2",
        clock("09:13"),
        clock("09:22"),
    )
    assert q.ticket("A001").display_name == "张*"

    events = q.collect_events()
    assert sum(isinstance(e, HallQueue.Missed) for e in events) == 1
    assert sum(isinstance(e, HallQueue.Transferred) for e in events) == 1
    assert replayed(events) == q


def ahead_over_time(events: Sequence[Any], ticket: str) -> list[tuple[str, int]]:
    """Replay the day event by event, as a notifier would see it, noting each change in the count ahead."""
    q: HallQueue | None = None
    seen: list[tuple[str, int]] = []
    for e in events:
        q = e.mutate(q)
        assert q is not None
        if ticket in q.tickets and q.ticket(ticket).state is TicketState.WAITING:
            n = q.ahead(ticket)
            if not seen or seen[-1][1] != n:
                seen.append((e.timestamp.strftime("%H:%M"), n))
    return seen


def the_morning_events() -> Sequence[Any]:
    """The same morning as above, without its checks, up to A003's second call at 09:17."""
    day = Morning()
    q = day.q
    q.open_window("1", at=clock("08:50"), actor=CLERK)
    q.open_window("2", at=clock("08:50"), actor=CLERK)
    day.walk_in("A", "08:55")
    day.walk_in("B", "08:56")
    day.booked("A", "08:57", slot="09:30", n=1)
    day.walk_in("A", "08:58")
    day.booked("B", "08:59", slot="09:00", n=2)
    day.booked("A", "09:00", slot="09:00", n=3)
    day.walk_in("B", "09:01")
    day.walk_in("A", "09:02")
    presses = [
        ("call", "1", "09:03"),
        ("call", "2", "09:03"),
        ("serve", "1", "09:07"),
        ("call", "1", "09:07"),
    ]
    presses += [("serve", "2", "09:09"), ("call", "2", "09:09")]
    presses += [("recall", "2", "09:10"), ("recall", "2", "09:11"), ("recall", "2", "09:12")]
    presses += [("call", "2", "09:12"), ("serve", "1", "09:13"), ("call", "1", "09:13")]
    presses += [
        ("transfer", "1", "09:15"),
        ("call", "1", "09:15"),
        ("serve", "2", "09:17"),
        ("call", "2", "09:17"),
    ]
    for press, window, hhmm in presses:
        match press:
            case "call":
                day.call(window, hhmm)
            case "serve":
                day.serve(window, hhmm)
            case "recall":
                q.recall(window, at=clock(hhmm), actor=CLERK)
            case "transfer":
                q.transfer(window, "B", at=clock(hhmm), actor=CLERK)
    assert day.calls[-1] == ("2", "A003")
    return q.collect_events()


def test_the_turn_is_near_notice_fires_once_when_three_are_left_ahead() -> None:
    events = the_morning_events()
    a005 = ahead_over_time(events, "A005")
    assert a005 == [("09:02", 4), ("09:03", 3), ("09:07", 2), ("09:09", 1), ("09:13", 0)]
    fired = [at for (_, before), (at, after) in pairwise(a005) if turn_is_near(before, after)]
    assert fired == ["09:03"]
    # B003 checked in with only 2 ahead, and the transfer pushed it back from 0 to 1: it never crosses 3.
    b003 = ahead_over_time(events, "B003")
    assert b003 == [("09:01", 2), ("09:03", 1), ("09:12", 0), ("09:15", 1), ("09:17", 0)]
    assert not any(turn_is_near(before, after) for (_, before), (_, after) in pairwise(b003))


# A random day at one window that serves both queues.

CHECK_IN = st.tuples(st.just("check_in"), st.sampled_from(["A", "B"]), st.none() | st.integers(0, 240))
PRESS = st.sampled_from([("call",), ("serve",), ("recall",)])


@settings(deadline=None)
@given(st.lists(st.one_of(CHECK_IN, PRESS), max_size=60))
def test_no_ticket_is_called_twice_and_none_is_lost(ops: list[tuple[object, ...]]) -> None:
    window = WindowSpec(code="1", queues=("A", "B"))
    q = HallQueue.open(
        HALL, clock("08:00").date(), (A, B), (window,), miss_after_calls=2, actor=CLERK, at=clock("08:00")
    )
    q.open_window("1", at=clock("08:00"), actor=CLERK)
    issued: list[str] = []
    called: list[str] = []
    served: set[str] = set()
    missed: set[str] = set()
    for i, op in enumerate(ops):
        now = clock("08:30") + timedelta(minutes=i)
        held = q.in_hand("1")
        match op:
            case ("check_in", str(queue), slot):
                booked = isinstance(slot, int)
                ticket = q.check_in(
                    queue,
                    at=now,
                    actor=KIOSK,
                    channel=Channel.KIOSK,
                    appointment_id=UUID(int=i + 1) if booked else None,
                    slot_start=clock("09:00") + timedelta(minutes=slot) if isinstance(slot, int) else None,
                )
                issued.append(ticket)
            case ("call",):
                heads = {line[0].ticket for line in (q.waiting("A"), q.waiting("B")) if line}
                if held is not None:
                    with pytest.raises(WindowBusyError):
                        q.call_next("1", at=now, actor=CLERK)
                elif not heads:
                    with pytest.raises(NothingToCallError):
                        q.call_next("1", at=now, actor=CLERK)
                else:
                    ticket = q.call_next("1", at=now, actor=CLERK)
                    assert ticket in heads  # nobody is skipped within their own line
                    assert ticket not in called
                    called.append(ticket)
            case ("serve",) | ("recall",) if held is None:
                with pytest.raises(NoTicketInHandError):
                    (q.serve if op == ("serve",) else q.recall)("1", at=now, actor=CLERK)
            case ("serve",):
                served.add(q.serve("1", at=now, actor=CLERK))
            case ("recall",):
                if q.recall("1", at=now, actor=CLERK) is TicketState.MISSED:
                    missed.add(str(held))

    waiting = [t.ticket for line in (q.waiting("A"), q.waiting("B")) for t in line]
    for line in (q.waiting("A"), q.waiting("B")):
        flags = [t.booked for t in line]
        assert flags == sorted(flags, reverse=True)  # no walk-in ahead of a booked ticket
    in_hand = [t for t in [q.in_hand("1")] if t is not None]
    parts = [served, missed, set(waiting), set(in_hand)]
    assert sum(map(len, parts)) == len(issued) == len(set(issued))
    assert set().union(*parts) == set(issued)
    assert replayed(q.collect_events()) == q
