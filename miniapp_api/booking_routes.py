"""Booking routes: halls and free slots (public), appointments (citizens, clerks), hall set-up (managers).

A hold answers with the appointment as the event store has it, and so do confirm,
cancel, one appointment and its calendar file: a citizen who has just booked sees
the booking at once. Lists come from the read model.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol
from uuid import UUID

from litestar import Response, Router, delete, get, post, put
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from domain.booking import (
    Appointment,
    AppointmentStateError,
    BookingBannedError,
    CancelTooLateError,
    CapReachedError,
    CheckInClosedError,
    Hall,
    HallConfig,
    HoldExpiredError,
    InvalidHallConfigError,
    NotBookableError,
    NotYourAppointmentError,
    SlotFullError,
    TooFarFromHallError,
    UnknownHallError,
    Visitor,
)
from domain.case import Actor, Channel
from domain.case import Role as DomainRole
from domain.personal import IdNumber, PersonName, Phone
from miniapp_api.appointment_ics import appointment_ics
from miniapp_api.auth import EXCLUDE_FROM_AUTH, CurrentPrincipal, require_roles
from miniapp_api.booking_schemas import (
    AppointmentOut,
    CancelIn,
    CloseDayIn,
    DayOut,
    HallConfigIn,
    HallOut,
    HoldIn,
    RescheduleIn,
    VisitorIn,
    appointment_out,
    appointment_view_out,
    day_out,
    hall_out,
)
from miniapp_api.case_parties import PersonalFields
from miniapp_api.principal import Principal, Role, domain_actor
from miniapp_api.problems import ProblemMap
from projections.appointments import AppointmentQueries, HallView

_PUBLIC = {EXCLUDE_FROM_AUTH: True}
_PRIVATE = CacheControlHeader(private=True, no_store=True)
_BOOKERS = require_roles(Role.CITIZEN, Role.CLERK, Role.MANAGER)
_MANAGERS = require_roles(Role.MANAGER, Role.ADMIN)
_HALL_STAFF = require_roles(Role.CLERK, Role.MANAGER, Role.ADMIN)
_ROLES = {
    Role.CITIZEN: DomainRole.CITIZEN,
    Role.CLERK: DomainRole.CLERK,
    Role.MANAGER: DomainRole.MANAGER,
    Role.ADMIN: DomainRole.MANAGER,
}


class BookingCommands(Protocol):
    """What the routes ask of the booking service (backend.booking.service is the adapter)."""

    async def hold(
        self,
        actor: Actor,
        channel: Channel,
        *,
        hall_code: str,
        item_code: str,
        start: datetime,
        visitor: Visitor,
        request_id: str | None = None,
        replaces: UUID | None = None,
        case_id: UUID | None = None,
    ) -> Appointment: ...
    async def confirm(self, actor: Actor, channel: Channel, appointment_id: UUID) -> Appointment: ...
    async def cancel(
        self, actor: Actor, channel: Channel, appointment_id: UUID, reason: str = ""
    ) -> Appointment: ...
    async def appointment(self, appointment_id: UUID) -> Appointment: ...
    async def configure_hall(self, actor: Actor, code: str, config: HallConfig) -> tuple[Hall, bool]: ...
    async def close_day(
        self, actor: Actor, code: str, day: date, reason: str, *, reopen: bool = False
    ) -> Hall: ...


def actor_of(principal: Principal) -> tuple[Actor, Channel]:
    """The actor events record; a citizen's display name stays out of the log (it is personal)."""
    actor = domain_actor(principal, _ROLES, "booking")
    return actor, Channel.MINIAPP if actor.role is DomainRole.CITIZEN else Channel.HALL_WINDOW


def visitor_of(body: VisitorIn) -> Visitor:
    """The visitor's personal fields checked into domain values; one 400 names every bad field."""
    fields = PersonalFields()
    name = fields.check("visitor.name", lambda: PersonName(body.name.strip()))
    number = fields.check("visitor.idNumber", lambda: IdNumber.parse(body.id_number))
    given = body.phone
    phone = None if given is None else fields.check("visitor.phone", lambda: Phone.parse(given))
    if fields.errors or name is None or number is None:
        raise fields.failure()
    return Visitor(name=name, id_number=number, phone=phone)


