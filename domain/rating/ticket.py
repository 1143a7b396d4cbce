"""差评工单: the rectification ticket a rating of 1 or 2 opens, owned by the unit that handled the case.

The unit calls the citizen back (回访), then either puts the problem right (rectified) or
explains why nothing can change (explained, when there is no legal basis). It may
instead appeal that the rating was malicious; another role (the 好差评 administration,
`Role.SUPERVISOR`), never the appellant, decides, with reasons. An upheld appeal
excludes the rating; a rejected one sends the ticket back to the unit. The citizen is
told the outcome and may rate the callback (回访满意度). The rectification deadline is
a date computed by the caller in working days (15 by default, 5 in some regions).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from domain.case.checks import beijing_time
from domain.case.values import Actor, Role
from domain.rating.values import InvalidRatingError, NotTheApplicantError, NotTheOwnerError, TicketStateError


class TicketState(StrEnum):
    OPEN = "open"
    APPEALED = "appealed"
    RECTIFIED = "rectified"
    EXPLAINED = "explained"
    EXCLUDED = "excluded"  # the appeal was upheld: a malicious rating

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    TicketState.OPEN: "待整改",
    TicketState.APPEALED: "申诉中",
    TicketState.RECTIFIED: "已整改",
    TicketState.EXPLAINED: "已解释说明",
    TicketState.EXCLUDED: "申诉成功（恶意差评）",
}
OUTCOMES = (TicketState.RECTIFIED, TicketState.EXPLAINED)


class Callback(msgspec.Struct, frozen=True, kw_only=True):
    """回访: how the unit reached the citizen, whether it did, and what was said."""

    by: str
    at: datetime
    method: str  # phone, visit, online
    reached: bool
    note: str


class RectificationTicket(Aggregate):
    class Opened(Aggregate.Created):
        rating_id: UUID
        unit: str  # the department that handled the case
        applicant: str  # who rated: told of the outcome, rates the callback
        level: int
        comment: str
        case_id: UUID | None
        item_code: str
        due: date

    class CallbackRecorded(Aggregate.Event):
        callback: Callback

        def apply(self, ticket: RectificationTicket) -> None:
            ticket.callbacks = (*ticket.callbacks, self.callback)

    class Resolved(Aggregate.Event):
        outcome: TicketState
        note: str
        by: str

        def apply(self, ticket: RectificationTicket) -> None:
            ticket.state, ticket.resolution = self.outcome, self.note

    class Appealed(Aggregate.Event):
        reasons: str
        by: str

        def apply(self, ticket: RectificationTicket) -> None:
            ticket.state, ticket.appellant = TicketState.APPEALED, self.by

    class AppealDecided(Aggregate.Event):
        upheld: bool
        reasons: str
        by: str

        def apply(self, ticket: RectificationTicket) -> None:
            ticket.state = TicketState.EXCLUDED if self.upheld else TicketState.OPEN
            ticket.appeals = ticket.appeals + 1

    class CallbackRated(Aggregate.Event):
        satisfied: bool

        def apply(self, ticket: RectificationTicket) -> None:
            ticket.callback_satisfied = self.satisfied

    class Overdue(Aggregate.Event):
        due: date

        def apply(self, ticket: RectificationTicket) -> None:
            ticket.overdue_for = self.due

    @classmethod
    def open(
        cls,
        ticket_id: UUID,
        *,
        rating_id: UUID,
        unit: str,
        applicant: str,
        level: int,
        comment: str,
        case_id: UUID | None,
        item_code: str,
        due: date,
        at: datetime,
    ) -> RectificationTicket:
        if level > 2:
            raise InvalidRatingError("only a 差评 (1 or 2) opens a rectification ticket")
        return cls._create(
            cls.Opened,
            id=ticket_id,
            rating_id=rating_id,
            unit=unit,
            applicant=applicant,
            level=level,
            comment=comment,
            case_id=case_id,
            item_code=item_code,
            due=due,
            timestamp=beijing_time(at),
        )

    def __init__(
        self,
        rating_id: UUID,
        unit: str,
        applicant: str,
        level: int,
        comment: str,
        case_id: UUID | None,
        item_code: str,
        due: date,
    ) -> None:
        self.rating_id, self.unit, self.applicant, self.level = rating_id, unit, applicant, level
        self.comment, self.case_id, self.item_code, self.due = comment, case_id, item_code, due
        self.state = TicketState.OPEN
        self.callbacks: tuple[Callback, ...] = ()
        self.resolution: str | None = None
        self.appellant: str | None = None
        self.appeals = 0
        self.callback_satisfied: bool | None = None
        self.overdue_for: date | None = None

    @property
    def is_closed(self) -> bool:
        return self.state in (*OUTCOMES, TicketState.EXCLUDED)

    @property
    def called_back(self) -> bool:
        return any(c.reached for c in self.callbacks)

    def record_callback(self, *, actor: Actor, at: datetime, method: str, reached: bool, note: str) -> None:
        """回访, reached or not: every try is kept, and only a reached one lets the ticket close."""
        self._owner(actor)
        if self.is_closed:
            raise TicketStateError(f"the ticket is {self.state.label}")
        if method not in ("phone", "visit", "online"):
            raise InvalidRatingError("a callback is by phone, visit or online")
        at = beijing_time(at)
        callback = Callback(by=actor.id, at=at, method=method, reached=reached, note=note.strip())
        self.trigger_event(self.CallbackRecorded, callback=callback, timestamp=at)

    def resolve(self, outcome: TicketState, note: str, *, actor: Actor, at: datetime) -> None:
        """Rectified, or explained; after a callback that reached the citizen."""
        self._owner(actor)
        if outcome not in OUTCOMES:
            raise InvalidRatingError("a ticket is resolved as rectified or explained")
        if self.state is not TicketState.OPEN:
            raise TicketStateError(f"the ticket is {self.state.label}")
        if not self.called_back:
            raise TicketStateError("call the citizen back (回访) before closing the ticket")
        if not note.strip():
            raise InvalidRatingError("say what was done, or why nothing can change")
        self.trigger_event(
            self.Resolved, outcome=outcome, note=note.strip(), by=actor.id, timestamp=beijing_time(at)
        )

    def appeal(self, reasons: str, *, actor: Actor, at: datetime) -> None:
        """申诉: the unit holds the rating malicious. Once only: a rejected appeal is final."""
        self._owner(actor)
        if self.state is not TicketState.OPEN or self.appeals:
            raise TicketStateError("only an open ticket, never appealed before, can be appealed")
        if not reasons.strip():
            raise InvalidRatingError("an appeal states its reasons")
        self.trigger_event(self.Appealed, reasons=reasons.strip(), by=actor.id, timestamp=beijing_time(at))

    def decide_appeal(self, upheld: bool, reasons: str, *, actor: Actor, at: datetime) -> None:
        if actor.role is not Role.SUPERVISOR or actor.id == self.appellant:
            raise NotTheOwnerError(
                "an appeal is decided by the 好差评 administration, never by the appellant"
            )
        if self.state is not TicketState.APPEALED:
            raise TicketStateError(f"the ticket is {self.state.label}, not appealed")
        if not reasons.strip():
            raise InvalidRatingError("a decision on an appeal states its reasons")
        self.trigger_event(
            self.AppealDecided,
            upheld=upheld,
            reasons=reasons.strip(),
            by=actor.id,
            timestamp=beijing_time(at),
        )

    def rate_callback(self, satisfied: bool, *, actor: Actor, at: datetime) -> bool:
        """回访满意度, by the citizen who rated, once the ticket is resolved; False when given already."""
        if actor.role not in (Role.CITIZEN, Role.AGENT) or actor.id != self.applicant:
            raise NotTheApplicantError("only the citizen who rated judges the callback")
        if self.state not in OUTCOMES:
            raise TicketStateError("the callback is judged once the ticket is resolved")
        if self.callback_satisfied is not None:
            if self.callback_satisfied == satisfied:
                return False
            raise TicketStateError("the callback was judged already")
        self.trigger_event(self.CallbackRated, satisfied=satisfied, timestamp=beijing_time(at))
        return True

    def mark_overdue(self, *, on: date, at: datetime) -> bool:
        """The red light's timer: once per due date, and only while the unit still owes an answer."""
        if self.is_closed or on <= self.due or self.overdue_for == self.due:
            return False
        self.trigger_event(self.Overdue, due=self.due, timestamp=beijing_time(at))
        return True

    def _owner(self, actor: Actor) -> None:
        if actor.role is not Role.OFFICER or actor.department != self.unit:
            raise NotTheOwnerError(f"only officers of {self.unit} handle this ticket")
