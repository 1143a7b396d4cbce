"""Scope: which case a caller whose role may act may act on (own case, own hall, own department).

Roles are checked twice: here, so the service can say "not your case" (403) before
anything else, and again by the case itself, which is the last word. Everything is
checked against the case loaded for the command, so a command loads its case once:
a clerk's hall is the case's own `hall`, an officer's departments are the case's tasks
and bundle children, or for a single item the catalogue's department for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from uuid import UUID

from backend.cases.access import CaseNotFoundError, Identity, NotYourCaseError, UnknownServiceItemError
from backend.cases.terms import Catalogue
from backend.store.aggregates import AggregateStore
from backend.store.errors import AggregateNotFoundError
from domain.case import Case, NotAuthorisedActorError, Role

_STAFF = (Role.CLERK, Role.OFFICER, Role.SYSTEM)


class Reach(Enum):
    APPLICANT = "applicant"  # the applicant's own commands: supplement, withdraw
    STAFF = "staff"  # the office's commands on the whole case
    TRIP = "trip"  # a visit recorded at the clerk's own hall, whichever hall holds the case


@dataclass(frozen=True, slots=True)
class Scope:
    """What was looked up before the command: the department of each active catalogue item (officers)."""

    item_departments: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


async def look_up(catalogue: Catalogue, caller: Identity) -> Scope:
    """Only what the case itself cannot say; no case is read here."""
    if caller.role is Role.OFFICER:
        return Scope(item_departments=await catalogue.item_departments())
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
    if not isinstance(case, Case):  # another aggregate's id: the store holds catalogue entries too
        raise CaseNotFoundError(f"no case {case.id}")
    role = caller.role
    if role in (Role.CITIZEN, Role.AGENT):
        if reach is not Reach.APPLICANT:
            raise NotAuthorisedActorError(f"an actor in the role {role!s} may not do this")
        if case.submitted_by.id != caller.subject:
            raise NotYourCaseError("only the account that submitted the case may act on it")
    elif role is Role.CLERK:
        if caller.hall is None:
            raise NotYourCaseError("a clerk's token must name their hall")
        if reach is not Reach.TRIP and case.hall is not None and case.hall != caller.hall:
            raise NotYourCaseError(f"the case is handled at hall {case.hall}, not {caller.hall}")
    elif role is Role.OFFICER:
        if reach is Reach.APPLICANT:
            return  # the case refuses an officer acting for the applicant
        if department is not None and caller.department != department:
            raise NotYourCaseError(f"only an officer of {department} may act on its task")
        if caller.department not in departments_of(case, scope.item_departments):
            raise NotYourCaseError("the caller's department handles no part of this case")
    elif role not in _STAFF and reach is not Reach.APPLICANT:
        raise NotAuthorisedActorError(f"an actor in the role {role!s} may not do this")


def departments_of(case: Case, item_departments: Mapping[str, str]) -> set[str]:
    """Every department with a part in the case: its tasks, its bundle children, or its item's."""
    departments = {*case.tasks, *(c.department for c in case.children)}
    if not case.children:
        departments.add(item_department(case.item_code, item_departments))
    return departments


def item_department(item_code: str, item_departments: Mapping[str, str]) -> str:
    """The catalogue's department for an active single item; UnknownServiceItemError otherwise."""
    try:
        return item_departments[item_code]
    except KeyError:
        raise UnknownServiceItemError(f"no active service item {item_code!r} in the catalogue") from None
