"""Scope: which case a caller whose role may act may act on (own case, own hall, own department).

Roles are checked twice: here, so the service can say "not your case" (403) before
anything else, and again by the case itself, which is the last word.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any
from uuid import UUID

from backend.cases.access import CaseNotFoundError, Identity, NotYourCaseError
from backend.cases.terms import Catalogue, item_terms
from backend.store.aggregates import AggregateStore
from backend.store.errors import AggregateNotFoundError
from domain.case import Case, NotAuthorisedActorError, Role

# The events that place a case at a hall: the first acceptance, else a submission at a window.
_ACCEPTANCES = ("Accepted", "AcceptedWithMissingMaterials", "AcceptedOnCommitment", "InstantlyApproved")
_TOPIC = "domain.case.aggregate:Case."
_STAFF = (Role.CLERK, Role.OFFICER, Role.SYSTEM)


class Reach(Enum):
    APPLICANT = "applicant"  # the applicant's own commands: supplement, withdraw
    STAFF = "staff"  # the office's commands on the whole case
    TRIP = "trip"  # a visit recorded at the clerk's own hall, whichever hall holds the case


@dataclass(frozen=True, slots=True)
class Scope:
    """What was looked up before the command: the case's hall and departments."""

    hall: str | None = None
    departments: tuple[str, ...] = ()


async def look_up(aggregates: AggregateStore, catalogue: Catalogue, case_id: UUID, caller: Identity) -> Scope:
    """Only what this caller's role is checked against; none of it changes once set."""
    if caller.role is Role.CLERK:
        return Scope(hall=await _hall(aggregates, case_id))
    if caller.role is Role.OFFICER:
        case = await load(aggregates, case_id)
        departments = {*case.tasks, *(c.department for c in case.children)}
        if not case.children:
            departments.update((await item_terms(catalogue, case.item_code)).departments)
        return Scope(departments=tuple(sorted(departments)))
    return Scope()


async def load(aggregates: AggregateStore, case_id: UUID) -> Case:
    try:
        case = await aggregates.get(case_id)
    except AggregateNotFoundError:
        raise CaseNotFoundError(f"no case {case_id}") from None
    if not isinstance(case, Case):
        raise CaseNotFoundError(f"no case {case_id}")
    return case


def authorise(
    case: Case, caller: Identity, reach: Reach, scope: Scope, department: str | None = None
) -> None:
    """Raise unless the caller may act on this case; `department` names the task a command is for."""
    role = caller.role
    if role in (Role.CITIZEN, Role.AGENT):
        if reach is not Reach.APPLICANT:
            raise NotAuthorisedActorError(f"an actor in the role {role!s} may not do this")
        if case.submitted_by.id != caller.subject:
            raise NotYourCaseError("only the account that submitted the case may act on it")
    elif role is Role.CLERK:
        if caller.hall is None:
            raise NotYourCaseError("a clerk's token must name their hall")
        if reach is not Reach.TRIP and scope.hall is not None and scope.hall != caller.hall:
            raise NotYourCaseError(f"the case is handled at hall {scope.hall}, not {caller.hall}")
    elif role is Role.OFFICER:
        if reach is Reach.APPLICANT:
            return  # the case refuses an officer acting for the applicant
        if department is not None and caller.department != department:
            raise NotYourCaseError(f"only an officer of {department} may act on its task")
        if caller.department not in scope.departments:
            raise NotYourCaseError("the caller's department handles no part of this case")
    elif role not in _STAFF and reach is not Reach.APPLICANT:
        raise NotAuthorisedActorError(f"an actor in the role {role!s} may not do this")


async def _hall(aggregates: AggregateStore, case_id: UUID) -> str | None:
    stored = await aggregates.recorder.select_events(case_id)
    if not stored:
        raise CaseNotFoundError(f"no case {case_id}")
    submitted_at: str | None = None
    for record in stored:
        name = record.topic.removeprefix(_TOPIC)
        if name not in _ACCEPTANCES and name != "Submitted":
            continue
        actor: Any = aggregates.mapper.to_domain_event(record).actor  # type: ignore[attr-defined]
        if name == "Submitted":
            submitted_at = actor.hall if actor.role is Role.CLERK else None
        else:
            return actor.hall if actor.role is Role.CLERK else submitted_at
    return submitted_at
