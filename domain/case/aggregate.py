"""Case (办件): one application, for one service item or one 一件事 bundle, from submission to result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.case import checks
from domain.case.acceptance import CaseAcceptance
from domain.case.base import CaseBase
from domain.case.conclusion import CaseConclusion
from domain.case.delivery import CaseDelivery
from domain.case.errors import InvalidCommandError, NotAuthorisedActorError
from domain.case.guidance import NextStep, next_steps
from domain.case.handling import CaseHandling
from domain.case.intake import CaseIntake
from domain.case.procedure import CaseProcedure
from domain.case.supervision import CaseSupervision
from domain.case.tongban import CaseTongban
from domain.case.values import (
    Actor,
    Agent,
    Applicant,
    ApplicantKind,
    BundleChild,
    Channel,
    JsonValue,
    MaterialSource,
    Role,
)

SUBMITTERS = (Role.CITIZEN, Role.AGENT, Role.CLERK, Role.PARTNER)


class Case(
    CaseIntake,
    CaseAcceptance,
    CaseHandling,
    CaseProcedure,
    CaseConclusion,
    CaseDelivery,
    CaseSupervision,
    CaseTongban,
):
    """Each stage's commands and events live in the module of that stage; see domain/case/base.py."""

    # The shape of the state a snapshot holds: 2 added `hall`, 3 `handoff` and `origin` (通办),
    # 4 `paper`, 5 `joint` (多地联办). The store rebuilds a case from its events rather than use a
    # snapshot of an older shape (backend/store/aggregates.py).
    class_version = 5

    @classmethod
    def submit(
        cls,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        case_id: UUID,
        number: str,
        applicant: Applicant,
        item_code: str,
        catalogue_version: str,
        agent: Agent | None = None,
        children: Iterable[BundleChild] = (),
        form: Mapping[str, JsonValue] | None = None,
        materials: Mapping[str, MaterialSource] | None = None,
        request_id: str | None = None,
    ) -> Case:
        """申请. The id and the number come from outside: the domain draws neither."""
        if actor.role not in SUBMITTERS:
            raise NotAuthorisedActorError(f"an actor in the role {actor.role!s} may not submit a case")
        at = checks.beijing_time(at)
        checks.text(number, "case number")
        checks.text(item_code, "item code")
        checks.text(catalogue_version, "catalogue version")
        checks.parties(applicant, agent)
        needs_agent = applicant.kind is ApplicantKind.ENTERPRISE or actor.role is Role.AGENT
        if needs_agent and agent is None:
            raise InvalidCommandError(
                "an enterprise, or anyone applying through someone else, needs a 经办人"
            )
        bundle = _bundle(children)
        return cls._create(
            cls.Submitted,
            id=case_id,
            actor=actor,
            channel=channel,
            timestamp=at,
            request_id=request_id,
            number=number,
            applicant=applicant,
            agent=agent,
            item_code=item_code,
            catalogue_version=catalogue_version,
            children=bundle,
            form=checks.json_object(form or {}),
            materials=checks.materials(materials or {}, allow_empty=True),
        )

    class Submitted(Aggregate.Created, CaseBase.Event):
        number: str
        applicant: Applicant
        agent: Agent | None
        item_code: str
        catalogue_version: str
        children: tuple[BundleChild, ...]
        form: dict[str, JsonValue]
        materials: dict[str, MaterialSource]

        def apply(self, aggregate: Case) -> None:
            aggregate._open(
                number=self.number,
                applicant=self.applicant,
                agent=self.agent,
                submitted_by=self.actor,
                submitted_at=self.timestamp,
                item_code=self.item_code,
                catalogue_version=self.catalogue_version,
                children=self.children,
                form=self.form,
                materials=self.materials,
            )
            super().apply(aggregate)

    @property
    def status_label(self) -> str:
        return self.status.label

    @property
    def is_bundle(self) -> bool:
        return bool(self.children)

    def applicant_next_steps(self) -> tuple[NextStep, ...]:
        """What the applicant must do next, if anything (补正材料, 领取证照, 评价 …)."""
        return next_steps(self)


def _bundle(children: Iterable[BundleChild]) -> tuple[BundleChild, ...]:
    listed = tuple(children)
    if len(listed) == 1:
        raise InvalidCommandError(
            "a 一件事 bundle joins several items; submit a single item without children"
        )
    codes = [c.item_code for c in listed]
    if len(set(codes)) != len(codes):
        raise InvalidCommandError("a bundle lists each child item once")
    for child in listed:
        checks.text(child.item_code, "child item code")
        checks.text(child.department, f"department of {child.item_code}")
    return listed