def booking_router(service: BookingCommands, queries: AppointmentQueries) -> Router:
    async def _hall(code: str) -> HallView:
        hall = await queries.hall(code)
        if hall is None:
            raise NotFoundException(f"no hall {code}")
        return hall

    @get("/halls", opt=_PUBLIC, security=[{}], tags=["halls"], summary="Service halls that take bookings")
    async def halls() -> list[HallOut]:
        return [hall_out(h, await queries.bookable_days(h)) for h in await queries.halls()]

    @get(
        "/halls/{hall:str}",
        opt=_PUBLIC,
        security=[{}],
        tags=["halls"],
        summary="One hall: groups, hours, rules",
    )
    async def one_hall(hall: FromPath[str]) -> HallOut:
        found = await _hall(hall)
        return hall_out(found, await queries.bookable_days(found))

    @get(
        "/halls/{hall:str}/slots",
        opt=_PUBLIC,
        security=[{}],
        tags=["halls"],
        summary="Free seats per slot for an item on a day",
    )
    async def slots(hall: FromPath[str], item: str, day: date) -> DayOut:
        found = await _hall(hall)
        group = found.config.group_of_item(item)
        if group is None:
            raise NotFoundException(f"hall {hall} takes no bookings for item {item}")
        return day_out(await queries.day(found, group.code, day))

    @post(
        "/appointments",
        guards=[_BOOKERS],
        tags=["appointments"],
        summary="Hold a seat (占号), for hold_minutes",
    )
    async def hold(data: JSONBody[HoldIn], principal: CurrentPrincipal) -> AppointmentOut:
        actor, channel = actor_of(principal)
        appointment = await service.hold(
            actor, channel, hall_code=data.hall, item_code=data.item_code, start=data.start,
            visitor=visitor_of(data.visitor), request_id=data.client_request_id, case_id=data.case_id,
        )  # fmt: skip
        return appointment_out(appointment)

    @get(
        "/appointments",
        guards=[_BOOKERS],
        cache_control=_PRIVATE,
        tags=["appointments"],
        summary="My appointments",
    )
    async def mine(principal: CurrentPrincipal, upcoming: bool = False) -> list[AppointmentOut]:
        return [
            appointment_view_out(a) for a in await queries.mine(principal.subject, upcoming_only=upcoming)
        ]

    async def _own(principal: Principal, appointment_id: UUID) -> Appointment:
        appointment = await service.appointment(appointment_id)
        actor, _ = actor_of(principal)
        appointment.admit(actor)
        return appointment

    @get("/appointments/{appointment:uuid}", guards=[_BOOKERS], cache_control=_PRIVATE, tags=["appointments"])
    async def one(appointment: FromPath[UUID], principal: CurrentPrincipal) -> AppointmentOut:
        return appointment_out(await _own(principal, appointment))

    @get(
        "/appointments/{appointment:uuid}/calendar.ics",
        guards=[_BOOKERS],
        tags=["appointments"],
        summary="The appointment as an iCalendar file, with a reminder an hour before",
        media_type="text/calendar",
    )
    async def ics(appointment: FromPath[UUID], principal: CurrentPrincipal) -> Response[bytes]:
        found = await _own(principal, appointment)
        body = appointment_ics(found, await _hall(found.hall), stamp=datetime.now(found.slot.start.tzinfo))
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="appointment-{found.id}.ics"',
                "Cache-Control": _PRIVATE.to_header(),
            },
        )

    @post(
        "/appointments/{appointment:uuid}/confirmation",
        guards=[_BOOKERS],
        status_code=200,
        tags=["appointments"],
        summary="Confirm a held seat",
    )
    async def confirm(appointment: FromPath[UUID], principal: CurrentPrincipal) -> AppointmentOut:
        actor, channel = actor_of(principal)
        return appointment_out(await service.confirm(actor, channel, appointment))

    @post(
        "/appointments/{appointment:uuid}/cancellation",
        guards=[_BOOKERS],
        status_code=200,
        tags=["appointments"],
        summary="Cancel, until the cut-off before the slot",
    )
    async def cancel(
        appointment: FromPath[UUID], principal: CurrentPrincipal, data: JSONBody[CancelIn | None] = None
    ) -> AppointmentOut:
        actor, channel = actor_of(principal)
        reason = "" if data is None else data.reason
        return appointment_out(await service.cancel(actor, channel, appointment, reason))

    @post(
        "/appointments/{appointment:uuid}/reschedule",
        guards=[_BOOKERS],
        tags=["appointments"],
        summary="Hold a new seat for this appointment; confirming it gives the old seat back",
    )
    async def reschedule(
        appointment: FromPath[UUID], data: JSONBody[RescheduleIn], principal: CurrentPrincipal
    ) -> AppointmentOut:
        old = await _own(principal, appointment)
        actor, channel = actor_of(principal)
        new = await service.hold(
            actor, channel, hall_code=old.hall, item_code=old.item_code, start=data.start,
            visitor=old.visitor, request_id=data.client_request_id, replaces=old.id, case_id=old.case_id,
        )  # fmt: skip
        return appointment_out(new)

    @get(
        "/admin/halls/{hall:str}/appointments",
        guards=[_HALL_STAFF],
        cache_control=_PRIVATE,
        tags=["hall admin"],
        summary="The hall's bookings of a day",
    )
    async def hall_day(hall: FromPath[str], day: date, principal: CurrentPrincipal) -> list[AppointmentOut]:
        _staff_of(principal, hall)
        return [appointment_view_out(a) for a in await queries.hall_day(hall, day)]

    @put(
        "/admin/halls/{hall:str}",
        guards=[_MANAGERS],
        tags=["hall admin"],
        summary="Register or reconfigure a hall",
    )
    async def configure(
        hall: FromPath[str], data: JSONBody[HallConfigIn], principal: CurrentPrincipal
    ) -> Response[dict[str, object]]:
        actor, _ = actor_of(principal)
        registered, changed = await service.configure_hall(actor, hall, data.to_domain())
        return Response({"code": registered.code, "changed": changed, "version": registered.version})

    @put(
        "/admin/halls/{hall:str}/closed-days/{day:date}",
        guards=[_MANAGERS],
        tags=["hall admin"],
        summary="Close the hall on a day",
    )
    async def close_day(
        hall: FromPath[str], day: FromPath[date], data: JSONBody[CloseDayIn], principal: CurrentPrincipal
    ) -> Response[dict[str, object]]:
        actor, _ = actor_of(principal)
        closed = await service.close_day(actor, hall, day, data.reason)
        return Response(
            {"code": closed.code, "closedDays": sorted(d.isoformat() for d in closed.closed_days)}
        )

    @delete(
        "/admin/halls/{hall:str}/closed-days/{day:date}",
        guards=[_MANAGERS],
        tags=["hall admin"],
        summary="Open the hall again on a day",
        status_code=200,
    )
    async def reopen_day(
        hall: FromPath[str], day: FromPath[date], principal: CurrentPrincipal
    ) -> Response[dict[str, object]]:
        actor, _ = actor_of(principal)
        opened = await service.close_day(actor, hall, day, "", reopen=True)
        return Response(
            {"code": opened.code, "closedDays": sorted(d.isoformat() for d in opened.closed_days)}
        )

    handlers: list[HTTPRouteHandler] = [
        halls, one_hall, slots, hold, mine, one, ics, confirm, cancel, reschedule,
        hall_day, configure, close_day, reopen_day,
    ]  # fmt: skip
    return Router(path="/api/v1", route_handlers=handlers)


