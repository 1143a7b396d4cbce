"""Hall-queue commands over the event store: 取号 at the kiosk or in the mini-program, and the windows' calls.

A hall's queue is one aggregate per Beijing day, opened by the day's first command
from the hall's configuration as it stands then; a later reconfiguration shows from
the next day. A check-in with a booking changes the queue, the appointment (checked
in, with the ticket) and, when it has one, the case (a trip, 跑动) in one atomic
append, so none is recorded without the others. Every command on one hall-day queues
on an in-process lock, since each appends to the same aggregate: at the morning rush
they would otherwise load the same version and all but one would retry. Across
processes the store's version check decides, and the loser retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from backend.booking.service import BookingService
from backend.cases.access import CaseNotFoundError, NotYourCaseError
from backend.hall_queue.errors import AppointmentElsewhereError, LocationRequiredError, NotHallStaffError
from backend.store.aggregates import AggregateStore
from backend.store.retries import KeyedLocks, retry_on_conflict
from domain.booking import Appointment, GeoPoint, HallConfig, TooFarFromHallError
from domain.booking import booking as ops
from domain.booking.schedule import distance_m
from domain.case import Actor, Case, Channel, Person, Role
from domain.hall_queue import BEIJING, HallQueue, InvalidCommandError, QueueSpec, TicketState, WindowSpec
from domain.hall_queue import queue_id as hall_queue_id
from domain.personal import PersonName
from projections.hall_queue_reads import TicketStatus, WindowStatus, ticket_status, window_status

R = TypeVar("R")
TRIP_PURPOSE = "取号"
_OWN = (Role.CITIZEN, Role.AGENT)  # who acts for themselves, and so only with their own case


class HallQueueService:
    def __init__(
        self,
        aggregates: AggregateStore | Callable[[], AggregateStore],
        *,
        clock: Callable[[], datetime],
        bookings: BookingService,
    ) -> None:
        self._aggregates, self.clock, self.bookings = aggregates, clock, bookings
        self._locks = KeyedLocks()

    @property
    def aggregates(self) -> AggregateStore:
        a = self._aggregates
        return a if isinstance(a, AggregateStore) else a()

    async def check_in(
        self,
        actor: Actor,
        channel: Channel,
        *,
        hall: str,
        group: str | None = None,
        item_code: str | None = None,
        appointment_id: UUID | None = None,
        case_id: UUID | None = None,
        location: GeoPoint | None = None,
    ) -> TicketStatus:
        """取号: with a booking its group and a booked place in line, else the group named or the item's."""
        if actor.role not in _OWN:
            _staff_of(actor, hall)
        config = (await self.bookings.hall(hall)).config
        if channel is Channel.MINIAPP or actor.role in _OWN:
            _near_enough(config, hall, location)

        async def run() -> TicketStatus:
            now = self.clock()
            queue = await self._day(hall, actor, now, config)
            appointment: Appointment | None = None
            slot_start, name, subject = None, None, actor.id if actor.role in _OWN else None
            if appointment_id is not None:
                appointment = await self.bookings.appointment(appointment_id)
                if appointment.hall != hall:
                    raise AppointmentElsewhereError(
                        f"the appointment is at hall {appointment.hall}, not {hall}"
                    )
                appointment.admit(actor)
                if (issued := queue.checked_in.get(appointment_id)) is not None:
                    return ticket_status(queue, issued)  # a retry: the ticket it was given
                code = appointment.group
                slot_start, name, subject = (
                    appointment.slot.start,
                    appointment.visitor.name,
                    appointment.subject,
                )
            else:
                code = _group(config, group, item_code)
                if subject is not None and (held := _holding(queue, subject, code)) is not None:
                    return ticket_status(queue, held)  # a retry, or a second tap: one place in line each
            linked = case_id or (appointment.case_id if appointment is not None else None)
            case = None if linked is None else await self._case(linked, actor)
            if case is not None:
                name = name or _person_name(case)
                if subject is None and case.submitted_by.role in _OWN:
                    subject = case.submitted_by.id
            ticket = queue.check_in(
                code, at=now, actor=actor, channel=channel, appointment_id=appointment_id,
                slot_start=slot_start, name=name, subject=subject, case_id=linked,
            )  # fmt: skip
            changed: list[Aggregate] = [queue]
            if appointment is not None:
                ops.check_in(appointment, actor=actor, channel=channel, now=now, ticket=ticket)
                changed.append(appointment)
            if case is not None:
                # Keyed on the ticket, so the trip is counted once whatever retries the append.
                case.record_trip(
                    actor, channel, now, purpose=TRIP_PURPOSE, hall=hall, request_id=f"{queue.id}:{ticket}"
                )
                changed.append(case)
            await self.aggregates.save(*changed)
            return ticket_status(queue, ticket)

        return await self._command(hall, run)

    async def call_next(self, actor: Actor, hall: str, window: str) -> TicketStatus:
        return await self._at_window(
            actor, hall, lambda q, now: ticket_status(q, q.call_next(window, at=now, actor=actor))
        )

    async def recall(self, actor: Actor, hall: str, window: str) -> TicketStatus:
        """Call the ticket in hand again; past the hall's number of calls it is missed (过号)."""

        def recall(queue: HallQueue, now: datetime) -> TicketStatus:
            held = queue.in_hand(window)
            queue.recall(window, at=now, actor=actor)
            assert held is not None  # recall refuses a window with nothing in hand
            return ticket_status(queue, held)

        return await self._at_window(actor, hall, recall)

    async def serve(self, actor: Actor, hall: str, window: str) -> TicketStatus:
        return await self._at_window(
            actor, hall, lambda q, now: ticket_status(q, q.serve(window, at=now, actor=actor))
        )

    async def transfer(self, actor: Actor, hall: str, window: str, to_queue: str) -> TicketStatus:
        """转号: the ticket in hand goes to the head of another queue's line."""

        def transfer(queue: HallQueue, now: datetime) -> TicketStatus:
            held = queue.in_hand(window)
            queue.transfer(window, to_queue, at=now, actor=actor)
            assert held is not None  # transfer refuses a window with nothing in hand
            return ticket_status(queue, held)

        return await self._at_window(actor, hall, transfer)

    async def open_window(self, actor: Actor, hall: str, window: str) -> WindowStatus:
        return await self._at_window(
            actor, hall, lambda q, now: window_status(q, window, q.open_window(window, at=now, actor=actor))
        )

    async def close_window(self, actor: Actor, hall: str, window: str) -> WindowStatus:
        return await self._at_window(
            actor, hall, lambda q, now: window_status(q, window, q.close_window(window, at=now, actor=actor))
        )

    async def today(self, hall: str) -> HallQueue | None:
        """The hall's queue of today as the store has it; None before the day's first command."""
        day = self.clock().astimezone(BEIJING).date()
        queue = await self.aggregates.find(hall_queue_id(hall, day))
        return queue if isinstance(queue, HallQueue) else None

    async def _at_window(self, actor: Actor, hall: str, command: Callable[[HallQueue, datetime], R]) -> R:
        _staff_of(actor, hall)

        async def run() -> R:
            now = self.clock()
            queue = await self._day(hall, actor, now)
            result = command(queue, now)
            if queue.pending_events:  # opening an open window records nothing
                await self.aggregates.save(queue)
            return result

        return await self._command(hall, run)

    async def _day(
        self, hall: str, actor: Actor, now: datetime, config: HallConfig | None = None
    ) -> HallQueue:
        """Today's queue; on the day's first command, opened (not yet saved) from the hall's configuration."""
        day = now.astimezone(BEIJING).date()
        queue = await self.aggregates.find(hall_queue_id(hall, day))
        if isinstance(queue, HallQueue):
            return queue
        if config is None:
            config = (await self.bookings.hall(hall)).config
        return HallQueue.open(
            hall,
            day,
            [QueueSpec(code=g.code, prefix=g.prefix, name=g.name) for g in config.groups],
            # A window serving no group calls nobody: it has no place in the queue.
            [WindowSpec(code=w.code, queues=w.groups) for w in config.windows if w.groups],
            miss_after_calls=config.rules.miss_after_calls,
            actor=actor,
            at=now,
        )

    async def _case(self, case_id: UUID, actor: Actor) -> Case:
        case = await self.aggregates.find(case_id)
        if not isinstance(case, Case):
            raise CaseNotFoundError(f"no case {case_id}")
        if actor.role in _OWN and case.submitted_by.id != actor.id:
            raise NotYourCaseError("a visitor checks in only with a case of their own")
        return case

    async def _command(self, hall: str, run: Callable[[], Awaitable[R]]) -> R:
        # The day's queue takes every command of the hall: one at a time here, the store between processes.
        async with self._locks(hall_queue_id(hall, self.clock().astimezone(BEIJING).date())):
            return await retry_on_conflict(run)


