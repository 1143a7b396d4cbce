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

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from domain.case import checks
from domain.case.base import CaseBase
from domain.case.errors import IllegalTransitionError, InvalidCommandError
from domain.case.records import HandoffState, Origin, PaperPosting, Refusal
from domain.case.status import BEFORE_ACCEPTANCE, CaseStatus
from domain.case.values import Actor, Channel, MaterialIssue, Role

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
        """转办理地: the partner city decides.

        异地代收代办 and 多地联办 after our window accepted the materials and checked identity;
        全程网办 straight from the online application, before acceptance: the handling city
        serves the applicant online and accepts or refuses it itself.
        """
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.CLERK, Role.SYSTEM))
        if mode == "full_online":
            self._require("hand off for 全程网办", BEFORE_ACCEPTANCE)
        elif mode == "multi_city" and any(part.open for part in self.joint):
            # 多地联办: another city joins the cities already working on the case.
            self._require("hand off", (CaseStatus.IN_HANDLING,))
        else:
            self._require("hand off", (CaseStatus.ACCEPTED,))
        if self.handoff is not None and self.handoff.refused is None:
            raise IllegalTransitionError(f"the case is already with {self.handoff.partner}")
        if self.partner_handoff(partner) is not None:
            raise IllegalTransitionError(f"the case is already with {partner}")
        if mode == "multi_city" and self.tasks:
            raise IllegalTransitionError(
                "a case routed to our own departments is not shared with other cities"
            )
        if self.origin is not None:
            raise IllegalTransitionError("a case received from a partner city is not handed on")
        if not (partner.isascii() and partner.isdigit() and len(partner) == 6):
            raise InvalidCommandError("a partner city is named by its 6-digit region code")
        if mode not in TONGBAN_MODES:
            raise InvalidCommandError(f"no 通办 mode {mode!r}")
        self._record(
            self.HandedOff, actor, channel, at, request_id, partner=partner, mode=mode, handoff=handoff
        )

    def hand_off_jointly(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        parts: Sequence[tuple[str, UUID]],
        request_id: str | None = None,
    ) -> None:
        """多地联办: one acceptance here, and each partner city (region, handoff id) decides its own part."""
        if self._seen(request_id):
            return
        partners = [partner for partner, _ in parts]
        if not partners or len(set(partners)) != len(partners):
            raise InvalidCommandError("多地联办 names one or more partner cities, each once")
        if not all(p.isascii() and p.isdigit() and len(p) == 6 for p in partners):
            raise InvalidCommandError("a partner city is named by its 6-digit region code")
        if taken := [p for p in partners if self.partner_handoff(p) is not None]:
            raise IllegalTransitionError(f"the case is already with {', '.join(taken)}")
        for n, (partner, handoff) in enumerate(parts):
            self.hand_off(
                actor, channel, at, partner=partner, mode="multi_city", handoff=handoff,
                request_id=request_id if n == 0 else None,  # one request: the first event answers for it
            )  # fmt: skip

    class HandedOff(CaseBase.Event):
        partner: str
        mode: str
        handoff: UUID

        def apply(self, aggregate: CaseTongban) -> None:
            state = HandoffState(
                partner=self.partner, mode=self.mode, handoff=self.handoff, sent_at=self.timestamp
            )
            if self.mode == "multi_city":  # 多地联办: one part among several
                aggregate.joint = (*aggregate.joint, state)
            else:
                aggregate.handoff = state
            super().apply(aggregate)

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
            aggregate._replace_handoff(self.actor.id, partner_number=self.partner_number)
            super().apply(aggregate)

    def record_handoff_refusal(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        reason: str,
        path_forward: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """The handling city did not take the case: it is back with our window.

        Either it opened no case (an item it does not take this way, say), or its window
        refused acceptance (不予受理) with a path forward. A 全程网办 case, which our window
        never accepted, then ends 不予受理 here too, with the handling city's reasons.
        """
        if self._seen(request_id):
            return
        at, _ = self._from_partner(actor, at, "record the partner's refusal")
        if self.conclusion is not None:
            raise IllegalTransitionError("the partner city decided the case; it cannot refuse it now")
        checks.text(reason, "reason")
        if path_forward is not None:
            checks.text(path_forward, "path forward")
        self._record(
            self.HandoffRefused, actor, channel, at, request_id, reason=reason, path_forward=path_forward
        )

    class HandoffRefused(CaseBase.Event):
        reason: str
        path_forward: str | None = None  # the handling city's 不予受理: where the applicant can go instead

        def apply(self, aggregate: CaseTongban) -> None:
            aggregate._replace_handoff(self.actor.id, refused=self.reason)
            if aggregate.acceptance is None and self.path_forward is not None:
                aggregate.intake = CaseStatus.NOT_ACCEPTED
                aggregate.refusal = Refusal(
                    reason=self.reason, path_forward=self.path_forward, refused_at=self.timestamp
                )
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
        at, _ = self._from_partner(actor, at, "record the partner's progress", taken_on=True)
        checks.text(step, "step")
        checks.text(label, "label")
        self._record(self.PartnerProgressed, actor, channel, at, request_id, step=step, label=label)

    class PartnerProgressed(CaseBase.Event):
        step: str  # the partner's integration event type, e.g. "task.approved"
        label: str  # what the applicant reads, e.g. "株洲市市场监督管理局：批准通过"

    def record_partner_material_request(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        issues: Iterable[MaterialIssue],
        request_id: str | None = None,
    ) -> None:
        """The handling city's 一次性告知: the applicant supplies it here, and it follows there."""
        if self._seen(request_id):
            return
        at, _ = self._from_partner(actor, at, "record the partner's request for materials", taken_on=True)
        if self.conclusion is not None:
            raise IllegalTransitionError("the case is concluded")
        listed = checks.issues(issues)
        self._record(self.PartnerRequestedMaterials, actor, channel, at, request_id, issues=listed)

    class PartnerRequestedMaterials(CaseBase.Event):
        issues: tuple[MaterialIssue, ...]

        def apply(self, aggregate: CaseTongban) -> None:
            aggregate.requested = {**aggregate.requested, **{i.material_id: i.reason for i in self.issues}}
            aggregate.supplied_since_notice = frozenset()
            if aggregate.acceptance is None:  # 全程网办: the applicant owes it before the partner accepts
                aggregate.intake = CaseStatus.AWAITING_CORRECTION
            super().apply(aggregate)

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

    def post_paper_materials(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        waybill_number: str,
        carrier: str = "EMS",
        request_id: str | None = None,
    ) -> None:
        """收件地: the paper originals the window collected go to the handling city for its archive."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.CLERK,))
        handoff = self.handoff
        if handoff is None or not self.with_partner:
            raise IllegalTransitionError("cannot post paper materials: the case is not with a partner city")
        if handoff.mode == "full_online":
            raise IllegalTransitionError("a 全程网办 case has no paper materials at our window")
        self._record_paper_posted(actor, channel, at, request_id, waybill_number, carrier)

    def record_paper_posted(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        waybill_number: str,
        carrier: str,
        request_id: str | None = None,
    ) -> None:
        """办理地: the receiving city says the paper originals are on their way to us."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.PARTNER,))
        if self.origin is None or actor.id != self.origin.partner:
            raise IllegalTransitionError("the case did not come from this partner city")
        self._record_paper_posted(actor, channel, at, request_id, waybill_number, carrier)

    def _record_paper_posted(
        self, actor: Actor, channel: Channel, at: datetime, request_id: str | None, waybill: str, carrier: str
    ) -> None:
        """Either side's record of the paper posted: once per case, with its waybill."""
        if self.paper is not None:
            raise IllegalTransitionError(
                f"the paper materials went already, waybill {self.paper.waybill_number}"
            )
        checks.text(waybill, "waybill number")
        checks.text(carrier, "carrier")
        self._record(
            self.PaperMaterialsPosted, actor, channel, at, request_id, waybill_number=waybill, carrier=carrier
        )

    class PaperMaterialsPosted(CaseBase.Event):
        waybill_number: str
        carrier: str

        def apply(self, aggregate: CaseTongban) -> None:
            aggregate.paper = PaperPosting(
                waybill_number=self.waybill_number, carrier=self.carrier, posted_at=self.timestamp
            )
            super().apply(aggregate)

    def archive_paper_materials(
        self, actor: Actor, channel: Channel, at: datetime, *, request_id: str | None = None
    ) -> None:
        """归档: the paper originals arrived at the handling city and are in its archive.

        Recorded there by its window (a clerk), and here, on the case we handed off, as the
        handling city reported it (the partner).
        """
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.CLERK, Role.PARTNER))
        if actor.role is Role.PARTNER:
            at, _ = self._from_partner(actor, at, "record the archiving of the paper materials")
        elif self.origin is None:
            raise IllegalTransitionError("only the handling city archives a 通办 case's paper materials")
        paper = self.paper
        if paper is None:
            raise IllegalTransitionError("no paper materials were posted for this case")
        if paper.archived_at is not None:
            raise IllegalTransitionError("the paper materials are archived already")
        self._record(self.PaperMaterialsArchived, actor, channel, at, request_id)

    class PaperMaterialsArchived(CaseBase.Event):
        def apply(self, aggregate: CaseTongban) -> None:
            assert aggregate.paper is not None
            aggregate.paper = msgspec.structs.replace(aggregate.paper, archived_at=self.timestamp)
            super().apply(aggregate)
