"""RFC 9457 problem details: the stable problem types and the registry of error classes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from http import HTTPStatus

from miniapp_api.schemas import ApiStruct

# Clients switch on these URIs, so a slug never changes once shipped.
PROBLEM_BASE = "https://citypass.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class FieldError(ApiStruct):
    """One rejected input: where it was and what was wrong with it."""

    field: str
    message: str


class Problem(ApiStruct, omit_defaults=True):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


@dataclass(frozen=True, slots=True)
class ProblemKind:
    """A status, a stable slug and a human title: everything but the per-request detail."""

    status: int
    slug: str
    title: str

    def __post_init__(self) -> None:
        if not _SLUG.match(self.slug):
            raise ValueError(f"problem slug must be lowercase words joined by '-': {self.slug!r}")
        if not 400 <= self.status <= 599:
            raise ValueError(f"problem status must be 4xx or 5xx: {self.status}")

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


VALIDATION = ProblemKind(400, "validation", "Request failed validation")
MALFORMED_JSON = ProblemKind(400, "malformed-json", "Request body is not valid JSON")
BAD_REQUEST = ProblemKind(400, "bad-request", "Bad request")
UNAUTHENTICATED = ProblemKind(401, "unauthenticated", "Authentication required")
FORBIDDEN = ProblemKind(403, "forbidden", "Not allowed for this caller")
NOT_FOUND = ProblemKind(404, "not-found", "Resource not found")
METHOD_NOT_ALLOWED = ProblemKind(405, "method-not-allowed", "Method not allowed")
CONFLICT = ProblemKind(409, "conflict", "Conflict with the current state")
BODY_TOO_LARGE = ProblemKind(413, "body-too-large", "Request body too large")
UNSUPPORTED_MEDIA_TYPE = ProblemKind(415, "unsupported-media-type", "Unsupported media type")
TOO_MANY_REQUESTS = ProblemKind(429, "too-many-requests", "Too many requests")
INTERNAL = ProblemKind(500, "internal", "Internal server error")
UNAVAILABLE = ProblemKind(503, "unavailable", "Service unavailable")

_BY_STATUS = {
    kind.status: kind
    for kind in (
        BAD_REQUEST,
        UNAUTHENTICATED,
        FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        CONFLICT,
        BODY_TOO_LARGE,
        UNSUPPORTED_MEDIA_TYPE,
        TOO_MANY_REQUESTS,
        INTERNAL,
        UNAVAILABLE,
    )
}


def kind_for_status(status: int) -> ProblemKind:
    """The kind for a bare HTTP status; statuses we never named fall back to their HTTP phrase."""
    if (kind := _BY_STATUS.get(status)) is not None:
        return kind
    if not 400 <= status <= 599:
        return INTERNAL  # an exception carrying a success or redirect status is our bug
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return INTERNAL if status >= 500 else BAD_REQUEST
    return ProblemKind(status, re.sub(r"[^a-z0-9]+", "-", phrase.lower()).strip("-"), phrase)


class ProblemMap:
    """Which exception class answers with which problem kind; contexts register their errors here."""

    def __init__(self) -> None:
        self._kinds: dict[type[BaseException], ProblemKind] = {}

    def register(self, error: type[Exception], status: int, slug: str, title: str) -> None:
        """Answer `error` and its subclasses with this problem (the exception's str is the detail)."""
        if error in self._kinds:
            raise ValueError(f"{error.__qualname__} already maps to {self._kinds[error].slug!r}")
        self._kinds[error] = ProblemKind(status, slug, title)

    def lookup(self, exc: BaseException) -> ProblemKind | None:
        """The kind registered for the nearest class in the exception's MRO, if any."""
        for cls in type(exc).__mro__:
            if (kind := self._kinds.get(cls)) is not None:
                return kind
        return None

    def __contains__(self, error: object) -> bool:
        return error in self._kinds
