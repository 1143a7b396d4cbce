"""The query side of case progress: a citizen's cases, one case's progress, anonymous lookup, dossiers.

Reads the views of projections.case_progress; deadlines are computed per query with
the injected calendar and clock, and the departments a label marks are named from the
catalogue read model. This is what the API may import.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from domain.case import CaseStatus, NextStep
from projections.case_deadlines import CalendarProvider, Clock, DeadlineView, compute, limit_from
from projections.case_deadlines import today_in_beijing as _today
from projections.case_facts import decode_facts, marked_departments, render_label
from projections.case_facts import next_steps as _next_steps
from projections.case_secrets import QueryPasswords
from projections.catalogue import CATALOGUE_STAMP, DepartmentNames, PoolSource, department_names


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    at: datetime
    label: str
    internal: bool
    actor_role: str
    actor_name: str | None  # masked
    channel: str


class CaseSummary(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    number: str
    item_code: str
    applicant_kind: str
    applicant_name: str  # masked for a person
    status: CaseStatus
    status_label: str
    current_step: str
    submitted_at: datetime
    accepted_on: date | None
    receipt_number: str | None
    deadline: DeadlineView | None


class CaseProgress(msgspec.Struct, frozen=True, kw_only=True):
    case: CaseSummary
    submitter: str  # for the API's ownership check; not personal data
    applicant_id: str  # masked
    applicant_phone: str  # masked
    departments: tuple[str, ...]  # those with a task on the case, for officers' scope
    timeline: tuple[TimelineEntry, ...]
    next_steps: tuple[NextStep, ...]


class PublicStep(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    label: str


class AnonymousProgress(msgspec.Struct, frozen=True, kw_only=True):
    """What a 受理回执号 and 查询密码 reveal: progress only, nothing about who applied."""

    number: str
    item_code: str
    status: CaseStatus
    status_label: str
    current_step: str
    accepted_on: date | None
    deadline: DeadlineView | None
    timeline: tuple[PublicStep, ...]


# Reads the views; the limit comes from the row, else from the catalogue read model's current entry.
_SELECT = (
    "SELECT c.*, coalesce(ci.spec -> 'promised_limit', cb.spec -> 'target') AS catalogue_limit "
    "FROM cases c LEFT JOIN catalogue_items ci ON ci.code = c.item_code "
    "LEFT JOIN catalogue_bundles cb ON cb.code = c.item_code "
)


# The progress of one case: its row, the timeline as an array (one round trip), and the catalogue's
# stamp, which says whether the departments' names kept from an earlier read still hold.
_LINE = ("version", "at", "label", "internal", "actor_role", "actor_name", "channel")
_PROGRESS = (
    "SELECT c.*, coalesce(ci.spec -> 'promised_limit', cb.spec -> 'target') AS catalogue_limit, "
    f"{CATALOGUE_STAMP} AS catalogue_stamp, "
    f"ARRAY(SELECT ({', '.join('t.' + n for n in _LINE)}) FROM case_timeline t "
    "WHERE t.case_id = c.case_id ORDER BY t.version) AS timeline "
    "FROM cases c LEFT JOIN catalogue_items ci ON ci.code = c.item_code "
    "LEFT JOIN catalogue_bundles cb ON cb.code = c.item_code "
)


class CaseQueries:
    """Citizen, staff and anonymous views of cases; calendar and clock are injected for the deadlines.

    `passwords` (keyed by the data keys) is needed only by the anonymous lookup.
    """

    def __init__(
        self,
        pool: PoolSource,
        calendar: CalendarProvider,
        clock: Clock,
        *,
        passwords: QueryPasswords | None = None,
    ) -> None:
        self._pool, self._calendar, self._clock = pool, calendar, clock
        self._passwords = passwords

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    @functools.cached_property
    def _department_names(self) -> DepartmentNames:
        """Per instance, as each instance may read another database."""
        return DepartmentNames()

    async def my_cases(self, subject: str) -> list[CaseSummary]:
        """The cases the account submitted, newest first."""
        rows = await self.pool.fetch(_SELECT + "WHERE c.submitter = $1 ORDER BY c.submitted_at DESC", subject)
        return await self._summaries(rows)

    async def dossier(self, applicant_key: str) -> list[CaseSummary]:
        """一人一档 / 一企一档: every case of one applicant, newest first."""
        rows = await self.pool.fetch(
            _SELECT + "WHERE c.applicant_key = $1 ORDER BY c.submitted_at DESC", applicant_key
        )
        return await self._summaries(rows)

    async def progress(self, case: UUID | str) -> CaseProgress | None:
        """By case id or 办件编号, in one query; the departments' names are kept between reads."""
        try:
            key: UUID | str = case if isinstance(case, UUID) else UUID(case)
        except ValueError:
            key = case
        where = "WHERE c.case_id = $1" if isinstance(key, UUID) else "WHERE c.number = $1"
        row = await self.pool.fetchrow(_PROGRESS + where, key)
        if row is None:
            return None
        facts = decode_facts(row["facts"])
        lines = [dict(zip(_LINE, line, strict=True)) for line in row["timeline"]]
        labels = [row["current_step"], *(line["label"] for line in lines)]
        codes = set().union(*map(marked_departments, labels))
        names = await self._department_names.of(self.pool, codes, row["catalogue_stamp"])
        return CaseProgress(
            case=self._summary(row, names),
            submitter=row["submitter"],
            applicant_id=row["applicant_id"],
            applicant_phone=row["applicant_phone"],
            departments=tuple(facts.departments),
            timeline=tuple(_entry(line, names) for line in lines),
            next_steps=_next_steps(facts),
        )

    async def case_id_of(self, number: str) -> UUID | None:
        """The case with this 办件编号, once this read model holds it (auditors then read the store)."""
        found: UUID | None = await self.pool.fetchval("SELECT case_id FROM cases WHERE number = $1", number)
        return found

    async def submitted_between(self, start: datetime, end: datetime) -> list[UUID]:
        """The cases submitted at or after `start` and before `end`, in the order they were submitted."""
        rows = await self.pool.fetch(
            "SELECT case_id FROM cases WHERE submitted_at >= $1 AND submitted_at < $2 "
            "ORDER BY submitted_at, case_id",
            start,
            end,
        )
        return [r["case_id"] for r in rows]

    async def anonymous_progress(self, receipt_number: str, password: str) -> AnonymousProgress | None:
        """None for an unknown receipt and for a wrong password alike, after the same work."""
        if self._passwords is None:
            raise RuntimeError("CaseQueries was built without passwords, so it cannot look up anonymously")
        row = await self.pool.fetchrow(_SELECT + "WHERE c.receipt_number = $1", receipt_number)
        # verify(None) checks a dummy hash, so an unknown receipt costs what a wrong password costs.
        stored = None if row is None else row["query_password_hash"]
        if not self._passwords.verify(password, stored) or row is None:
            return None
        lines = [line for line in await self._timeline(row["case_id"]) if not line["internal"]]
        names = await self._names([row["current_step"], *(line["label"] for line in lines)])
        summary = self._summary(row, names)
        return AnonymousProgress(
            number=summary.number,
            item_code=summary.item_code,
            status=summary.status,
            status_label=summary.status_label,
            current_step=summary.current_step,
            accepted_on=summary.accepted_on,
            deadline=summary.deadline,
            timeline=tuple(
                PublicStep(at=line["at"], label=render_label(line["label"], names)) for line in lines
            ),
        )

    async def _timeline(self, case_id: UUID) -> list[asyncpg.Record]:
        """The stored lines, their labels still marking departments by code."""
        lines: list[asyncpg.Record] = await self.pool.fetch(
            "SELECT version, at, label, internal, actor_role, actor_name, channel FROM case_timeline "
            "WHERE case_id = $1 ORDER BY version",
            case_id,
        )
        return lines

    async def _names(self, labels: Iterable[str]) -> dict[str, str]:
        """The names of the departments these labels mark, in one read of the catalogue."""
        return await department_names(self.pool, set().union(*map(marked_departments, labels)))

    async def _summaries(self, rows: list[asyncpg.Record]) -> list[CaseSummary]:
        names = await self._names(r["current_step"] for r in rows)
        return [self._summary(r, names) for r in rows]

    def _summary(self, row: asyncpg.Record, names: Mapping[str, str]) -> CaseSummary:
        facts = decode_facts(row["facts"])
        limit = limit_from(row["limit_amount"], row["limit_unit"], row["catalogue_limit"])
        return CaseSummary(
            case_id=row["case_id"],
            number=row["number"],
            item_code=row["item_code"],
            applicant_kind=row["applicant_kind"],
            applicant_name=row["applicant_name"],
            status=CaseStatus(row["status"]),
            status_label=row["status_label"],
            current_step=render_label(row["current_step"], names),
            submitted_at=row["submitted_at"],
            accepted_on=row["accepted_on"],
            receipt_number=row["receipt_number"],
            deadline=compute(facts, limit, self._calendar(), _today(self._clock)),
        )


def _entry(line: Mapping[str, Any], names: Mapping[str, str]) -> TimelineEntry:
    return TimelineEntry(**{**line, "label": render_label(line["label"], names)})
