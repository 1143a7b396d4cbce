"""Why the hall-queue service refused a command, besides the queue's own reasons (domain.hall_queue)."""

from __future__ import annotations

from miniapp_api.problems import ProblemMap


class NotHallStaffError(PermissionError):
    """Only a clerk of the hall, or its manager, works its windows or takes tickets for visitors."""


class LocationRequiredError(ValueError):
    """A mini-program check-in must say where the visitor is."""


class AppointmentElsewhereError(ValueError):
    """The appointment is at another hall."""


def register_queue_service_problems(problems: ProblemMap) -> ProblemMap:
    """The service's own refusals; the queue's are in miniapp_api.queue_routes."""
    problems.register(NotHallStaffError, 403, "not-hall-staff", "Only the hall's staff may do this")
    problems.register(
        LocationRequiredError, 422, "check-in-location-required", "A mini-program check-in needs a location"
    )
    problems.register(
        AppointmentElsewhereError, 409, "appointment-at-another-hall", "The appointment is at another hall"
    )
    return problems
