"""Scope: the hall a case keeps, and who may act on a case, decided from the case loaded for the command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from backend.cases.access import Caller, CaseNotFoundError, NotYourCaseError, UnknownServiceItemError
from backend.cases.scope import Reach, Scope, authorise
from domain.case import Actor, Case, IllegalTransitionError, NotAuthorisedActorError, Role
from tests.unit.case_builders import (
    CLERK,
    COMPANY_SETUP,
    DEPT,
    ITEM,
    PASSWORD_HASH,
    STATES,
    STEP,
    SYS,
    SYSTEM,
    T0,
    WINDOW,
    build,
    submission,
)

ACCEPTANCES = ("Accepted", "AcceptedWithMissingMaterials", "AcceptedOnCommitment", "InstantlyApproved")
WINDOW_CLERK = Actor(id="clerk-9", role=Role.CLERK, name="窗口九", hall="岳麓区政务服务中心")
OTHER_CLERK = Actor(id="clerk-8", role=Role.CLERK, name="窗口八", hall="芙蓉区政务服务中心")


def hall_from_events(events: list[Any]) -> str | None:
    """The rule the service once read from the events: the first acceptance's clerk, else the submitter's."""
    submitted: str | None = None
    for event in events:
        name = type(event).__name__
        if name == "Submitted":
            submitted = event.actor.hall if event.actor.role is Role.CLERK else None
        elif name in ACCEPTANCES:
            return event.actor.hall if event.actor.role is Role.CLERK else submitted
    return submitted


@pytest.mark.parametrize("state", sorted(STATES))
def test_the_case_keeps_the_hall_its_events_name(state: str) -> None:
    case, events = STATES[state]()
    assert case.hall == hall_from_events(events)


def at_window(*steps: Callable[[Case], object]) -> tuple[Case, list[Any]]:
    case = Case.submit(WINDOW_CLERK, WINDOW, T0, **submission())
    for step in steps:
        step(case)
    events = case.collect_events()
    return case, events


def deem(case: Case) -> None:
    case.deem_accepted(SYSTEM, SYS, STEP, receipt_number="SL-7", query_password_hash=PASSWORD_HASH)


def accept_by(clerk: Actor) -> Callable[[Case], None]:
    def accept(case: Case) -> None:
        case.accept(clerk, WINDOW, STEP, receipt_number="SL-8", query_password_hash=PASSWORD_HASH)

    return accept


@pytest.mark.parametrize(
    ("steps", "hall"),
    [
        ((), WINDOW_CLERK.hall),  # submitted at a window: that hall holds it until acceptance
        ((deem,), WINDOW_CLERK.hall),  # deemed accepted by the system: still the window's hall
        ((accept_by(OTHER_CLERK),), OTHER_CLERK.hall),  # the accepting clerk's hall wins
    ],
)
def test_a_case_submitted_at_a_window(steps: tuple[Callable[[Case], object], ...], hall: str) -> None:
    case, events = at_window(*steps)
    assert case.hall == hall == hall_from_events(events)


def test_a_second_acceptance_moves_no_hall() -> None:
    case, _ = at_window(accept_by(OTHER_CLERK))
    with pytest.raises(IllegalTransitionError):
        accept_by(WINDOW_CLERK)(case)
    assert case.hall == OTHER_CLERK.hall


def caller(clerk: Actor) -> Caller:
    return Caller(subject=clerk.id, role=clerk.role, name=clerk.name, hall=clerk.hall)


OWN_HALL = Caller(subject="clerk-1", role=Role.CLERK, hall="长沙市民之家")
ELSEWHERE = Caller(subject="clerk-2", role=Role.CLERK, hall="芙蓉区政务服务中心")
NO_HALL = Caller(subject="clerk-3", role=Role.CLERK)
APPLICANT = Caller(subject="citizen-1", role=Role.CITIZEN)
STRANGER = Caller(subject="citizen-2", role=Role.CITIZEN)
OF_DEPT = Caller(subject="officer-1", role=Role.OFFICER, department=DEPT)
OF_OTHER = Caller(subject="officer-2", role=Role.OFFICER, department="长沙市公安局")
ITEMS = Scope(item_departments={ITEM: DEPT})


@pytest.mark.parametrize(
    ("state", "who", "reach", "scope", "department", "refusal"),
    [
        ("accepted", OWN_HALL, Reach.STAFF, Scope(), None, None),
        ("accepted", ELSEWHERE, Reach.STAFF, Scope(), None, NotYourCaseError),
        ("accepted", ELSEWHERE, Reach.TRIP, Scope(), None, None),  # a visit at the clerk's own hall
        ("accepted", NO_HALL, Reach.TRIP, Scope(), None, NotYourCaseError),
        ("submitted", ELSEWHERE, Reach.STAFF, Scope(), None, None),  # no hall has taken it yet
        ("submitted", APPLICANT, Reach.APPLICANT, Scope(), None, None),
        ("submitted", STRANGER, Reach.APPLICANT, Scope(), None, NotYourCaseError),
        ("submitted", APPLICANT, Reach.STAFF, Scope(), None, NotAuthorisedActorError),
        ("accepted", OF_DEPT, Reach.STAFF, ITEMS, None, None),  # before routing: the item's department
        ("accepted", OF_OTHER, Reach.STAFF, ITEMS, None, NotYourCaseError),
        ("accepted", OF_DEPT, Reach.STAFF, Scope(), None, UnknownServiceItemError),  # item withdrawn
        ("in_handling", OF_DEPT, Reach.STAFF, ITEMS, DEPT, None),
        ("in_handling", OF_OTHER, Reach.STAFF, ITEMS, DEPT, NotYourCaseError),  # not its task
        ("accepted", OF_OTHER, Reach.APPLICANT, ITEMS, None, None),  # the case itself refuses
    ],
)
def test_authorise(
    state: str,
    who: Caller,
    reach: Reach,
    scope: Scope,
    department: str | None,
    refusal: type[Exception] | None,
) -> None:
    case = build(state)
    if refusal is None:
        authorise(case, who, reach, scope, department)
    else:
        with pytest.raises(refusal):
            authorise(case, who, reach, scope, department)


def test_an_officer_of_a_bundle_child_needs_no_catalogue() -> None:
    case = Case.submit(CLERK, WINDOW, T0, **submission(item_code="430100-QY", children=COMPANY_SETUP))
    police = Caller(subject="officer-3", role=Role.OFFICER, department="长沙市公安局")
    authorise(case, police, Reach.STAFF, Scope())  # the children name the departments
    elsewhere = Caller(subject="officer-4", role=Role.OFFICER, department="长沙市教育局")
    with pytest.raises(NotYourCaseError):
        authorise(case, elsewhere, Reach.STAFF, Scope())


def test_another_aggregate_is_no_case() -> None:
    class Elsewhere:
        id = "not-a-case"

    with pytest.raises(CaseNotFoundError):
        authorise(Elsewhere(), OWN_HALL, Reach.STAFF, Scope())  # type: ignore[arg-type]


def test_a_citizen_submitted_case_reads_its_hall_at_acceptance() -> None:
    case = build("submitted")
    assert case.hall is None
    accept_by(OTHER_CLERK)(case)
    assert case.hall == OTHER_CLERK.hall
    with pytest.raises(NotYourCaseError):
        authorise(case, caller(WINDOW_CLERK), Reach.STAFF, Scope())
    authorise(case, caller(OTHER_CLERK), Reach.STAFF, Scope())
