"""What the notification consumers remember of each case, so they can build a `CaseNotice` for any event.

Each consumer that turns case events into intents (the outbox policy, the inbox) keeps
its own table of this shape, named by the consumer, because each consumer owns its
tables. Only masked values are stored: the applicant's name as 张*, never their number.
Item names are looked up in the catalogue when a batch is handled and are not stored,
so a renamed item reads right at once and a rebuild still gives identical rows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from domain.case import Case, ReturnTarget
from notifications.policy import CaseNotice, display_name
from projections.catalogue import CatalogueQueries

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What a notice says of a catalogue item: its name and its materials' names."""

    name: str
    material_names: Mapping[str, str] = field(default_factory=dict)


# An item (or bundle) code to its facts; None for a code the catalogue does not know.
ItemLookup = Callable[[str], Awaitable[ItemFacts | None]]


def catalogue_items(catalogue: CatalogueQueries) -> ItemLookup:
    """Item facts from the catalogue views (CatalogueQueries keeps entries until the catalogue changes)."""

    async def lookup(code: str) -> ItemFacts | None:
        guide = await catalogue.service(code)
        spec: Any = guide.spec if guide is not None else None
        if spec is None and (bundle := await catalogue.bundle(code)) is not None:
            spec = bundle.spec
        if spec is None:
            return None
        return ItemFacts(spec.name, {m.id: m.name for m in spec.materials})

    return lookup


async def create_notice_table(conn: asyncpg.Connection, table: str) -> None:
    await conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {table} (
            case_id        uuid PRIMARY KEY,
            number         text NOT NULL,
            item_code      text NOT NULL,
            submitter      text NOT NULL,      -- the account that submitted, and is told
            applicant_name text NOT NULL,      -- masked for a person (张*)
            departments    text[] NOT NULL     -- departments with an open task, in routing order
        )
        """
    )


@dataclass(slots=True)
class _Row:
    number: str
    item_code: str
    submitter: str
    applicant_name: str
    departments: list[str]


class CaseNotices:
    """A batch's cases as the table holds them, changed event by event in memory, then written back."""

    def __init__(self, table: str, rows: dict[UUID, _Row], items: Mapping[str, ItemFacts | None]) -> None:
        self.table = table
        self.rows = rows
        self.items = dict(items)
        self.new: set[UUID] = set()
        self.changed: set[UUID] = set()

    @classmethod
    async def read(
        cls, conn: asyncpg.Connection, table: str, envelopes: Sequence[Any], lookup: ItemLookup
    ) -> CaseNotices:
        ids = list({e.originator_id for e in envelopes})
        stored = await conn.fetch(
            f"SELECT case_id, number, item_code, submitter, applicant_name, departments "
            f"FROM {table} WHERE case_id = ANY($1::uuid[])",
            ids,
        )
        rows = {
            r["case_id"]: _Row(
                r["number"], r["item_code"], r["submitter"], r["applicant_name"], list(r["departments"])
            )
            for r in stored
        }
        codes = {r.item_code for r in rows.values()}
        codes |= {e.event.item_code for e in envelopes if isinstance(e.event, Case.Submitted)}
        items = {code: await lookup(code) for code in sorted(codes)}
        return cls(table, rows, items)

    def apply(self, envelope: Any) -> CaseNotice | None:
        """Fold the event into its case; the notice as of just after it, or None for an unknown case."""
        event, case_id = envelope.event, envelope.originator_id
        if isinstance(event, Case.Submitted):
            self.rows[case_id] = _Row(
                event.number, event.item_code, event.actor.id, display_name(event.applicant), []
            )
            self.new.add(case_id)
        row = self.rows.get(case_id)
        if row is None:
            log.warning("case %s: an event with no submission before it; nobody is told", case_id)
            return None
        if self._fold(row, event):
            self.changed.add(case_id)
        item = self.items.get(row.item_code)
        return CaseNotice(
            number=row.number,
            item_name=item.name if item is not None else row.item_code,
            applicant_subject=row.submitter,
            applicant_name=row.applicant_name,
            departments=tuple(row.departments),
            material_names=item.material_names if item is not None else {},
        )

    @staticmethod
    def _fold(row: _Row, event: Any) -> bool:
        """Keep the departments whose task is open, as the work queue counts them; True on a change."""
        before = list(row.departments)
        match event:
            case Case.Routed(assignments=assignments):
                row.departments += [a.department for a in assignments if a.department not in row.departments]
            case Case.TaskApproved(department=d) | Case.TaskRejected(department=d):
                row.departments = [x for x in row.departments if x != d]
            case Case.TaskReturned(department=d, to=to) if to is not ReturnTarget.PREVIOUS_STEP:
                row.departments = [x for x in row.departments if x != d]
            case Case.Concluded() | Case.InstantlyApproved() | Case.AcceptanceRefused():
                row.departments = []
        return row.departments != before

    async def write(self, conn: asyncpg.Connection) -> None:
        if self.new:
            await conn.executemany(
                f"INSERT INTO {self.table} (case_id, number, item_code, submitter, applicant_name, "
                "departments) VALUES ($1, $2, $3, $4, $5, $6)",
                [(cid, *self._values(cid)) for cid in sorted(self.new)],
            )
        if changed := sorted(self.changed - self.new):
            await conn.executemany(
                f"UPDATE {self.table} SET departments = $2 WHERE case_id = $1",
                [(cid, self.rows[cid].departments) for cid in changed],
            )

    def _values(self, case_id: UUID) -> tuple[Any, ...]:
        r = self.rows[case_id]
        return (r.number, r.item_code, r.submitter, r.applicant_name, r.departments)