def _staff_of(principal: Principal, hall: str) -> None:
    if principal.role is not Role.ADMIN and principal.hall != hall:
        raise PermissionDeniedException(f"only staff of hall {hall} may see its bookings")


def register_booking_problems(problems: ProblemMap) -> ProblemMap:
    """Booking's refusals: each a stable type a mini-program can switch on."""
    problems.register(SlotFullError, 409, "slot-full", "The slot is full")
    problems.register(CapReachedError, 409, "booking-cap-reached", "Booking limit reached")
    problems.register(BookingBannedError, 403, "booking-banned", "Booking suspended after repeated no-shows")
    problems.register(NotBookableError, 422, "slot-not-bookable", "Not a slot that can be booked now")
    problems.register(HoldExpiredError, 409, "hold-expired", "The hold has expired")
    problems.register(CancelTooLateError, 409, "cancel-too-late", "Past the cancellation cut-off")
    problems.register(
        AppointmentStateError, 409, "appointment-state", "Not possible in the appointment's state"
    )
    problems.register(NotYourAppointmentError, 403, "appointment-not-yours", "Not this caller's appointment")
    problems.register(UnknownHallError, 404, "hall-not-found", "No such hall")
    problems.register(InvalidHallConfigError, 422, "hall-config-invalid", "The hall configuration is invalid")
    problems.register(CheckInClosedError, 409, "check-in-closed", "Check-in is not open for this booking")
    problems.register(TooFarFromHallError, 403, "too-far-from-hall", "Too far from the hall to check in")
    return problems
