"""办结: how a case ends, once and only once, and the later revocation of a 告知承诺 approval."""

from __future__ import annotations

from datetime import datetime

from domain.case import checks
from domain.case.base import CaseBase
from domain.case.errors import IllegalTransitionError, InvalidCommandError, MaterialsMissingError
from domain.case.records import AcceptanceMode, Conclusion
from domain.case.status import OPEN, UNDER_WAY, CaseStatus, ResultCode
from domain.case.tasks import TaskState
from domain.case.values import Actor, Channel, Role

DECIDERS = (Role.OFFICER, Role.CLERK)
PARTNER_RESULTS = (ResultCode.APPROVED, ResultCode.DENIED)  # what a handling city's decision can be
# 多地联办: the case concludes by itself once every city has decided its part.
JOINT = Actor(id="system:多地联办", role=Role.SYSTEM, name="多地联办")
# Results with a command of their own, because someone else decides them.
_OWN_COMMAND = {
    ResultCode.WITHDRAWN: "withdraw",
    ResultCode.SUPPLEMENT_OVERDUE: "reject_for_missing_supplement",
}


class CaseConclusion(CaseBase):
    def conclude(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        result: ResultCode,
        reason: str | None = None,
        forwarded_to: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """办结 as 出证 (approved), 退回 (denied), 作废 (voided) or 转报 (forwarded up)."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, DECIDERS)
        if result in _OWN_COMMAND:
            raise InvalidCommandError(f"a case ends as {result.label} only through {_OWN_COMMAND[result]}")
        if result is ResultCode.APPROVED:
            self._check_approvable()
        elif result is ResultCode.DENIED:
            self._require("deny", UNDER_WAY)
            self._check_decided("deny")
            if not any(t.state is TaskState.REJECTED for t in self.tasks.values()):
                raise IllegalTransitionError("cannot deny: no department rejected the case")
        elif result is ResultCode.VOIDED:
            self._require("void", OPEN)
        elif result is ResultCode.FORWARDED:
            self._require("forward", UNDER_WAY | {CaseStatus.SUSPENDED})
            checks.text(forwarded_to or "", "the authority forwarded to")
        if forwarded_to is not None and result is not ResultCode.FORWARDED:
            raise InvalidCommandError("only a forwarded case names the authority it went to")
        if result is not ResultCode.APPROVED:
            checks.text(reason or "", "reason")
        self._record(
            self.Concluded,
            actor,
            channel,
            at,
            request_id,
            result=result,
            reason=reason,
            forwarded_to=forwarded_to,
        )

    def record_partner_decision(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        result: ResultCode,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """办结 as the handling city decided it: the case here ends with the same result.

        多地联办: the city decides its own part (`PartnerDecided`); the case concludes, in the
        same append, once every part not refused is decided: approved if all approved,
        else denied with the deniers' reasons.
        """
        if self._seen(request_id):
            return
        at, handoff = self._from_partner(actor, at, "record the partner's decision", taken_on=True)
        if handoff.result is not None:
            raise IllegalTransitionError(f"{actor.id} has decided its part already")
        self._require("record the partner's decision", (CaseStatus.IN_HANDLING, CaseStatus.ACCEPTED))
        if result not in PARTNER_RESULTS:
            raise InvalidCommandError(f"a partner city decides {', '.join(PARTNER_RESULTS)}, not {result}")
        if result is ResultCode.DENIED:
            checks.text(reason or "", "reason")
        if handoff.mode != "multi_city":
            self._record(
                self.Concluded,
                actor,
                channel,
                at,
                request_id,
                result=result,
                reason=reason,
                forwarded_to=None,
            )
            return
        self._record(self.PartnerDecided, actor, channel, at, request_id, result=result, reason=reason)
        parts = [p for p in self.joint if p.refused is None]
        if any(p.result is None for p in parts):
            return  # another city is still deciding its part
        denials = [f"{p.partner}：{p.reason}" for p in parts if p.result is ResultCode.DENIED]
        self._record(
            self.Concluded, JOINT, Channel.SYSTEM, at, None,
            result=ResultCode.DENIED if denials else ResultCode.APPROVED,
            reason="；".join(denials) or None, forwarded_to=None,
        )  # fmt: skip

    class PartnerDecided(CaseBase.Event):
        """多地联办: one city decided its part of the case."""

        result: ResultCode
        reason: str | None

        def apply(self, aggregate: CaseConclusion) -> None:
            aggregate._replace_handoff(self.actor.id, result=self.result, reason=self.reason)
            super().apply(aggregate)

    def _check_approvable(self) -> None:
        self._require("approve", UNDER_WAY)
        routed = {code for t in self.tasks.values() for code in t.item_codes}
        if unrouted := set(self.item_codes) - routed:
            raise IllegalTransitionError(f"cannot approve: not yet routed: {', '.join(sorted(unrouted))}")
        self._check_decided("approve")
        if not all(t.state is TaskState.APPROVED for t in self.tasks.values()):
            raise IllegalTransitionError("cannot approve: a department rejected the case")
        if owed := set(self.requested) | self.missing_minor:
            raise MaterialsMissingError("cannot approve before these materials are supplied", owed)

    def _check_decided(self, command: str) -> None:
        # A bundle moves at the pace of its slowest department.
        if waiting := sorted(d for d, t in self.tasks.items() if not t.decided):
            raise IllegalTransitionError(f"cannot {command}: undecided tasks: {', '.join(waiting)}")

    def reject_for_missing_supplement(
        self, actor: Actor, channel: Channel, at: datetime, *, request_id: str | None = None
    ) -> None:
        """补正超时驳回: the 容缺 materials were not supplied by their due date."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.SYSTEM,))
        self._require("reject for a missing supplement", UNDER_WAY | {CaseStatus.SUSPENDED})
        terms = self.acceptance
        if terms is None or terms.mode is not AcceptanceMode.MISSING_MATERIALS or not self.missing_minor:
            raise IllegalTransitionError("no 容缺 materials are owed")
        assert terms.supplement_due is not None
        if at.date() <= terms.supplement_due:
            raise IllegalTransitionError(
                f"the 容缺 materials are due on {terms.supplement_due}, not yet overdue"
            )
        reason = (
            f"容缺材料未在 {terms.supplement_due.isoformat()} 前补齐: {', '.join(sorted(self.missing_minor))}"
        )
        self._record(
            self.Concluded,
            actor,
            channel,
            at,
            request_id,
            result=ResultCode.SUPPLEMENT_OVERDUE,
            reason=reason,
            forwarded_to=None,
        )

    def withdraw(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """撤回: any time before the case is concluded; a window or a partner city may relay it."""
        if self._seen(request_id):
            return
        at = self._admit_applicant(actor, at, (Role.CLERK, Role.PARTNER))
        self._require("withdraw", OPEN)
        self._record(
            self.Concluded,
            actor,
            channel,
            at,
            request_id,
            result=ResultCode.WITHDRAWN,
            reason=reason,
            forwarded_to=None,
        )

    class Concluded(CaseBase.Event):
        result: ResultCode
        reason: str | None
        forwarded_to: str | None

        def apply(self, aggregate: CaseConclusion) -> None:
            aggregate.conclusion = Conclusion(
                result=self.result,
                concluded_at=self.timestamp,
                concluded_by=self.actor.id,
                reason=self.reason,
                forwarded_to=self.forwarded_to,
            )
            super().apply(aggregate)

    def revoke_commitment_approval(
        self, actor: Actor, channel: Channel, at: datetime, *, reason: str, request_id: str | None = None
    ) -> None:
        """告知承诺: a later check found the commitment untrue, so the approval is revoked."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.OFFICER, Role.SYSTEM))
        terms = self.acceptance
        if terms is None or terms.mode is not AcceptanceMode.COMMITMENT or not self.approved:
            raise IllegalTransitionError("only a standing approval given on a 告知承诺 can be revoked")
        checks.text(reason, "reason")
        self._record(self.CommitmentApprovalRevoked, actor, channel, at, request_id, reason=reason)

    class CommitmentApprovalRevoked(CaseBase.Event):
        reason: str

        def apply(self, aggregate: CaseConclusion) -> None:
            aggregate.revoked_at = self.timestamp
            super().apply(aggregate)
