"""What a hall's day of queueing is configured with and shows: queues, windows, tickets, and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from uuid import UUID

import msgspec

from domain.personal import PersonName, mask

# Ticket times are Beijing times at a fixed offset, like every case time, so the store can write them exactly.
BEIJING = timezone(timedelta(hours=8))


class HallQueueError(Exception):
    """A hall-queue command was refused; nothing was recorded."""


class InvalidQueueConfigError(HallQueueError):
    pass


class InvalidCommandError(HallQueueError):
    """A malformed argument: a naive time, a slot without an appointment, a transfer to the same queue."""


class UnknownQueueError(HallQueueError):
    pass


class UnknownWindowError(HallQueueError):
    pass


class UnknownTicketError(HallQueueError):
    pass


class TicketNotWaitingError(HallQueueError):
    """Only a waiting ticket has a place in a line."""


class WindowBusyError(HallQueueError):
    """The window already has a ticket in hand."""


class WindowClosedError(HallQueueError):
    pass


class NothingToCallError(HallQueueError):
    pass


class NoTicketInHandError(HallQueueError):
    pass


class AlreadyCheckedInError(HallQueueError):
    """An appointment gets one ticket; a second check-in would put the visitor in line twice."""


class QueueSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One line per group of items; `prefix` starts its ticket numbers (A → A001)."""

    code: str
    prefix: str
    name: str


class WindowSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A counter and the queues (by code) its clerk calls from."""

    code: str
    queues: tuple[str, ...]


class TicketState(StrEnum):
    WAITING = "waiting"
    CALLED = "called"  # in hand at a window
    SERVED = "served"
    MISSED = "missed"  # 过号: called the allowed number of times without answer


class TicketView(msgspec.Struct, frozen=True, kw_only=True):
    """One ticket as it stands; `name` is whole, so whoever shows it uses `display_name`."""

    ticket: str
    queue: str  # the current queue, which a transfer changes
    booked: bool
    appointment_id: UUID | None
    slot_start: datetime | None
    subject: str | None
    case_id: UUID | None
    name: PersonName | None
    issued_at: datetime
    # The hall-wide count of check-ins and transfers when it joined its current line: a tie-break
    # that, unlike a time, two tickets can never share.
    joined: int
    state: TicketState = TicketState.WAITING
    window: str | None = None  # where it is in hand, or where it was served or missed
    calls: int = 0  # calls in the current queue; a transfer starts again from 0
    called_at: datetime | None = None  # the first call ever, so issued_at → called_at is the wait it ended
    last_called_at: datetime | None = None
    served_at: datetime | None = None
    transferred: bool = False

    @property
    def display_name(self) -> str | None:
        """张*: the only form of the name a hall screen or a log may show."""
        return None if self.name is None else mask(self.name)


def line_key(t: TicketView) -> tuple[int, float, int]:
    """Order within one queue: transferred, then booked by slot start, then walk-ins; ties by joining."""
    if t.transferred:
        return (0, 0.0, t.joined)
    if t.slot_start is not None:
        return (1, t.slot_start.timestamp(), t.joined)
    return (2, 0.0, t.joined)


def call_key(t: TicketView) -> tuple[int, float, int]:
    """Order among the heads of a window's lines: booked by slot start, then by joining."""
    if t.slot_start is not None:
        return (0, t.slot_start.timestamp(), t.joined)
    return (1, 0.0, t.joined)


def ticket_number(prefix: str, sequence: int) -> str:
    """A001 … A999, then A1000: three digits at least, never cut."""
    return f"{prefix}{sequence:03d}"


def check_config(queues: Sequence[QueueSpec], windows: Sequence[WindowSpec], miss_after_calls: int) -> None:
    if not queues:
        raise InvalidQueueConfigError("a hall needs at least one queue")
    if not windows:
        raise InvalidQueueConfigError("a hall needs at least one window")
    if isinstance(miss_after_calls, bool) or not isinstance(miss_after_calls, int) or miss_after_calls < 1:
        raise InvalidQueueConfigError(
            f"miss_after_calls must be an integer of at least 1, not {miss_after_calls!r}"
        )
    _unique("queue code", [q.code for q in queues])
    _unique("ticket prefix", [q.prefix for q in queues])
    _unique("window code", [w.code for w in windows])
    for q in queues:
        if not q.code.strip():
            raise InvalidQueueConfigError("a queue code must not be blank")
        # Letters only: with a digit in a prefix, A1 + 001 and A + 1001 would both read A1001.
        if not (q.prefix.isascii() and q.prefix.isalpha() and q.prefix.isupper()):
            raise InvalidQueueConfigError(f"prefix of {q.code} must be capital letters A–Z, not {q.prefix!r}")
    known = {q.code for q in queues}
    for w in windows:
        if not w.code.strip():
            raise InvalidQueueConfigError("a window code must not be blank")
        if not w.queues:
            raise InvalidQueueConfigError(f"window {w.code} serves no queue")
        _unique(f"queue of window {w.code}", list(w.queues))
        if unknown := sorted(set(w.queues) - known):
            raise InvalidQueueConfigError(f"window {w.code} serves unknown queues {unknown}")


def beijing(at: datetime, what: str = "time") -> datetime:
    """The same instant at UTC+8; a naive time is refused, since its instant is unknown."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommandError(f"{what} {at.isoformat()} has no time zone")
    return at.astimezone(BEIJING)


def _unique(what: str, values: list[str]) -> None:
    if dupes := sorted({v for v in values if values.count(v) > 1}):
        raise InvalidQueueConfigError(f"{what} repeated: {dupes}")
