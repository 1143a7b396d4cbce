"""电子监察: the record of every auditor's access to case histories, states, exports and chain checks."""

from domain.audit.access import (
    PERIOD_MAX_DAYS,
    REASON_MAX,
    REASON_MIN,
    AuditAccess,
    AuditError,
    InvalidScopeError,
    NotAnAuditorError,
    Period,
    ReasonRequiredError,
    Subject,
    Via,
)

__all__ = [
    "PERIOD_MAX_DAYS",
    "REASON_MAX",
    "REASON_MIN",
    "AuditAccess",
    "AuditError",
    "InvalidScopeError",
    "NotAnAuditorError",
    "Period",
    "ReasonRequiredError",
    "Subject",
    "Via",
]
