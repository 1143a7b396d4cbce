"""What a hall's day of queues answers: its lines, who is ahead of whom, what each window holds.

The state these read is built by `HallQueue`'s events alone (see queue.py); this mixin
only reads it, for the commands' checks and for read models.
"""

from __future__ import annotations

from uuid import UUID

from domain.hall_queue.values import (
    NoTicketInHandError,
    QueueSpec,
    TicketNotWaitingError,
    TicketState,
    TicketView,
    UnknownQueueError,
    UnknownTicketError,
    UnknownWindowError,
    WindowSpec,
    line_key,
)


class QueueLines:
    hall: str
    queues: dict[str, QueueSpec]
    windows: dict[str, WindowSpec]
    tickets: dict[str, TicketView]
    checked_in: dict[UUID, str]
    open_windows: set[str]
    holding: dict[str, str]
    service_seconds: dict[str, list[float]]

    def waiting(self, queue: str) -> list[TicketView]:
        """The queue's line, the next to be called first."""
        self._queue(queue)
        line = [t for t in self.tickets.values() if t.queue == queue and t.state is TicketState.WAITING]
        return sorted(line, key=line_key)

    def ahead(self, ticket: str) -> int:
        """How many tickets come before this one in its line."""
        t = self.ticket(ticket)
        if t.state is not TicketState.WAITING:
            raise TicketNotWaitingError(f"{ticket} is {t.state}, not waiting")
        return [w.ticket for w in self.waiting(t.queue)].index(ticket)

    def position(self, ticket: str) -> int:
        """Place in line, 0 being next: the same count as `ahead`, by the name a screen gives it."""
        return self.ahead(ticket)

    def ticket(self, ticket: str) -> TicketView:
        try:
            return self.tickets[ticket]
        except KeyError:
            raise UnknownTicketError(f"no ticket {ticket} in hall {self.hall} today") from None

    def in_hand(self, window: str) -> str | None:
        self._window(window)
        return self.holding.get(window)

    def current_calls(self) -> list[tuple[str, str]]:
        """(window, ticket) for each window with a ticket in hand, in the configured window order."""
        return [(w, self.holding[w]) for w in self.windows if w in self.holding]

    def active_windows(self, queue: str) -> int:
        self._queue(queue)
        return sum(1 for w in self.open_windows if queue in self.windows[w].queues)

    def recent_service_seconds(self, queue: str, n: int = 10) -> list[float]:
        """The queue's last `n` service times, oldest first."""
        self._queue(queue)
        return self.service_seconds[queue][-n:] if n > 0 else []

    def _queue(self, code: str) -> QueueSpec:
        if code not in self.queues:
            raise UnknownQueueError(f"no queue {code} in hall {self.hall}")
        return self.queues[code]

    def _window(self, code: str) -> WindowSpec:
        if code not in self.windows:
            raise UnknownWindowError(f"no window {code} in hall {self.hall}")
        return self.windows[code]

    def _held(self, window: str) -> TicketView:
        self._window(window)
        if window not in self.holding:
            raise NoTicketInHandError(f"window {window} has no ticket in hand")
        return self.tickets[self.holding[window]]

    def _aheads(self, queues: tuple[str, ...]) -> dict[str, int]:
        return {t.ticket: n for queue in queues for n, t in enumerate(self.waiting(queue))}
