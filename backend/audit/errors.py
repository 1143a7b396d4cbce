"""What the audit service refuses, and its problem types; the domain's refusals are mapped in miniapp_api."""

from __future__ import annotations

from miniapp_api.problems import ProblemMap


class AuditServiceError(Exception):
    """Base of the audit service's own refusals."""


class VersionNotFoundError(AuditServiceError, LookupError):
    """The case has no such version: beyond its head, or below 1."""


class BeforeSubmissionError(AuditServiceError):
    """The moment asked for is before the case was submitted: it had no state yet."""


class HistoryUnreadableError(AuditServiceError):
    """An event of the case does not decode or does not apply, so no state can be rebuilt past it.

    An altered history usually shows this way; the chain verification names the event.
    """


def register_audit_service_problems(problems: ProblemMap) -> ProblemMap:
    problems.register(VersionNotFoundError, 404, "case-version-not-found", "The case has no such version")
    problems.register(BeforeSubmissionError, 422, "before-submission", "The case was not yet submitted then")
    problems.register(
        HistoryUnreadableError, 409, "case-history-unreadable", "The case's history cannot be replayed"
    )
    return problems
