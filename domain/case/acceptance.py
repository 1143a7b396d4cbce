"""受理 and its variants: standard, 容缺受理, 告知承诺, deemed by law (Art. 32), and 秒批."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from typing import Any

import msgspec

from domain.case import checks
from domain.case.base import CaseBase
from domain.case.errors import InvalidCommandError, MaterialsMissingError, NotEligibleError
from domain.case.records import Acceptance, AcceptanceMode, Conclusion
from domain.case.status import BEFORE_ACCEPTANCE, CaseStatus, ResultCode
from domain.case.values import Actor, Channel, Role

ACCEPTORS = (Role.CLERK, Role.OFFICER)


class CaseAcceptance(CaseBase):
    def _check_acceptable(self, command: str) -> None:
        if self.status is CaseStatus.AWAITING_CORRECTION:
            raise MaterialsMissingError(
                f"cannot {command}: requested materials are outstanding", self.requested
            )
        self._require(command, BEFORE_ACCEPTANCE)

    def accept(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        receipt_number: str,
        query_password_hash: str,
        request_id: str | None = None,
    ) -> None:
        """受理: issue the 受理回执号 and 查询密码; the deadline clock starts today."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, ACCEPTORS)
        self._check_acceptable("accept")
        terms = _terms(AcceptanceMode.STANDARD, at, receipt_number, query_password_hash)
        self._record(self.Accepted, actor, channel, at, request_id, acceptance=terms)

    def deem_accepted(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        receipt_number: str,
        query_password_hash: str,
        request_id: str | None = None,
    ) -> None:
        """行政许可法 Art. 32: the office let 5 days pass, so the case counts as accepted on receipt.

        Receipt is the day the office held a complete application: the submission, or
        the supplement that answered its 补正告知.
        """
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.SYSTEM,))
        self._require("deem the case accepted", BEFORE_ACCEPTANCE)
        terms = _terms(AcceptanceMode.STANDARD, at, receipt_number, query_password_hash, deemed=True)
        terms = msgspec.structs.replace(terms, accepted_on=self.complete_at.date())
        self._record(self.Accepted, actor, channel, at, request_id, acceptance=terms)

    def accept_with_missing_materials(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        receipt_number: str,
        query_password_hash: str,
        missing: Collection[str],
        minor: Collection[str],
        commitment_sha256: str,
        supplement_due: date,
        on_credit_blacklist: bool,
        request_id: str | None = None,
    ) -> None:
        """容缺受理: accept with minor materials owed, on the applicant's signed commitment.

        `minor` names the item's materials the catalogue marks 容缺-able; the supplement
        due date is set by the caller, at most the 承诺时限.
        """
        if self._seen(request_id):
            return
        at = self._admit(actor, at, ACCEPTORS)
        self._check_acceptable("accept with missing materials")
        if on_credit_blacklist:
            raise NotEligibleError(
                "applicants on the credit blacklist cannot be accepted with materials missing"
            )
        if not missing:
            raise InvalidCommandError("容缺受理 needs the missing materials; with none missing, accept")
        if not_minor := set(missing) - set(minor):
            raise MaterialsMissingError("only minor materials may be missing", not_minor)
        if supplement_due < at.date():
            raise InvalidCommandError("the supplement due date is already past")
        terms = _terms(
            AcceptanceMode.MISSING_MATERIALS,
            at,
            receipt_number,
            query_password_hash,
            supplement_due=supplement_due,
            commitment_sha256=checks.sha256(commitment_sha256, "signed commitment"),
        )
        owed = tuple(sorted(set(missing)))
        self._record(
            self.AcceptedWithMissingMaterials, actor, channel, at, request_id, acceptance=terms, missing=owed
        )

    def accept_on_commitment(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        receipt_number: str,
        query_password_hash: str,
        commitment_sha256: str,
        replaced_proofs: Collection[str],
        on_credit_blacklist: bool,
        request_id: str | None = None,
    ) -> None:
        """告知承诺 (国办发〔2020〕42号): the signed commitment stands in for the listed proofs."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, ACCEPTORS)
        self._check_acceptable("accept on commitment")
        if on_credit_blacklist:
            raise NotEligibleError("告知承诺 is not open to applicants on the credit blacklist")
        if not replaced_proofs:
            raise InvalidCommandError("告知承诺 must name the proofs the commitment replaces")
        terms = _terms(
            AcceptanceMode.COMMITMENT,
            at,
            receipt_number,
            query_password_hash,
            commitment_sha256=checks.sha256(commitment_sha256, "signed commitment"),
            replaced_proofs=tuple(sorted(set(replaced_proofs))),
        )
        self._record(self.AcceptedOnCommitment, actor, channel, at, request_id, acceptance=terms)

    def approve_instantly(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        rule_id: str,
        rule_version: str,
        receipt_number: str,
        query_password_hash: str,
        request_id: str | None = None,
    ) -> None:
        """秒批: a rule accepts and approves in one step; the rule and its version are on record."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.SYSTEM,))
        self._check_acceptable("approve instantly")
        terms = _terms(
            AcceptanceMode.INSTANT,
            at,
            receipt_number,
            query_password_hash,
            rule_id=checks.text(rule_id, "rule id"),
            rule_version=checks.text(rule_version, "rule version"),
        )
        self._record(self.InstantlyApproved, actor, channel, at, request_id, acceptance=terms)

    # Four events, not one with optional parts: each says exactly what its kind of acceptance decided.
    # They share no base class, since eventsourcing re-creates every event class on Case itself.

    class Accepted(CaseBase.Event):
        acceptance: Acceptance  # standard, or deemed by law (acceptance.deemed)

        def apply(self, aggregate: CaseAcceptance) -> None:
            _take_effect(aggregate, self.acceptance, self.actor)
            super().apply(aggregate)

    class AcceptedWithMissingMaterials(CaseBase.Event):
        acceptance: Acceptance
        missing: tuple[str, ...]  # owed by acceptance.supplement_due

        def apply(self, aggregate: CaseAcceptance) -> None:
            _take_effect(aggregate, self.acceptance, self.actor)
            aggregate.missing_minor = frozenset(self.missing)
            super().apply(aggregate)

    class AcceptedOnCommitment(CaseBase.Event):
        acceptance: Acceptance

        def apply(self, aggregate: CaseAcceptance) -> None:
            _take_effect(aggregate, self.acceptance, self.actor)
            super().apply(aggregate)

    class InstantlyApproved(CaseBase.Event):
        acceptance: Acceptance  # acceptance.rule_id and rule_version: the rule that decided

        def apply(self, aggregate: CaseAcceptance) -> None:
            _take_effect(aggregate, self.acceptance, self.actor)
            aggregate.conclusion = Conclusion(
                result=ResultCode.APPROVED, concluded_at=self.timestamp, concluded_by=self.actor.id
            )
            super().apply(aggregate)


def _take_effect(case: CaseAcceptance, acceptance: Acceptance, actor: Actor) -> None:
    if case.acceptance is None and actor.role is Role.CLERK:
        case.hall = actor.hall  # the first acceptance places the case at the accepting clerk's hall
    case.intake = CaseStatus.ACCEPTED
    case.acceptance = acceptance


def _terms(
    mode: AcceptanceMode, at: datetime, receipt_number: str, query_password_hash: str, **terms: Any
) -> Acceptance:
    return Acceptance(
        mode=mode,
        accepted_on=at.date(),
        accepted_at=at,
        receipt_number=checks.text(receipt_number, "receipt number"),
        query_password_hash=checks.password_hash(query_password_hash),
        **terms,
    )
