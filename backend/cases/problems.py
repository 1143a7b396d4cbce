"""The service's own refusals as problem details; the case's refusals are mapped in miniapp_api."""

from __future__ import annotations

from backend.cases.access import (
    CaseNotFoundError,
    NotYourCaseError,
    UnknownMaterialError,
    UnknownServiceItemError,
)
from backend.cases.partner_items import HandoffNotAcceptedError
from miniapp_api.problems import ProblemMap


def register_case_service_problems(problems: ProblemMap) -> ProblemMap:
    problems.register(CaseNotFoundError, 404, "case-not-found", "No such case")
    problems.register(NotYourCaseError, 403, "not-your-case", "This case is outside the caller's scope")
    problems.register(UnknownServiceItemError, 422, "unknown-service-item", "No such active service item")
    problems.register(UnknownMaterialError, 422, "unknown-material", "Material file was never uploaded")
    problems.register(
        HandoffNotAcceptedError, 422, "handoff-not-accepted", "The partner city does not take this case so"
    )
    return problems
