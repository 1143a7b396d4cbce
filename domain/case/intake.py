"""预审 and 补正: the office's first look at a submission, and the applicant's supplements."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from domain.case import checks
from domain.case.base import CaseBase
from domain.case.errors import IllegalTransitionError, InvalidCommandError
from domain.case.records import Refusal
from domain.case.status import BEFORE_ACCEPTANCE, OPEN, CaseStatus
from domain.case.values import Actor, Channel, MaterialIssue, MaterialSource, Role, UploadedFile

PRE_REVIEWERS = (Role.CLERK, Role.OFFICER)


class CaseIntake(CaseBase):
    def pass_pre_review(
        self, actor: Actor, channel: Channel, at: datetime, *, request_id: str | None = None
    ) -> None:
        """预审通过: the materials look complete; the case waits for formal acceptance."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, PRE_REVIEWERS)
        self._require("pass pre-review", (CaseStatus.SUBMITTED, CaseStatus.PRE_REVIEW))
        self._record(self.PreReviewPassed, actor, channel, at, request_id)

    class PreReviewPassed(CaseBase.Event):
        def apply(self, aggregate: CaseIntake) -> None:
            aggregate.intake = CaseStatus.PRE_REVIEW_PASSED
            super().apply(aggregate)

    def request_materials(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        issues: Iterable[MaterialIssue],
        request_id: str | None = None,
    ) -> None:
        """补正告知: everything missing or incorrect, in one notice (一次性告知)."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, PRE_REVIEWERS)
        self._require("request materials", BEFORE_ACCEPTANCE)
        listed = checks.issues(issues)
        # A later notice may only concern what the applicant sent since the last one; anything
        # else should have been in the first notice.
        late = {i.material_id for i in listed} - self.supplied_since_notice
        if self.notices and late:
            raise InvalidCommandError(
                f"一次性告知: {', '.join(sorted(late))} should have been in the first notice"
            )
        self._record(self.MaterialsRequested, actor, channel, at, request_id, issues=listed)

    class MaterialsRequested(CaseBase.Event):
        issues: tuple[MaterialIssue, ...]

        def apply(self, aggregate: CaseIntake) -> None:
            aggregate.intake = CaseStatus.AWAITING_CORRECTION
            aggregate.requested = {i.material_id: i.reason for i in self.issues}
            aggregate.notices += 1
            aggregate.supplied_since_notice = frozenset()
            super().apply(aggregate)

    def refuse_acceptance(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        reason: str,
        path_forward: str,
        request_id: str | None = None,
    ) -> None:
        """不予受理: with the reason and where the applicant can go instead (不给否决给路径)."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, PRE_REVIEWERS)
        self._require("refuse acceptance", BEFORE_ACCEPTANCE | {CaseStatus.AWAITING_CORRECTION})
        checks.text(reason, "reason")
        checks.text(path_forward, "path forward")
        self._record(
            self.AcceptanceRefused, actor, channel, at, request_id, reason=reason, path_forward=path_forward
        )

    class AcceptanceRefused(CaseBase.Event):
        reason: str
        path_forward: str

        def apply(self, aggregate: CaseIntake) -> None:
            aggregate.intake = CaseStatus.NOT_ACCEPTED
            aggregate.refusal = Refusal(
                reason=self.reason, path_forward=self.path_forward, refused_at=self.timestamp
            )
            aggregate.requested = {}
            super().apply(aggregate)

    def supplement_materials(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        materials: Mapping[str, MaterialSource],
        request_id: str | None = None,
    ) -> None:
        """补正 / 补齐: the applicant sends what was asked for, or what 容缺受理 let them owe."""
        if self._seen(request_id):
            return
        at = self._admit_applicant(actor, at, (Role.CLERK, Role.PARTNER))
        self._require("supplement materials", OPEN)
        owed = set(self.requested) | self.missing_minor
        if not owed:
            raise IllegalTransitionError("cannot supplement materials: none are requested or owed")
        supplied = checks.materials(materials, allow_empty=False)
        if self.with_partner and not all(isinstance(m, UploadedFile) for m in supplied.values()):
            # 跨城通办: what goes to the partner city travels as files (a reference cannot).
            raise InvalidCommandError("a case with a partner city takes supplements as uploaded files")
        self._record(
            self.MaterialsSupplemented,
            actor,
            channel,
            at,
            request_id,
            materials=supplied,
            attempt=self.supplement_attempts + 1,
            outstanding=tuple(sorted(owed - set(supplied))),
        )

    class MaterialsSupplemented(CaseBase.Event):
        materials: dict[str, MaterialSource]
        attempt: int  # attempts are counted: a metric, and a sign of an unclear 办事指南
        outstanding: tuple[str, ...]  # what is still requested or owed after this one

        def apply(self, aggregate: CaseIntake) -> None:
            aggregate.materials = {**aggregate.materials, **self.materials}
            aggregate.requested = {k: v for k, v in aggregate.requested.items() if k not in self.materials}
            aggregate.missing_minor = aggregate.missing_minor.difference(self.materials)
            aggregate.supplied_since_notice = aggregate.supplied_since_notice.union(self.materials)
            aggregate.supplement_attempts = self.attempt
            if aggregate.intake is CaseStatus.AWAITING_CORRECTION and not aggregate.requested:
                aggregate.intake = CaseStatus.PRE_REVIEW  # back to the office, which may now accept
                aggregate.complete_at = self.timestamp
            super().apply(aggregate)
