"""Errors of the event store. Conflicts are eventsourcing IntegrityErrors, so the library's tests see them."""

from eventsourcing.persistence import IntegrityError, OperationalError


class ConcurrencyError(IntegrityError):
    """Another writer appended that version of the aggregate first."""


class TrackingConflictError(IntegrityError):
    """The consumer has already recorded this position or a later one."""


class StoreClosedError(OperationalError):
    """The recorder was closed, or never started."""


class StoreUnavailableError(OperationalError):
    """The database could not confirm an append; nothing was acknowledged."""


class AggregateNotFoundError(LookupError):
    """No events are stored for that aggregate id."""
