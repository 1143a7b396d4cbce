"""A case as it stood at a version or at a moment, rebuilt from its own events and nothing else.

No snapshot is used, not even an older one: snapshots are not hash-chained, so only
the events prove what the case was. A moment selects the events that had occurred by
then (their own timestamps), which is always a prefix of the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from backend.audit.errors import BeforeSubmissionError, HistoryUnreadableError, VersionNotFoundError
from backend.audit.readable import aggregate_state
from backend.audit.stored import StoredRow, decode, links
from domain.case import Case


@dataclass(frozen=True, slots=True)
class CaseState:
    case_id: UUID
    number: str | None
    version: int  # the version reached
    head_version: int  # the latest version in the store
    at: datetime  # when that version's event occurred
    status: str
    status_label: str
    item_code: str
    intact: bool  # every link of the case holds (a forged event shows only on the link after it)
    state: dict[str, Any]  # every attribute of the case, personal values revealed


def version_at(mapper: Mapper[UUID], rows: Sequence[StoredRow], at: datetime) -> int:
    """The last version whose event had occurred by `at`; refused before the submission."""
    reached = 0
    for row in rows:
        event, fault = decode(mapper, row)
        if event is None:
            raise HistoryUnreadableError(f"version {row.version} of the case does not decode ({fault})")
        if event.timestamp > at:
            break
        reached = row.version
    if reached == 0:
        first = decode(mapper, rows[0])[0] if rows else None
        since = "" if first is None else f"; it was submitted at {first.timestamp.isoformat()}"
        raise BeforeSubmissionError(f"the case did not exist yet at {at.isoformat()}{since}")
    return reached


def check_version(rows: Sequence[StoredRow], version: int) -> None:
    head = rows[-1].version if rows else 0
    if not 1 <= version <= head:
        raise VersionNotFoundError(f"the case has versions 1 to {head}, not {version}")


def case_state(
    mapper: Mapper[UUID], case_id: UUID, number: str | None, rows: Sequence[StoredRow], version: int
) -> CaseState:
    """Fold the events up to `version` into a fresh Case (check_version first)."""
    prefix = [row for row in rows if row.version <= version]
    case: Any = None
    for row in prefix:
        event, fault = decode(mapper, row)
        if event is None:
            raise HistoryUnreadableError(f"version {row.version} of the case does not decode ({fault})")
        try:
            case = event.mutate(case)
        except Exception as exc:  # an altered history may not replay; say where, as a problem
            raise HistoryUnreadableError(
                f"version {row.version} of the case does not apply: {exc!r}"
            ) from exc
    if not isinstance(case, Case):
        raise HistoryUnreadableError(f"the events up to version {version} do not make a case")
    return CaseState(
        case_id=case_id,
        number=number,
        version=case.version,
        head_version=rows[-1].version,
        at=case.modified_on,
        status=case.status.value,
        status_label=case.status.label,
        item_code=case.item_code,
        intact=all(link.intact for link in links(rows)),
        state=aggregate_state(case),
    )
