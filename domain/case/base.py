"""What every part of a case shares: its state, its event base, and the checks each command starts with.

The case is one aggregate, `Case`, assembled from one class per stage of the
lifecycle (intake, acceptance, handling, procedure, conclusion, delivery,
supervision). Each stage class holds its commands and the events they record;
this base holds the state they all read. eventsourcing re-creates every stage's
event classes on `Case` itself, so each topic is `domain.case.aggregate:Case.<Name>`
whichever stage module declares the event.

Every command follows the same order: a repeated client request id is a no-op;
then who may act; then whether the case is in a state for it; then the
arguments. Only then is an event recorded, so a refused command appends nothing.
State is never changed in place: each event's `apply` binds new values, so an
event's own fields can never be altered by a later one.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from domain.case import checks
from domain.case.errors import IllegalTransitionError, NotAuthorisedActorError
from domain.case.records import (
    Acceptance,
    Conclusion,
    Delivery,
    Extension,
    HandoffState,
    Origin,
    PaperPosting,
    Pickup,
    Refusal,
    Supervision,
    Suspension,
    Trip,
)
from domain.case.status import BEFORE_ACCEPTANCE, CaseStatus, ResultCode
from domain.case.tasks import Task
from domain.case.values import Actor, Agent, Applicant, BundleChild, Channel, JsonValue, MaterialSource, Role

# Client retries arrive within minutes; a bounded memory keeps snapshots small.
REMEMBERED_REQUESTS = 100


class CaseBase(Aggregate):
    class Event(Aggregate.Event):
        """Every case event says who acted, through which channel and, as its timestamp, when."""

        actor: Actor
        channel: Channel
        request_id: str | None

        def apply(self, aggregate: Any) -> None:
            # Each event's apply ends here, so every processed request id is remembered the same way.
            if self.request_id is not None:
                kept = [*aggregate.processed_requests, self.request_id][-REMEMBERED_REQUESTS:]
                aggregate.processed_requests = kept

    def _open(
        self,
        *,
        number: str,
        applicant: Applicant,
        agent: Agent | None,
        submitted_by: Actor,
        submitted_at: datetime,
        item_code: str,
        catalogue_version: str,
        children: tuple[BundleChild, ...],
        form: dict[str, JsonValue],
        materials: dict[str, MaterialSource],
    ) -> None:
        """The whole state of a case, as it stands right after submission."""
        self.number = number  # 办件编号
        self.applicant = applicant
        self.agent = agent
        self.submitted_by = submitted_by
        self.submitted_at = submitted_at
        self.item_code = item_code
        self.catalogue_version = catalogue_version
        self.children = children  # 一件事: the child items, empty for a single item
        # The hall that holds the case: the accepting clerk's (see CaseAcceptance), until then the
        # hall it was submitted at, if a clerk submitted it there. None: no hall has taken it.
        self.hall = submitted_by.hall if submitted_by.role is Role.CLERK else None
        self.form = form
        self.materials = materials  # latest source of each material
        self.processed_requests: list[str] = []
        # Intake (before acceptance).
        self.intake = CaseStatus.SUBMITTED
        # When the office held a complete application: the submission, or the supplement that
        # answered the last 补正告知. A deemed acceptance (Art. 32) dates from here.
        self.complete_at = submitted_at
        self.requested: dict[str, str] = {}  # outstanding 补正 items: material id -> reason
        self.notices = 0  # 补正告知 sent before acceptance
        self.supplied_since_notice: frozenset[str] = frozenset()
        self.supplement_attempts = 0
        self.refusal: Refusal | None = None
        # Acceptance and handling.
        self.acceptance: Acceptance | None = None
        self.missing_minor: frozenset[str] = frozenset()  # 容缺 materials not yet supplied
        self.tasks: dict[str, Task] = {}  # by department: one task each
        self.suspensions: tuple[Suspension, ...] = ()
        self.extension_request: Extension | None = None
        self.extensions: tuple[Extension, ...] = ()
        # Conclusion and after.
        self.conclusion: Conclusion | None = None
        self.revoked_at: datetime | None = None
        self.pickup: Pickup | None = None
        self.deliveries: tuple[Delivery, ...] = ()
        self.trip_log: tuple[Trip, ...] = ()
        self.supervisions: tuple[Supervision, ...] = ()
        # 跨城通办: the partner city handling the case, or the one it came from.
        self.handoff: HandoffState | None = None
        self.joint: tuple[HandoffState, ...] = ()  # 多地联办: one part per partner city, in hand-off order
        self.origin: Origin | None = None
        # 异地代收代办: the paper originals on their way to the handling city's archive.
        self.paper: PaperPosting | None = None

    @property
    def status(self) -> CaseStatus:
        if self.conclusion is not None:
            if self.conclusion.result is ResultCode.WITHDRAWN:
                return CaseStatus.WITHDRAWN
            if self.conclusion.result is ResultCode.VOIDED:
                return CaseStatus.VOIDED
            if self.revoked_at is not None:
                return CaseStatus.REVOKED
            # Only an approval is delivered: a 多地联办 city may send its part's result before
            # another city denies its own, and the case then ends denied, not delivered.
            approved = self.conclusion.result is ResultCode.APPROVED
            return CaseStatus.DELIVERED if self.deliveries and approved else CaseStatus.CONCLUDED
        if self.acceptance is None:
            # 全程网办: handed off before acceptance; the handling city accepts or refuses it.
            return (
                CaseStatus.IN_HANDLING
                if self.with_partner and self.intake in BEFORE_ACCEPTANCE
                else self.intake
            )
        if self.open_suspension is not None:
            return CaseStatus.SUSPENDED
        return CaseStatus.IN_HANDLING if self.tasks or self.with_partner else CaseStatus.ACCEPTED

    @property
    def with_partner(self) -> bool:
        """Handed to a partner city that has not refused it: that city handles it.

        多地联办: while a city is still deciding its part (neither refused nor decided).
        """
        single = self.handoff is not None and self.handoff.refused is None
        return single or any(part.open for part in self.joint)

    def partner_handoff(self, partner: str) -> HandoffState | None:
        """The partner's handoff of this case that it has not refused: a 多地联办 part, or the one handoff."""
        for part in self.joint:
            if part.partner == partner and part.refused is None:
                return part
        single = self.handoff
        return single if single is not None and single.refused is None and single.partner == partner else None

    def handoff_ids(self) -> frozenset[UUID]:
        """The handoffs a partner's message may name: the latest single one, and every 多地联办 part."""
        ids = {part.handoff for part in self.joint}
        if self.handoff is not None:
            ids.add(self.handoff.handoff)
        return frozenset(ids)

    def _replace_handoff(self, partner: str, **changes: Any) -> None:
        """Change the partner's handoff (a 多地联办 part, else the one handoff), as its events apply."""
        for n, part in enumerate(self.joint):
            if part.partner == partner and part.refused is None:
                self.joint = (*self.joint[:n], msgspec.structs.replace(part, **changes), *self.joint[n + 1 :])
                return
        assert self.handoff is not None
        self.handoff = msgspec.structs.replace(self.handoff, **changes)

    @property
    def item_codes(self) -> tuple[str, ...]:
        """The items a decision is needed on: the bundle's children, or the one item."""
        return tuple(c.item_code for c in self.children) if self.children else (self.item_code,)

    @property
    def open_suspension(self) -> Suspension | None:
        last = self.suspensions[-1] if self.suspensions else None
        return last if last is not None and last.ended_at is None else None

    @property
    def approved(self) -> bool:
        """The case ended in an approval that still stands, so its result may be delivered."""
        return (
            self.conclusion is not None
            and self.conclusion.result is ResultCode.APPROVED
            and self.revoked_at is None
        )

    # The checks every command starts with.

    def _seen(self, request_id: str | None) -> bool:
        return request_id is not None and request_id in self.processed_requests

    def _admit(self, actor: Actor, at: datetime, roles: Collection[Role]) -> datetime:
        """Refuse an actor whose role may not issue the command; return `at` in Beijing time."""
        if actor.role not in roles:
            raise NotAuthorisedActorError(f"an actor in the role {actor.role!s} may not do this")
        return checks.beijing_time(at)

    def _admit_applicant(self, actor: Actor, at: datetime, staff: Collection[Role]) -> datetime:
        """The applicant's own account, or staff acting for them (a clerk at the window)."""
        own = actor.role in (Role.CITIZEN, Role.AGENT)
        if own and actor.id != self.submitted_by.id:
            raise NotAuthorisedActorError(
                "only the account that submitted the case may act for the applicant"
            )
        return self._admit(actor, at, (Role.CITIZEN, Role.AGENT, *staff))

    def _from_partner(
        self, actor: Actor, at: datetime, command: str, *, taken_on: bool = False
    ) -> tuple[datetime, HandoffState]:
        """跨城通办: a command the handling city reports; only the city the case is with may.

        `taken_on`: only once that city took the case on under its own number.
        """
        at = self._admit(actor, at, (Role.PARTNER,))
        handoff = self.partner_handoff(actor.id)
        if handoff is None:
            raise IllegalTransitionError(f"cannot {command}: the case is not with partner city {actor.id}")
        if taken_on and handoff.partner_number is None:
            raise IllegalTransitionError("the partner city has not taken the case on yet")
        return at, handoff

    def _require(self, command: str, allowed: Collection[CaseStatus]) -> None:
        status = self.status
        if status not in allowed:
            raise IllegalTransitionError(f"cannot {command}: the case is {status.label} ({status})")

    def _record(
        self,
        event_class: type[CaseBase.Event],
        actor: Actor,
        channel: Channel,
        at: datetime,
        request_id: str | None,
        **facts: Any,
    ) -> None:
        # The command's `at` is the event's timestamp: the domain never reads a clock.
        self.trigger_event(
            event_class, actor=actor, channel=channel, timestamp=at, request_id=request_id, **facts
        )