def _staff_of(actor: Actor, hall: str) -> None:
    """A clerk of this hall, a manager of it (an admin has no hall), or the system."""
    if actor.role is Role.SYSTEM:
        return
    if actor.role is Role.CLERK and actor.hall == hall:
        return
    if actor.role is Role.MANAGER and actor.hall in (None, hall):
        return
    raise NotHallStaffError(f"only a clerk or the manager of hall {hall} may do this")


def _near_enough(config: HallConfig, hall: str, location: GeoPoint | None) -> None:
    if location is None:
        raise LocationRequiredError("a check-in from the mini-program needs the visitor's location")
    if config.location is None:
        raise TooFarFromHallError(f"hall {hall} has no location on record: take a ticket at its kiosk")
    metres = distance_m(location.lat, location.lon, config.location.lat, config.location.lon)
    radius = config.rules.checkin_radius_m
    if metres > radius:
        raise TooFarFromHallError(f"{metres:.0f} m from hall {hall}; check-in is open within {radius} m")


def _group(config: HallConfig, group: str | None, item_code: str | None) -> str:
    if group is not None:
        return group
    if item_code is None:
        raise InvalidCommandError("name the group, or the item to be served")
    found = config.group_of_item(item_code)
    if found is None:
        raise InvalidCommandError(f"no queue of this hall serves item {item_code}")
    return found.code


def _holding(queue: HallQueue, subject: str, code: str) -> str | None:
    """The account's ticket still in this line (waiting or at a window), if it has one."""
    live = (TicketState.WAITING, TicketState.CALLED)
    return next(
        (
            t.ticket
            for t in queue.tickets.values()
            if t.subject == subject and t.queue == code and t.state in live
        ),
        None,
    )


def _person_name(case: Case) -> PersonName | None:
    return case.applicant.name if isinstance(case.applicant, Person) else None
