"""The audit service (电子监察): find the case, record the access, then read the event store.

Each method records an `AuditAccess` before it answers, so nothing is read unrecorded;
a request refused first (an unknown case, a version beyond the head) records nothing.
Everything shown comes from the event table itself: the case index (a read model) only
turns a 办件编号 into a case id, which the case's own submission must then confirm.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from uuid import UUID, uuid4

import asyncpg

from backend.audit.export import Export
from backend.audit.export_format import FORMAT, FORMAT_VERSION, Auditor, Header, Scope
from backend.audit.history import CaseHistory, case_history
from backend.audit.replay import CaseState, case_state, check_version, version_at
from backend.audit.stored import aggregate_rows, case_of
from backend.audit.verification import ChainVerdict, verify_case_chain, verify_whole_store
from backend.cases.access import CaseNotFoundError
from backend.store.aggregates import AggregateStore
from domain.audit import AuditAccess, InvalidScopeError, Period, Subject, Via
from domain.case import Actor
from domain.case.checks import BEIJING
from projections.catalogue import department_names

log = logging.getLogger(__name__)


class CaseIndex(Protocol):
    """Where cases are looked up by number and by day of submission (projections' CaseQueries)."""

    async def case_id_of(self, number: str) -> UUID | None: ...
    async def submitted_between(self, start: datetime, end: datetime) -> list[UUID]: ...


@dataclass(frozen=True, slots=True)
class FoundCase:
    case_id: UUID
    number: str | None  # as its submission records it; None if that event is unreadable


class AuditService:
    def __init__(
        self,
        aggregates: AggregateStore | Callable[[], AggregateStore],
        pool: asyncpg.Pool | Callable[[], asyncpg.Pool],
        cases: CaseIndex,
        *,
        clock: Callable[[], datetime],
        via: Via,
        new_id: Callable[[], UUID] = uuid4,
    ) -> None:
        """`aggregates` and `pool` may be callables: the runtime creates both only at start-up."""
        self._aggregates, self._pool, self.cases = aggregates, pool, cases
        self.clock, self.via, self.new_id = clock, via, new_id

    @property
    def aggregates(self) -> AggregateStore:
        a = self._aggregates
        return a if isinstance(a, AggregateStore) else a()

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    async def history(self, auditor: Actor, ref: str, *, reason: str) -> CaseHistory:
        found = await self.find(ref)
        rows = await aggregate_rows(self.pool, found.case_id)
        await self._record(auditor, Subject.HISTORY, reason, found)
        history = case_history(self.aggregates.mapper, found.case_id, found.number, rows)
        return history.named(await self._department_names(history.departments))

    async def state(
        self, auditor: Actor, ref: str, *, reason: str, version: int | None = None, at: datetime | None = None
    ) -> CaseState:
        """The case at a version, or at a moment (a naive time is Beijing time), or else at its head."""
        if version is not None and at is not None:
            raise InvalidScopeError("name a version or a time, not both")
        found = await self.find(ref)
        rows = await aggregate_rows(self.pool, found.case_id)
        if at is not None:
            at = at if at.tzinfo is not None else at.replace(tzinfo=BEIJING)
            version = version_at(self.aggregates.mapper, rows, at)
            detail = f"at {at.isoformat()}: version {version}"
        else:
            version = rows[-1].version if version is None else version
            check_version(rows, version)
            detail = f"version {version}"
        await self._record(auditor, Subject.STATE, reason, found, detail=detail)
        return case_state(self.aggregates.mapper, found.case_id, found.number, rows, version)

    async def verify_case(self, auditor: Actor, ref: str, *, reason: str) -> ChainVerdict:
        found = await self.find(ref)
        await self._record(auditor, Subject.VERIFICATION, reason, found)
        return await verify_case_chain(self.pool, self.aggregates.mapper, found.case_id, found.number)

    async def verify_store(self, auditor: Actor, *, reason: str) -> ChainVerdict:
        await self._record(auditor, Subject.VERIFICATION, reason, detail="the whole store")
        return await verify_whole_store(self.pool, self.aggregates.mapper)

    async def export(
        self, auditor: Actor, *, reason: str, case: str | None = None, period: Period | None = None
    ) -> Export:
        """One case's history, or those of the cases submitted in a period; streamed by `Export.lines`."""
        if (case is None) == (period is None):
            raise InvalidScopeError("an export names a case or a period of submission, one of the two")
        found = None if case is None else await self.find(case)
        access = await self._record(auditor, Subject.EXPORT, reason, found, period=period)
        if found is not None:
            ids: tuple[UUID, ...] = (found.case_id,)
            scope = Scope(case_id=found.case_id, case_number=found.number)
            name = found.number or str(found.case_id)
        else:
            assert period is not None
            ids = tuple(dict.fromkeys(await self.cases.submitted_between(*_bounds(period))))
            scope = Scope(since=period.since, until=period.until)
            name = f"{period.since}_{period.until}"
        header = Header(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            generated_at=self.clock(),
            scope=scope,
            exported_by=Auditor(
                id=auditor.id,
                role=auditor.role.value,
                name=auditor.name,
                department=auditor.department,
                hall=auditor.hall,
            ),
            reason=access.reason,
            access_id=access.id,
        )
        return Export(f"citypass-audit-{name}.jsonl", header, ids, self.pool, self.aggregates.mapper)

    async def find(self, ref: str) -> FoundCase:
        """The case a 办件编号 or a case id names, confirmed by the case's own submission."""
        try:
            case_id: UUID | None = UUID(ref)
            by_number = False
        except ValueError:
            case_id, by_number = await self.cases.case_id_of(ref), True
        if case_id is None:
            raise CaseNotFoundError(
                f"no case numbered {ref} (a case submitted moments ago is found by its id)"
            )
        is_case, number = await case_of(self.pool, self.aggregates.mapper, case_id)
        if not is_case:
            raise CaseNotFoundError(f"no case {ref}")
        if by_number and number is not None and number != ref:
            log.warning(
                "audit: the case index gives %s for %s, whose submission records %s", case_id, ref, number
            )
            raise CaseNotFoundError(f"no case numbered {ref}: the case index disagrees with the event store")
        return FoundCase(case_id, number)

    async def _department_names(self, codes: set[str]) -> dict[str, str]:
        try:
            return await department_names(self.pool, codes)
        except asyncpg.PostgresError as exc:  # no catalogue read model yet: the labels keep the codes
            log.warning("audit: department names unavailable: %r", exc)
            return {}

    async def _record(
        self,
        auditor: Actor,
        subject: Subject,
        reason: str,
        found: FoundCase | None = None,
        *,
        period: Period | None = None,
        detail: str | None = None,
    ) -> AuditAccess:
        access = AuditAccess.record(
            self.new_id(),
            auditor=auditor,
            via=self.via,
            subject=subject,
            reason=reason,
            at=self.clock(),
            case_id=None if found is None else found.case_id,
            case_number=None if found is None else found.number,
            period=period,
            detail=detail,
        )
        await self.aggregates.save(access)
        return access


def _bounds(period: Period) -> tuple[datetime, datetime]:
    """The period's first moment and the moment after its last day, in Beijing time."""
    start = datetime.combine(period.since, time(), BEIJING)
    return start, datetime.combine(period.until + timedelta(days=1), time(), BEIJING)
