"""Trips (跑动) and 督办: what the 最多跑一次 metrics and the departments' warning lights are built from."""

from __future__ import annotations

from datetime import date, datetime

from domain.case import checks
from domain.case.base import CaseBase
from domain.case.errors import InvalidCommandError
from domain.case.records import Light, Supervision, Trip
from domain.case.status import UNDER_WAY
from domain.case.values import Actor, Channel, Role

# Whoever sees the applicant in person: the window, the hall's check-in, or the applicant at a kiosk.
TRIP_RECORDERS = (Role.CLERK, Role.SYSTEM, Role.CITIZEN, Role.AGENT)


class CaseSupervision(CaseBase):
    @property
    def trips(self) -> int:
        return len(self.trip_log)

    def record_trip(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        purpose: str,
        hall: str,
        request_id: str | None = None,
    ) -> None:
        """One in-person visit, whatever the case's state (a pickup after conclusion counts too)."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, TRIP_RECORDERS)
        checks.text(purpose, "purpose")
        checks.text(hall, "hall")
        self._record(self.TripRecorded, actor, channel, at, request_id, purpose=purpose, hall=hall)

    class TripRecorded(CaseBase.Event):
        purpose: str
        hall: str

        def apply(self, aggregate: CaseSupervision) -> None:
            aggregate.trip_log = (
                *aggregate.trip_log,
                Trip(at=self.timestamp, purpose=self.purpose, hall=self.hall),
            )
            super().apply(aggregate)

    def warn_due_soon(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        deadline: date,
        working_days_left: int,
        request_id: str | None = None,
    ) -> None:
        """Yellow light: 2 working days left or less. Once per deadline; a repeat is ignored."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.SYSTEM,))
        self._require("warn of a deadline", UNDER_WAY)
        if not 0 <= working_days_left <= 2:
            raise InvalidCommandError("a yellow light is for 2 working days left or less")
        if any(s.light is Light.YELLOW and s.deadline == deadline for s in self.supervisions):
            return
        self._record(
            self.SupervisionRaised, actor, channel, at, request_id, light=Light.YELLOW, deadline=deadline
        )

    def mark_overdue(
        self, actor: Actor, channel: Channel, at: datetime, *, deadline: date, request_id: str | None = None
    ) -> None:
        """督办, red light: the deadline has passed. Once per deadline per day; a repeat is ignored."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.SYSTEM,))
        self._require("mark the case overdue", UNDER_WAY)
        if at.date() <= deadline:
            raise InvalidCommandError(f"the deadline {deadline} has not passed")
        today = Supervision(light=Light.RED, deadline=deadline, raised_on=at.date())
        if today in self.supervisions:
            return
        self._record(
            self.SupervisionRaised, actor, channel, at, request_id, light=Light.RED, deadline=deadline
        )

    class SupervisionRaised(CaseBase.Event):
        light: Light
        deadline: date

        def apply(self, aggregate: CaseSupervision) -> None:
            raised = Supervision(light=self.light, deadline=self.deadline, raised_on=self.timestamp.date())
            aggregate.supervisions = (*aggregate.supervisions, raised)
            super().apply(aggregate)
