"""What the notification consumers remember of each case, so they can build a `CaseNotice` for any event.

Besides who is told and which departments hold a task, each row keeps the case's
deadline facts (projections.case_facts: acceptance day, suspensions, extensions), so a
notice can state the 办结时限 as of its event, on the working calendar of the batch.

Each consumer that turns case events into intents (the outbox policy, the inbox) keeps
its own table of this shape, named by the consumer, because each consumer owns its
tables. Only masked values are stored: the applicant's name as 张*, never their number.
Item names are looked up in the catalogue when a batch is handled and are not stored,
so a renamed item reads right at once and a rebuild still gives identical rows.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import msgspec

from domain.calendar import WorkingCalendar
from domain.calendar_deadline import Duration
from domain.case import Case, ReturnTarget
from domain.case.checks import BEIJING
from notifications.policy import CaseNotice, display_name
from projections.case_deadlines import compute, limit_from
from projections.case_facts import CaseFacts, decode_facts, encode_facts, fold
from projections.catalogue import BundleGuide, CatalogueQueries, ServiceGuide
from projections.partners import PartnerInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What a notice says of a catalogue item: its name and its materials' names."""

    name: str
    material_names: Mapping[str, str] = field(default_factory=dict)
    promised: Duration | None = None  # 承诺时限 (a bundle's target); None: the catalogue states none


# Item (or bundle) codes to their facts; None for a code the catalogue does not know.
ItemLookup = Callable[[Collection[str]], Awaitable[Mapping[str, ItemFacts | None]]]
# The working calendar as published now; the consumers ask once per batch.
CalendarSource = Callable[[], Awaitable[WorkingCalendar]]


class PartnerItems(Protocol):
    """projections.partners.PartnerQueries is the real one: the items partner cities take from us."""

    async def accepting(self, item_code: str) -> Sequence[PartnerInfo]: ...


def catalogue_items(catalogue: CatalogueQueries, partners: PartnerItems | None = None) -> ItemLookup:
    """Item facts from the catalogue views (CatalogueQueries keeps entries until the catalogue changes).

    A code our catalogue does not know may be a partner city's item (跨城通办): its name is
    the one the partner registry gives, if any.
    """

    async def lookup(codes: Collection[str]) -> Mapping[str, ItemFacts | None]:
        found = {code: _facts_of(guide) for code, guide in (await catalogue.guides(codes)).items()}
        if partners is not None:
            for code in [c for c in codes if found.get(c) is None]:
                named = [
                    a.name for p in await partners.accepting(code) for a in p.accepts if a.item_code == code
                ]
                found[code] = next((ItemFacts(n) for n in named if n), None)
        return found

    return lookup


def _facts_of(guide: ServiceGuide | BundleGuide | None) -> ItemFacts | None:
    match guide:
        case ServiceGuide(spec=spec):
            promised: Any = spec.promised_limit
        case BundleGuide(spec=spec):
            promised = spec.target
        case _:
            return None
    limit = limit_from(None, None, msgspec.to_builtins(promised)) if promised is not None else None
    return ItemFacts(spec.name, {m.id: m.name for m in spec.materials}, limit)


