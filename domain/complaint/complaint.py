"""A complaint (请你来找茬 / 办不成事): a problem not tied to one case, tracked to closure like a ticket.

The desk (12345 / 政务服务) routes it to a department with a due date the caller
computed in working days; that department signs for it (签收) and answers. The
citizen then confirms: satisfied closes it, dissatisfied sends it back once (重办),
and a second dissatisfaction closes it and escalates it to 督办. A timer closes an
answer the citizen never confirmed, and marks a department overdue.

Every command checks, in order: a repeated request id (a no-op, returning False);
who acts; the state; the arguments. Only then does it record, so a refused command
appends nothing. A command returns True when it recorded something.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.case.base import REMEMBERED_REQUESTS
from domain.case.values import Actor, Channel, Role
from domain.complaint.values import (
    ENDED,
    NAME_LIMIT,
    WITH_DEPARTMENT,
    YELLOW_AT,
    ComplaintCategory,
    ComplaintState,
    ComplaintStateError,
    InvalidComplaintError,
    LightColour,
    NotAuthorisedError,
    Report,
    Routing,
    checked,
    complaint_number,
    due_date,
    moment,
    optional_text,
    text,
)
from domain.personal import Phone

DESK = (Role.CLERK, Role.MANAGER, Role.SYSTEM)  # who routes: the 12345 / 政务服务 desk and its rules
CITIZEN_SIDE = (Role.CITIZEN, Role.AGENT)
ESCALATION_REASON = "dissatisfied again after 重办"


class Complaint(Aggregate):
    class Event(Aggregate.Event):
        """Every complaint event says who acted, through which channel and, as its timestamp, when."""

        actor: Actor
        channel: Channel
        request_id: str | None

        def apply(self, aggregate: Any) -> None:
            # Every subclass ends here, so replay remembers request ids exactly as the commands did.
            # An answer that signs implicitly records two events under one request id: keep it once.
            if self.request_id is not None and self.request_id not in aggregate.processed_requests:
                kept = [*aggregate.processed_requests, self.request_id][-REMEMBERED_REQUESTS:]
                aggregate.processed_requests = kept

    class Submitted(Aggregate.Created):
        actor: Actor
        channel: Channel
        request_id: str | None
        number: str
        report: Report

    class Routed(Event):
        department: str
        due: date

        def apply(self, aggregate: Complaint) -> None:
            aggregate._routed(self, reason=None)
            super().apply(aggregate)

    class Rerouted(Event):
        department: str
        due: date
        reason: str
        previous: str  # the department that no longer holds it, so its queue can drop it

        def apply(self, aggregate: Complaint) -> None:
            aggregate._routed(self, reason=self.reason)
            super().apply(aggregate)

    class Accepted(Event):
        def apply(self, aggregate: Complaint) -> None:
            aggregate.state = ComplaintState.ACCEPTED
            super().apply(aggregate)

    class Answered(Event):
        reply: str
        resolved: bool

        def apply(self, aggregate: Complaint) -> None:
            aggregate.state = ComplaintState.ANSWERED
            aggregate.reply, aggregate.resolved = self.reply, self.resolved
            super().apply(aggregate)

    class Reopened(Event):
        comment: str | None
        due: date

        def apply(self, aggregate: Complaint) -> None:
            aggregate.state, aggregate.due = ComplaintState.REOPENED, self.due
            aggregate.reopened += 1
            super().apply(aggregate)

    class Closed(Event):
        satisfied: bool | None  # None: the citizen never confirmed
        by_default: bool
        comment: str | None

        def apply(self, aggregate: Complaint) -> None:
            aggregate.state = ComplaintState.CLOSED
            aggregate.satisfied, aggregate.closed_by_default = self.satisfied, self.by_default
            super().apply(aggregate)

    class Escalated(Event):
        reason: str

        def apply(self, aggregate: Complaint) -> None:
            aggregate.escalated = True
            super().apply(aggregate)

    class Withdrawn(Event):
        reason: str

        def apply(self, aggregate: Complaint) -> None:
            aggregate.state = ComplaintState.WITHDRAWN
            super().apply(aggregate)

    class Overdue(Event):
        due: date
        on: date

        def apply(self, aggregate: Complaint) -> None:
            aggregate.overdue = (*aggregate.overdue, self.due)
            super().apply(aggregate)

    @classmethod
    def submit(
        cls,
        complaint_id: UUID,
        *,
        number: str,
        actor: Actor,
        channel: Channel,
        at: datetime,
        category: ComplaintCategory,
        title: str,
        description: str,
        hall: str | None = None,
        department_hint: str | None = None,
        item_code: str | None = None,
        contact: Phone | None = None,
        anonymous_to_staff: bool = False,
        request_id: str | None = None,
    ) -> Complaint:
        if actor.role not in CITIZEN_SIDE:
            raise NotAuthorisedError(f"an actor in the role {actor.role!s} may not submit a complaint")
        report = Report(
            category=category,
            title=title,
            description=description,
            hall=hall,
            department_hint=department_hint,
            item_code=item_code,
            contact=contact,
            anonymous_to_staff=anonymous_to_staff,
        )
        return cls._create(
            cls.Submitted,
            id=complaint_id,
            timestamp=moment(at),
            actor=actor,
            channel=channel,
            request_id=request_id,
            number=complaint_number(number),
            report=checked(report),
        )

    def __init__(
        self, actor: Actor, channel: Channel, request_id: str | None, number: str, report: Report
    ) -> None:
        self.submitted_by = actor
        self.number = number  # 投诉编号, drawn by the caller
        self.report = report
        self.processed_requests: list[str] = [] if request_id is None else [request_id]
        self.state = ComplaintState.SUBMITTED
        self.department: str | None = None
        self.due: date | None = None
        self.history: tuple[Routing, ...] = ()
        self.reply: str | None = None  # the latest answer
        self.resolved: bool | None = None
        self.reopened = 0
        self.satisfied: bool | None = None
        self.closed_by_default = False
        self.escalated = False
        self.overdue: tuple[date, ...] = ()  # the due dates already marked overdue

    def _routed(self, event: Complaint.Routed | Complaint.Rerouted, reason: str | None) -> None:
        step = Routing(
            department=event.department, due=event.due, at=event.timestamp, by=event.actor.id, reason=reason
        )
        self.state, self.department, self.due = ComplaintState.ROUTED, event.department, event.due
        self.history = (*self.history, step)

    # Queries.

    @property
    def is_open(self) -> bool:
        return self.state not in ENDED

    @property
    def may_reopen(self) -> bool:
        """Whether a dissatisfied confirmation would reopen it (so it needs a reopen_due) or close it."""
        return self.reopened == 0

    def light(self, today: date, working_days_left: int) -> LightColour:
        """The department's warning light; the caller counts the working days left to the due date."""
        if self.state not in WITH_DEPARTMENT or self.due is None:
            return "green"  # nobody owes an answer: not routed yet, answered, or ended
        if today > self.due or working_days_left < 0:
            return "red"
        return "yellow" if working_days_left <= YELLOW_AT else "green"

    def submitter_for(self, actor: Actor) -> str | None:
        """The submitting account as this actor may see it: staff never learn who complained anonymously."""
        if actor.role is Role.SYSTEM or self._is_submitter(actor) or not self.report.anonymous_to_staff:
            return self.submitted_by.id
        return None

    # Commands.

    def route(
        self,
        department: str,
        *,
        due: date,
        actor: Actor,
        at: datetime,
        reason: str | None = None,
        channel: Channel = Channel.SYSTEM,
        request_id: str | None = None,
    ) -> bool:
        """Route it to a department; routing again moves it (with a reason) while no answer is pending."""
        if self._seen(request_id):
            return False
        at = self._admit(actor, at, DESK)
        self._require("route", ComplaintState.SUBMITTED, *WITH_DEPARTMENT)
        department, due = text(department, "department", NAME_LIMIT), due_date(due, at)
        if self.department is None:
            if reason is not None:
                raise InvalidComplaintError("a first routing takes no reason; only moving it does")
            return self._record(self.Routed, actor, channel, at, request_id, department=department, due=due)
        if department == self.department:
            raise InvalidComplaintError(f"the complaint is already with {department}")
        reason = text(reason, "reason for rerouting")
        facts = {"department": department, "due": due, "reason": reason, "previous": self.department}
        return self._record(self.Rerouted, actor, channel, at, request_id, **facts)

    def accept(
        self, *, actor: Actor, at: datetime, channel: Channel = Channel.SYSTEM, request_id: str | None = None
    ) -> bool:
        """签收 by an officer of the department that holds it (again, after 重办)."""
        if self._seen(request_id):
            return False
        at = self._admit_officer(actor, at)
        self._require("accept", ComplaintState.ROUTED, ComplaintState.REOPENED)
        return self._record(self.Accepted, actor, channel, at, request_id)

    def answer(
        self,
        reply: str,
        *,
        resolved: bool,
        actor: Actor,
        at: datetime,
        channel: Channel = Channel.SYSTEM,
        request_id: str | None = None,
    ) -> bool:
        """答复; a department that answers without signing first signs implicitly, and both are recorded."""
        if self._seen(request_id):
            return False
        at = self._admit_officer(actor, at)
        self._require("answer", *WITH_DEPARTMENT)
        reply = text(reply, "reply")
        if not isinstance(resolved, bool):
            raise InvalidComplaintError("resolved must be true or false")
        if self.state is not ComplaintState.ACCEPTED:
            self._record(self.Accepted, actor, channel, at, request_id)
        return self._record(self.Answered, actor, channel, at, request_id, reply=reply, resolved=resolved)

    def confirm(
        self,
        satisfied: bool,
        comment: str | None = None,
        *,
        actor: Actor,
        at: datetime,
        reopen_due: date | None = None,
        channel: Channel = Channel.MINIAPP,
        request_id: str | None = None,
    ) -> bool:
        """The citizen's verdict on the answer. Dissatisfied the first time, it reopens with
        `reopen_due` (required then); the second time it closes and escalates, ignoring `reopen_due`."""
        if self._seen(request_id):
            return False
        at = self._admit_submitter(actor, at)
        self._require("confirm", ComplaintState.ANSWERED)
        if not isinstance(satisfied, bool):
            raise InvalidComplaintError("satisfied must be true or false")
        comment = optional_text(comment, "comment")
        if satisfied and reopen_due is not None:
            raise InvalidComplaintError("a satisfied citizen does not reopen the complaint")
        if not satisfied and self.may_reopen:
            if reopen_due is None:
                raise InvalidComplaintError("reopening needs a new due date")
            due = due_date(reopen_due, at, "reopen due date")
            return self._record(self.Reopened, actor, channel, at, request_id, comment=comment, due=due)
        closed = {"satisfied": satisfied, "by_default": False, "comment": comment}
        self._record(self.Closed, actor, channel, at, request_id, **closed)
        if not satisfied:
            self._record(self.Escalated, actor, channel, at, request_id, reason=ESCALATION_REASON)
        return True

    def close_unconfirmed(
        self, *, actor: Actor, at: datetime, channel: Channel = Channel.SYSTEM, request_id: str | None = None
    ) -> bool:
        """The confirmation window ran out (the caller's timer decides when): closed by default."""
        if self._seen(request_id):
            return False
        at = self._admit(actor, at, (Role.SYSTEM,))
        self._require("close unconfirmed", ComplaintState.ANSWERED)
        closed = {"satisfied": None, "by_default": True, "comment": None}
        return self._record(self.Closed, actor, channel, at, request_id, **closed)

    def withdraw(
        self,
        reason: str,
        *,
        actor: Actor,
        at: datetime,
        channel: Channel = Channel.MINIAPP,
        request_id: str | None = None,
    ) -> bool:
        """The citizen takes it back while no answer waits for them (one that does, they confirm)."""
        if self._seen(request_id):
            return False
        at = self._admit_submitter(actor, at)
        self._require("withdraw", ComplaintState.SUBMITTED, *WITH_DEPARTMENT)
        reason = text(reason, "reason")
        return self._record(self.Withdrawn, actor, channel, at, request_id, reason=reason)

    def mark_overdue(
        self,
        *,
        on: date,
        actor: Actor,
        at: datetime,
        channel: Channel = Channel.SYSTEM,
        request_id: str | None = None,
    ) -> bool:
        """督办, red light: `on` is past the due date and no answer came. Once per due date."""
        if self._seen(request_id):
            return False
        at = self._admit(actor, at, (Role.SYSTEM,))
        self._require("mark overdue", *WITH_DEPARTMENT)
        if type(on) is not date or on > at.date():
            raise InvalidComplaintError("`on` must be a date, no later than the day of the command")
        if self.due is None or on <= self.due:
            raise InvalidComplaintError(f"the due date {self.due} has not passed on {on}")
        if self.due in self.overdue:
            return False
        return self._record(self.Overdue, actor, channel, at, request_id, due=self.due, on=on)

    # The checks every command starts with.

    def _seen(self, request_id: str | None) -> bool:
        return request_id is not None and request_id in self.processed_requests

    def _is_submitter(self, actor: Actor) -> bool:
        return actor.role in CITIZEN_SIDE and actor.id == self.submitted_by.id

    def _admit(self, actor: Actor, at: datetime, roles: Collection[Role]) -> datetime:
        if actor.role not in roles:
            raise NotAuthorisedError(f"an actor in the role {actor.role!s} may not do this")
        return moment(at)

    def _admit_officer(self, actor: Actor, at: datetime) -> datetime:
        if actor.role is not Role.OFFICER or self.department is None or actor.department != self.department:
            raise NotAuthorisedError("only an officer of the department that holds the complaint may do this")
        return moment(at)

    def _admit_submitter(self, actor: Actor, at: datetime) -> datetime:
        if not self._is_submitter(actor):
            raise NotAuthorisedError("only the account that submitted the complaint may do this")
        return moment(at)

    def _require(self, command: str, *states: ComplaintState) -> None:
        if self.state not in states:
            raise ComplaintStateError(f"cannot {command}: the complaint is {self.state.label} ({self.state})")

    def _record(
        self,
        event_class: type[Complaint.Event],
        actor: Actor,
        channel: Channel,
        at: datetime,
        request_id: str | None,
        **facts: Any,
    ) -> bool:
        # Called only once every check has passed; `at` is the event's timestamp: no clock is read.
        self.trigger_event(
            event_class, actor=actor, channel=channel, timestamp=at, request_id=request_id, **facts
        )
        return True
