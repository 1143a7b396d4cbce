"""跨城通办 on a case: handed to a partner city and followed from here, or received from one.

On the receiving side (收件地) the window accepts the materials and checks identity as
for any case, then hands the case to the handling city (办理地): `hand_off`. What the
partner city reports comes back as events of this case, acted by the partner: it took
the case on under its own number, or refused it; each step it took; its decision. The
applicant follows all of it here, in the city where they applied.

On the handling side the case is submitted by the partner city (role `partner`) and
`received_from_partner` records where it came from, so every step can be reported back.
The handoff id is the same on both sides.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from domain.case import checks
from domain.case.base import CaseBase
from domain.case.errors import IllegalTransitionError, InvalidCommandError
from domain.case.records import HandoffState, Origin
from domain.case.status import CaseStatus
from domain.case.values import Actor, Channel, Role

TONGBAN_MODES = frozenset({"full_online", "remote_collect", "multi_city"})  # 全程网办, 异地代收代办, 多地联办


class CaseTongban(CaseBase):
    def hand_off(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        partner: str,
        mode: str,
        handoff: UUID,
        request_id: str | None = None,
    ) -> None:
        """转办理地: the window accepted the materials and identity; the partner city decides."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.CLERK, Role.SYSTEM))
        self._require("hand off", (CaseStatus.ACCEPTED,))
        if self.handoff is not None and self.with_partner:
            raise IllegalTransitionError(f"the case is already with {self.handoff.partner}")
        if self.origin is not None:
            raise IllegalTransitionError("a case received from a partner city is not handed on")
        if not (partner.isascii() and partner.isdigit() and len(partner) == 6):
            raise InvalidCommandError("a partner city is named by its 6-digit region code")
        if mode not in TONGBAN_MODES:
            raise InvalidCommandError(f"no 通办 mode {mode!r}")
        self._record(
            self.HandedOff, actor, channel, at, request_id, partner=partner, mode=mode, handoff=handoff
        )

    class HandedOff(CaseBase.Event):
        partner: str
        mode: str
        handoff: UUID

        def apply(self, aggregate: CaseTongban) -> None:
            aggregate.handoff = HandoffState(
                partner=self.partner, mode=self.mode, handoff=self.handoff, sent_at=self.timestamp
            )
            super().apply(aggregate)

    def _from_partner(self, actor: Actor, at: datetime, command: str) -> tuple[datetime, HandoffState]:
        at = self._admit(actor, at, (Role.PARTNER,))
        handoff = self.handoff
        if handoff is None or not self.with_partner:
            raise IllegalTransitionError(f"cannot {command}: the case is not with a partner city")
        if actor.id != handoff.partner:
            raise IllegalTransitionError(
                f"cannot {command}: the case is with {handoff.partner}, not {actor.id}"
            )
        return at, handoff

    def record_partner_acceptance(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        partner_number: str,
        request_id: str | None = None,
    ) -> None:
        """The handling city took the case on, under its own number."""
        if self._seen(request_id):
            return
        at, handoff = self._from_partner(actor, at, "record the partner's acceptance")
        if handoff.partner_number is not None:
            raise IllegalTransitionError("the partner city has taken the case on already")
        checks.text(partner_number, "the partner's case number")
        self._record(self.HandoffAccepted, actor, channel, at, request_id, partner_number=partner_number)

    class HandoffAccepted(CaseBase.Event):
        partner_number: str

        def apply(self, aggregate: CaseTongban) -> None:
            assert aggregate.handoff is not None
            aggregate.handoff = msgspec.structs.replace(aggregate.handoff, partner_number=self.partner_number)
            super().apply(aggregate)

    def record_handoff_refusal(
        self, actor: Actor, channel: Channel, at: datetime, *, reason: str, request_id: str | None = None
    ) -> None:
        """The handling city refused the case (an item it does not take, say): it is back with the window."""
        if self._seen(request_id):
            return
        at, handoff = self._from_partner(actor, at, "record the partner's refusal")
        if handoff.partner_number is not None:
            raise IllegalTransitionError("the partner city has taken the case on; it decides, not refuses")
        checks.text(reason, "reason")
        self._record(self.HandoffRefused, actor, channel, at, request_id, reason=reason)

    class HandoffRefused(CaseBase.Event):
        reason: str

        def apply(self, aggregate: CaseTongban) -> None:
            assert aggregate.handoff is not None
            aggregate.handoff = msgspec.structs.replace(aggregate.handoff, refused=self.reason)
            super().apply(aggregate)

    def record_partner_progress(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        step: str,
        label: str,
        request_id: str | None = None,
    ) -> None:
        """One step the handling city took (受理, a signature, a suspension …), in its own words."""
        if self._seen(request_id):
            return
        at, handoff = self._from_partner(actor, at, "record the partner's progress")
        if handoff.partner_number is None:
            raise IllegalTransitionError("the partner city has not taken the case on yet")
        checks.text(step, "step")
        checks.text(label, "label")
        self._record(self.PartnerProgressed, actor, channel, at, request_id, step=step, label=label)

    class PartnerProgressed(CaseBase.Event):
        step: str  # the partner's integration event type, e.g. "task.approved"
        label: str  # what the applicant reads, e.g. "株洲市市场监督管理局：批准通过"

    def received_from_partner(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        origin_case_id: UUID,
        origin_number: str,
        mode: str,
        handoff: UUID,
        request_id: str | None = None,
    ) -> None:
        """办理地: the case came from a partner city's window; its steps are reported back there."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.PARTNER,))
        self._require("record where the case came from", (CaseStatus.SUBMITTED,))
        if self.origin is not None:
            raise IllegalTransitionError("the case's origin is recorded already")
        if actor.id != self.submitted_by.id:
            raise IllegalTransitionError(
                "only the partner city that submitted the case says where it came from"
            )
        if mode not in TONGBAN_MODES:
            raise InvalidCommandError(f"no 通办 mode {mode!r}")
        checks.text(origin_number, "the origin's case number")
        self._record(
            self.ReceivedFromPartner, actor, channel, at, request_id, partner=actor.id,
            origin_case_id=origin_case_id, origin_number=origin_number, mode=mode, handoff=handoff,
        )  # fmt: skip

    class ReceivedFromPartner(CaseBase.Event):
        partner: str
        origin_case_id: UUID
        origin_number: str
        mode: str
        handoff: UUID

        def apply(self, aggregate: CaseTongban) -> None:
            aggregate.origin = Origin(
                partner=self.partner, case_id=self.origin_case_id, number=self.origin_number,
                mode=self.mode, handoff=self.handoff,
            )  # fmt: skip
            super().apply(aggregate)