async def create_notice_table(conn: asyncpg.Connection, table: str) -> None:
    await conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {table} (
            case_id        uuid PRIMARY KEY,
            number         text NOT NULL,
            item_code      text NOT NULL,
            submitter      text NOT NULL,      -- the account that submitted, and is told
            applicant_name text NOT NULL,      -- masked for a person (张*)
            departments    text[] NOT NULL,    -- departments with an open task, in routing order
            facts          jsonb NOT NULL,     -- projections.case_facts.CaseFacts: the deadline's facts
            extension_reason text              -- why the last extension was asked for
        ) WITH (fillfactor = 70)           -- room on the page: the update of each event can be HOT
        """
    )


@dataclass(slots=True)
class _Row:
    number: str
    item_code: str
    submitter: str
    applicant_name: str
    departments: list[str]
    facts: CaseFacts
    extension_reason: str | None = None


class CaseNotices:
    """A batch's cases as the table holds them, changed event by event in memory, then written back."""

    def __init__(
        self,
        table: str,
        rows: dict[UUID, _Row],
        items: Mapping[str, ItemFacts | None],
        calendar: WorkingCalendar | None = None,
    ) -> None:
        self.table = table
        self.rows = rows
        self.items = dict(items)
        self.calendar = calendar  # None: notices carry no deadline
        self.new: set[UUID] = set()
        self.changed: set[UUID] = set()

    @classmethod
    async def read(
        cls,
        conn: asyncpg.Connection,
        table: str,
        envelopes: Sequence[Any],
        lookup: ItemLookup,
        calendar: CalendarSource | None = None,
    ) -> CaseNotices:
        ids = list({e.originator_id for e in envelopes})
        # One index probe per case (LATERAL, OFFSET 0): as `case_id = ANY(...)`, a table that grew
        # faster than autovacuum's ANALYZE (a catch-up, a rebuild) looks tiny to the planner, and
        # a plan cached then scans the whole table on every batch (12 ms at 11,000 rows).
        stored = await conn.fetch(
            "SELECT n.case_id, n.number, n.item_code, n.submitter, n.applicant_name, n.departments, "
            "n.facts, n.extension_reason FROM unnest($1::uuid[]) AS b(case_id) "
            f"CROSS JOIN LATERAL (SELECT * FROM {table} WHERE case_id = b.case_id OFFSET 0) AS n",
            ids,
        )
        rows = {
            r["case_id"]: _Row(
                r["number"],
                r["item_code"],
                r["submitter"],
                r["applicant_name"],
                list(r["departments"]),
                decode_facts(r["facts"]),
                r["extension_reason"],
            )
            for r in stored
        }
        codes = {r.item_code for r in rows.values()}
        codes |= {e.event.item_code for e in envelopes if isinstance(e.event, Case.Submitted)}
        items = await lookup(codes) if codes else {}
        return cls(table, rows, items, await calendar() if calendar is not None else None)

    def apply(self, envelope: Any) -> CaseNotice | None:
        """Fold the event into its case; the notice as of just after it, or None for an unknown case."""
        event, case_id = envelope.event, envelope.originator_id
        if isinstance(event, Case.Submitted):
            self.rows[case_id] = _Row(
                event.number, event.item_code, event.actor.id, display_name(event.applicant), [], CaseFacts()
            )
            self.new.add(case_id)
        row = self.rows.get(case_id)
        if row is None:
            log.warning("case %s: an event with no submission before it; nobody is told", case_id)
            return None
        before = (list(row.departments), encode_facts(row.facts), row.extension_reason)
        self._fold(row, event)
        fold(row.facts, event)
        if (row.departments, encode_facts(row.facts), row.extension_reason) != before:
            self.changed.add(case_id)
        item = self.items.get(row.item_code)
        return CaseNotice(
            number=row.number,
            item_name=item.name if item is not None else row.item_code,
            applicant_subject=row.submitter,
            applicant_name=row.applicant_name,
            departments=tuple(row.departments),
            material_names=item.material_names if item is not None else {},
            deadline=self._deadline(row, item, event),
            extension_reason=row.extension_reason,
        )

    def _deadline(self, row: _Row, item: ItemFacts | None, event: Any) -> date | None:
        """The 办结时限 as of the event: counted from acceptance, past suspensions and extensions.

        Counted only for the events whose notices state it (acceptance, routing, an
        extension): counting costs some 60 µs, and most events are neither.
        """
        if self.calendar is None or item is None or not row.facts.clock_running:
            return None
        if not isinstance(event, _STATES_DEADLINE):
            return None
        today = event.timestamp.astimezone(BEIJING).date()
        view = compute(row.facts, item.promised, self.calendar, today)
        return view.due if view is not None else None

    @staticmethod
    def _fold(row: _Row, event: Any) -> None:
        """Keep the departments whose task is open, as the work queue counts them."""
        match event:
            case Case.Routed(assignments=assignments):
                row.departments += [a.department for a in assignments if a.department not in row.departments]
            case Case.TaskApproved(department=d) | Case.TaskRejected(department=d):
                row.departments = [x for x in row.departments if x != d]
            case Case.TaskReturned(department=d, to=to) if to is not ReturnTarget.PREVIOUS_STEP:
                row.departments = [x for x in row.departments if x != d]
            case Case.Concluded() | Case.InstantlyApproved() | Case.AcceptanceRefused():
                row.departments = []
            case Case.ExtensionRequested(reason=reason):
                row.extension_reason = reason
            case Case.ExtensionRefused():
                row.extension_reason = None

    async def write(self, conn: asyncpg.Connection) -> None:
        if self.new:
            await conn.executemany(
                f"INSERT INTO {self.table} (case_id, number, item_code, submitter, applicant_name, "
                "departments, facts, extension_reason) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)",
                [(cid, *self._values(cid)) for cid in sorted(self.new)],
            )
        if changed := sorted(self.changed - self.new):
            await conn.executemany(
                f"UPDATE {self.table} SET departments = $2, facts = $3::jsonb, extension_reason = $4 "
                "WHERE case_id = $1",
                [(cid, *self._values(cid)[4:]) for cid in changed],
            )

    def _values(self, case_id: UUID) -> tuple[Any, ...]:
        r = self.rows[case_id]
        return (
            r.number,
            r.item_code,
            r.submitter,
            r.applicant_name,
            r.departments,
            _facts(r),
            r.extension_reason,
        )


_STATES_DEADLINE = (
    Case.Accepted,
    Case.AcceptedWithMissingMaterials,
    Case.AcceptedOnCommitment,
    Case.Routed,
    Case.ExtensionApproved,
)


def _facts(row: _Row) -> str:
    return encode_facts(row.facts).decode()
