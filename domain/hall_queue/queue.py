"""取号/叫号: one hall's queues for one day, as an aggregate whose events are the tickets' whole story.

Which ticket comes next:

- In one queue's line, transferred tickets go first (they already waited once;
  the earlier transfer first), then booked tickets by slot start, then walk-ins.
- A window serving several queues compares only the heads of their lines, so it
  never calls a ticket that its own line still has someone ahead of. A booked
  head beats a walk-in head (the earliest slot first); walk-in heads go by when
  they joined their line, which for a transferred ticket is its transfer.

Ties go to whoever joined first, counted over the hall's check-ins and transfers
rather than by time, so two tickets issued in the same second keep their order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event
from msgspec.structs import replace

from domain.case.values import Actor, Channel
from domain.hall_queue.estimate import turn_is_near
from domain.hall_queue.lines import QueueLines
from domain.hall_queue.values import (
    AlreadyCheckedInError,
    InvalidCommandError,
    NothingToCallError,
    QueueSpec,
    TicketState,
    TicketView,
    WindowBusyError,
    WindowClosedError,
    WindowSpec,
    beijing,
    call_key,
    check_config,
    ticket_number,
)
from domain.personal import PersonName

# Never change it: every hall's daily queue id derives from it, and a new one would orphan the stored days.
HALL_QUEUE_NAMESPACE = UUID("2039f617-4292-40f8-b75a-394e336e6232")


def queue_id(hall: str, day: date) -> UUID:
    return uuid5(HALL_QUEUE_NAMESPACE, f"hall-queue:{hall}:{day.isoformat()}")


class HallQueue(QueueLines, Aggregate):
    """One hall's tickets and windows for one day; a command's `at` is its event's timestamp."""

    class Event(Aggregate.Event):
        actor: Actor

    class Opened(Aggregate.Created, Event):
        hall: str
        day: date
        queues: tuple[QueueSpec, ...]
        windows: tuple[WindowSpec, ...]
        miss_after_calls: int

    class TicketIssued(Event):
        ticket: str
        queue: str
        sequence: int
        appointment_id: UUID | None
        slot_start: datetime | None
        name: PersonName | None
        subject: str | None
        case_id: UUID | None
        booked: bool
        channel: Channel

    class Called(Event):
        ticket: str
        window: str
        calls: int

    class Missed(Event):
        ticket: str
        window: str
        calls: int
        booked: bool
        appointment_id: UUID | None

    class Served(Event):
        ticket: str
        window: str
        queue: str
        called_at: datetime
        served_at: datetime
        service_seconds: float

    class Transferred(Event):
        ticket: str
        from_queue: str
        to_queue: str
        window: str

    class WindowOpened(Event):
        window: str

    class WindowClosed(Event):
        window: str

    class TurnNear(Event):
        """A waiting ticket's line moved up to NEAR_TURN_AHEAD or fewer ahead: "your turn is near"."""

        ticket: str
        ahead: int
        subject: str | None  # the account to tell; None for a kiosk ticket nobody follows online
        name: PersonName | None
        hall: str

    @staticmethod
    def create_id(hall: str, day: date) -> UUID:
        return queue_id(hall, day)

    @classmethod
    def open(
        cls,
        hall: str,
        day: date,
        queues: Iterable[QueueSpec],
        windows: Iterable[WindowSpec],
        *,
        miss_after_calls: int = 3,
        actor: Actor,
        at: datetime,
    ) -> HallQueue:
        """Start the day with every window closed; clerks open theirs as they sit down."""
        queues, windows = tuple(queues), tuple(windows)
        if not hall.strip():
            raise InvalidCommandError("hall is required")
        check_config(queues, windows, miss_after_calls)
        return cls(hall, day, queues, windows, miss_after_calls, actor=actor, timestamp=beijing(at))

    @event(Opened)
    def __init__(
        self,
        hall: str,
        day: date,
        queues: tuple[QueueSpec, ...],
        windows: tuple[WindowSpec, ...],
        miss_after_calls: int,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        self.hall = hall
        self.day = day
        self.queues = {q.code: q for q in queues}
        self.windows = {w.code: w for w in windows}
        self.miss_after_calls = miss_after_calls
        self.tickets: dict[str, TicketView] = {}
        self.issued = {q.code: 0 for q in queues}  # the last sequence of each queue
        self.joins = 0  # check-ins and transfers so far; see TicketView.joined
        self.checked_in: dict[UUID, str] = {}  # appointment → its ticket
        self.open_windows: set[str] = set()
        self.holding: dict[str, str] = {}  # window → the ticket in hand
        self.service_seconds: dict[str, list[float]] = {q.code: [] for q in queues}

    # Commands: every check comes before the event, so a refused command records nothing.

    def check_in(
        self,
        queue: str,
        *,
        at: datetime,
        actor: Actor,
        channel: Channel,
        appointment_id: UUID | None = None,
        slot_start: datetime | None = None,
        name: PersonName | None = None,
        subject: str | None = None,
        case_id: UUID | None = None,
    ) -> str:
        """取号: issue the queue's next ticket and return its number."""
        at = beijing(at)
        spec = self._queue(queue)
        if (appointment_id is None) != (slot_start is None):
            raise InvalidCommandError("an appointment and its slot start come together, or not at all")
        if appointment_id in self.checked_in:
            raise AlreadyCheckedInError(f"appointment {appointment_id} has {self.checked_in[appointment_id]}")
        sequence = self.issued[queue] + 1
        ticket = ticket_number(spec.prefix, sequence)
        self._ticket_issued(
            ticket=ticket,
            queue=queue,
            sequence=sequence,
            appointment_id=appointment_id,
            slot_start=None if slot_start is None else beijing(slot_start, "slot start"),
            name=name,
            subject=subject,
            case_id=case_id,
            booked=appointment_id is not None,
            channel=channel,
            actor=actor,
            timestamp=at,
        )
        return ticket

    def call_next(self, window: str, *, at: datetime, actor: Actor) -> str:
        """叫号: call the first of the heads of the window's lines (see the module docstring)."""
        at = beijing(at)
        spec = self._window(window)
        if window not in self.open_windows:
            raise WindowClosedError(f"window {window} is closed")
        if window in self.holding:
            raise WindowBusyError(f"window {window} has {self.holding[window]} in hand")
        heads = [line[0] for line in map(self.waiting, spec.queues) if line]
        if not heads:
            raise NothingToCallError(f"nobody is waiting for window {window}")
        ticket = min(heads, key=call_key).ticket
        # Only a call moves a line up: a check-in joins at the back (or, booked, ahead of walk-ins),
        # a transfer joins at the front, and tickets in hand are not in any line.
        before = self._aheads(spec.queues)
        self._called(ticket=ticket, window=window, calls=1, actor=actor, timestamp=at)
        for waiting, now_ahead in self._aheads(spec.queues).items():
            if turn_is_near(before[waiting], now_ahead):
                near = self.tickets[waiting]
                self._turn_near(
                    ticket=waiting,
                    ahead=now_ahead,
                    subject=near.subject,
                    name=near.name,
                    hall=self.hall,
                    actor=actor,
                    timestamp=at,
                )
        return ticket

    def recall(self, window: str, *, at: datetime, actor: Actor) -> TicketState:
        """Call the ticket in hand again; once it has had all its calls, record it missed instead."""
        at = beijing(at)
        held = self._held(window)
        if held.calls < self.miss_after_calls:
            self._called(ticket=held.ticket, window=window, calls=held.calls + 1, actor=actor, timestamp=at)
            return TicketState.CALLED
        self._missed(
            ticket=held.ticket,
            window=window,
            calls=held.calls,
            booked=held.booked,
            appointment_id=held.appointment_id,
            actor=actor,
            timestamp=at,
        )
        return TicketState.MISSED

    def serve(self, window: str, *, at: datetime, actor: Actor) -> str:
        """The visitor came up at the last call: the ticket is served from then until `at`."""
        at = beijing(at)
        held = self._held(window)
        assert held.called_at is not None and held.last_called_at is not None  # in hand means called
        # A clock that steps back must not give a negative service time.
        seconds = max(0.0, (at - held.last_called_at).total_seconds())
        self._served(
            ticket=held.ticket,
            window=window,
            queue=held.queue,
            called_at=held.called_at,
            served_at=at,
            service_seconds=seconds,
            actor=actor,
            timestamp=at,
        )
        return held.ticket

    def transfer(self, window: str, to_queue: str, *, at: datetime, actor: Actor) -> None:
        """Send the ticket in hand to the head of another queue's line, under the same number."""
        at = beijing(at)
        held = self._held(window)
        self._queue(to_queue)
        if to_queue == held.queue:
            raise InvalidCommandError(f"{held.ticket} is already in queue {to_queue}")
        self._transferred(
            ticket=held.ticket,
            from_queue=held.queue,
            to_queue=to_queue,
            window=window,
            actor=actor,
            timestamp=at,
        )

    def open_window(self, window: str, *, at: datetime, actor: Actor) -> bool:
        """False, and nothing recorded, when the window is already open."""
        at = beijing(at)
        self._window(window)
        if window in self.open_windows:
            return False
        self._window_opened(window=window, actor=actor, timestamp=at)
        return True

    def close_window(self, window: str, *, at: datetime, actor: Actor) -> bool:
        """False, and nothing recorded, when the window is already closed."""
        at = beijing(at)
        self._window(window)
        if window in self.holding:
            raise WindowBusyError(f"window {window} has {self.holding[window]} in hand; finish it first")
        if window not in self.open_windows:
            return False
        self._window_closed(window=window, actor=actor, timestamp=at)
        return True

    # Events: the only code that changes state, so replaying them rebuilds it exactly.

    @event(TicketIssued)
    def _ticket_issued(
        self,
        ticket: str,
        queue: str,
        sequence: int,
        appointment_id: UUID | None,
        slot_start: datetime | None,
        name: PersonName | None,
        subject: str | None,
        case_id: UUID | None,
        booked: bool,
        channel: Channel,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        self.issued[queue] = sequence
        if appointment_id is not None:
            self.checked_in[appointment_id] = ticket
        self.joins += 1
        self.tickets[ticket] = TicketView(
            ticket=ticket,
            queue=queue,
            booked=booked,
            appointment_id=appointment_id,
            slot_start=slot_start,
            subject=subject,
            case_id=case_id,
            name=name,
            issued_at=timestamp,
            joined=self.joins,
        )

    @event(Called)
    def _called(self, ticket: str, window: str, calls: int, actor: Actor, timestamp: datetime) -> None:
        t = self.tickets[ticket]
        called_at = timestamp if t.called_at is None else t.called_at
        self.tickets[ticket] = replace(
            t,
            state=TicketState.CALLED,
            window=window,
            calls=calls,
            called_at=called_at,
            last_called_at=timestamp,
        )
        self.holding[window] = ticket

    @event(Missed)
    def _missed(
        self,
        ticket: str,
        window: str,
        calls: int,
        booked: bool,
        appointment_id: UUID | None,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        self.tickets[ticket] = replace(self.tickets[ticket], state=TicketState.MISSED)
        del self.holding[window]

    @event(Served)
    def _served(
        self,
        ticket: str,
        window: str,
        queue: str,
        called_at: datetime,
        served_at: datetime,
        service_seconds: float,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        self.tickets[ticket] = replace(self.tickets[ticket], state=TicketState.SERVED, served_at=served_at)
        self.service_seconds[queue].append(service_seconds)
        del self.holding[window]

    @event(Transferred)
    def _transferred(
        self, ticket: str, from_queue: str, to_queue: str, window: str, actor: Actor, timestamp: datetime
    ) -> None:
        self.joins += 1
        t = replace(self.tickets[ticket], queue=to_queue, state=TicketState.WAITING, window=None, calls=0)
        self.tickets[ticket] = replace(t, joined=self.joins, transferred=True)
        del self.holding[window]

    @event(WindowOpened)
    def _window_opened(self, window: str, actor: Actor, timestamp: datetime) -> None:
        self.open_windows.add(window)

    @event(WindowClosed)
    def _window_closed(self, window: str, actor: Actor, timestamp: datetime) -> None:
        self.open_windows.discard(window)

    @event(TurnNear)
    def _turn_near(
        self,
        ticket: str,
        ahead: int,
        subject: str | None,
        name: PersonName | None,
        hall: str,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        pass  # a notice, not a change: the line is as the call left it
