"""The case timers: a consumer that keeps the due-timers table in step with each case's deadlines.

- 秒批: a submission of an item open to 秒批 is put to the rule at once, after its event is
  safely recorded: timer 'case.instant_approval', due when submitted.
- 预审: a submission (or a completed 补正) not acted on within 5 days is deemed accepted
  (行政许可法 Art. 32): timer 'case.deem_accepted'.
- 容缺受理: the owed materials not supplied by their due date: 'case.supplement_overdue'.
- 限时办结: yellow at 2 working days left ('case.due_soon'), red the day after the deadline
  ('case.overdue'); stopped while suspended, moved by extensions and by a newly published year.

Timers are scheduled in the consumer's transaction, so each event sets them exactly once.
Light timer keys name their deadline: a fired key stays fired, and a moved deadline is a new one.
A batch is worked in memory: its cases' facts read in one query, then facts and timers
written in one statement each, leaving what handling the events one by one would.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic

from backend.cases import deadline_facts as rows
from backend.cases.deadline_facts import DeadlineFacts, beijing_day, end_of, start_of
from backend.cases.terms import Catalogue
from backend.consumers.base import Envelope
from backend.timers import TimerChanges
from domain.calendar import WorkingCalendar
from domain.calendar_deadline import Duration, deadline
from domain.case import Case
from domain.case.instant_rules import INSTANT_MODE
from domain.case.values import DayUnit
from domain.workcalendar import WorkCalendar
from projections.case_facts import CASE_TOPICS

log = logging.getLogger(__name__)

INSTANT_APPROVAL = "case.instant_approval"
DEEM_ACCEPTED = "case.deem_accepted"
SUPPLEMENT_OVERDUE = "case.supplement_overdue"
DUE_SOON = "case.due_soon"
OVERDUE = "case.overdue"

# 行政许可法 Art. 32 says 五日内. Natural days, as agreed for now; Art. 82 counts the Act's own
# periods in working days, so this is one constant to change if the region reads it that way.
PRE_REVIEW_LIMIT = Duration(5, "natural")
YELLOW_WITHIN = 2  # working days left (DOMAIN.md: yellow at 2 or fewer)

CalendarSource = Callable[[], Awaitable[WorkingCalendar]]


@dataclass(frozen=True, slots=True)
class ItemTimes:
    """What the case timers need of a catalogue entry."""

    limit: Duration  # 承诺时限; a bundle's target
    instant: bool  # open to 秒批: a submission is put to the rule at once


ItemLookup = Callable[[str], Awaitable[ItemTimes | None]]

_UNITS: dict[str, Literal["working", "natural"]] = {
    DayUnit.WORKING_DAY: "working",
    DayUnit.NATURAL_DAY: "natural",
}
YEAR_PUBLISHED = get_topic(WorkCalendar.YearPublished)  # type: ignore[attr-defined]  # made by @event
_ACCEPTED = (Case.Accepted, Case.AcceptedWithMissingMaterials, Case.AcceptedOnCommitment)


def catalogue_times(catalogue: Catalogue) -> ItemLookup:
    """The item's 承诺时限 (a bundle's target) and whether it is open to 秒批, from the catalogue views."""

    async def times(code: str) -> ItemTimes | None:
        guide = await catalogue.service(code)
        if guide is not None:
            spec_limit, modes = guide.spec.promised_limit, guide.spec.modes
        elif (bundle := await catalogue.bundle(code)) is not None:
            spec_limit, modes = bundle.spec.target, bundle.spec.modes
        else:
            return None
        return ItemTimes(Duration(spec_limit.amount, _UNITS[spec_limit.unit]), INSTANT_MODE in modes)

    return times


def instant_key(case_id: UUID) -> str:
    return f"{INSTANT_APPROVAL}:{case_id}"


def deem_key(case_id: UUID) -> str:
    return f"{DEEM_ACCEPTED}:{case_id}"


def supplement_key(case_id: UUID) -> str:
    return f"{SUPPLEMENT_OVERDUE}:{case_id}"


def intake_keys(case_id: UUID) -> tuple[str, str]:
    """The timers that wait on the office's first move: 秒批 and the deemed acceptance."""
    return instant_key(case_id), deem_key(case_id)


def light_keys(case_id: UUID, due: Any) -> tuple[str, str]:
    return f"{DUE_SOON}:{case_id}:{due}", f"{OVERDUE}:{case_id}:{due}"


class _Batch:
    """One batch's working set: its cases' facts, the timer changes, the catalogue entries looked up."""

    def __init__(self, facts: dict[UUID, DeadlineFacts]) -> None:
        self.facts = facts
        self.changed: dict[UUID, DeadlineFacts] = {}
        self.timers = TimerChanges()
        # Per batch, so a revised entry applies from the next batch, as it did per event.
        self.items: dict[str, ItemTimes | None] = {}

    def keep(self, facts: DeadlineFacts) -> None:
        self.facts[facts.case_id] = self.changed[facts.case_id] = facts

    async def write_facts(self, conn: asyncpg.Connection, suffix: str) -> None:
        if self.changed:
            await rows.store_many(conn, suffix, list(self.changed.values()))
            self.changed = {}

    async def write(self, conn: asyncpg.Connection, suffix: str) -> None:
        await self.write_facts(conn, suffix)
        await self.timers.write(conn)


class CaseDeadlines:
    """Consumer of case events and published calendar years (the runner's Consumer protocol, by shape)."""

    name: str = "case_deadlines"
    topics: frozenset[str] | None = CASE_TOPICS | {YEAR_PUBLISHED}
    tables: Sequence[str] = (rows.TABLE,)

    def __init__(self, calendar: CalendarSource, items: ItemLookup) -> None:
        self.calendar, self.items = calendar, items

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await rows.create_table(conn, suffix)

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        cases = {e.originator_id for e in envelopes if e.topic != YEAR_PUBLISHED}
        work = _Batch(await rows.load_many(conn, suffix, cases))
        calendar: WorkingCalendar | None = None
        for envelope in envelopes:
            if calendar is None or envelope.topic == YEAR_PUBLISHED:
                calendar = await self.calendar()  # once per batch, and afresh after a publication
            if envelope.topic == YEAR_PUBLISHED:
                await self._republished(conn, suffix, work, envelope.event.year, calendar)  # type: ignore[attr-defined]
            else:
                await self._case_event(work, envelope.originator_id, envelope.event, calendar)
        await work.write(conn, suffix)

    async def _case_event(self, work: _Batch, case_id: UUID, event: Any, calendar: WorkingCalendar) -> None:
        timers = work.timers
        if isinstance(event, Case.Submitted):
            facts = DeadlineFacts(case_id=case_id, item_code=event.item_code)
            item = await self._item(work, event.item_code)
            if item is not None and item.instant:
                # Due at once: the rule decides on the timer worker, which retries until it has.
                payload = {"case_id": str(case_id), "item_code": event.item_code}
                timers.schedule(instant_key(case_id), INSTANT_APPROVAL, event.timestamp, payload)
            self._deem_from(work, case_id, beijing_day(event.timestamp), calendar)
            work.keep(facts)
            return
        found = work.facts.get(case_id)
        if found is None:
            log.warning("case %s: %s without a Submitted; no timers", case_id, type(event).__name__)
            return
        facts = found
        day = beijing_day(event.timestamp)
        match event:
            case Case.PreReviewPassed() | Case.MaterialsRequested():
                for key in intake_keys(case_id):
                    timers.cancel(key)
            case Case.MaterialsSupplemented(materials=given, outstanding=outstanding):
                if facts.state == "intake" and not outstanding:
                    # Back with the office after a 补正: the 5 days run again from the supplement.
                    self._deem_from(work, case_id, day, calendar)
                if facts.missing:
                    facts.missing = [m for m in facts.missing if m not in given]
                    if not facts.missing:
                        timers.cancel(supplement_key(case_id))
            case Case.AcceptanceRefused() | Case.InstantlyApproved():
                for key in intake_keys(case_id):
                    timers.cancel(key)
                facts.state = "closed"
            case _ if isinstance(event, _ACCEPTED):
                for key in intake_keys(case_id):
                    timers.cancel(key)
                terms = event.acceptance
                facts.state, facts.accepted_on = "running", terms.accepted_on
                item = await self._item(work, facts.item_code)
                facts.limit = item.limit if item is not None else None
                if isinstance(event, Case.AcceptedWithMissingMaterials):
                    assert terms.supplement_due is not None  # 容缺受理 always sets it
                    facts.missing = list(event.missing)
                    timers.schedule(
                        supplement_key(case_id),
                        SUPPLEMENT_OVERDUE,
                        end_of(terms.supplement_due),
                        {"case_id": str(case_id), "due": terms.supplement_due.isoformat()},
                    )
                self._set_lights(work, facts, calendar)
            case Case.Suspended():
                facts.suspensions = [*facts.suspensions, (day, None)]
                self._clear_lights(work, facts)
                facts.state = "suspended"
            case Case.Resumed():
                start, _ = facts.suspensions[-1]
                facts.suspensions = [*facts.suspensions[:-1], (start, day)]
                facts.state = "running"
                self._set_lights(work, facts, calendar)
            case Case.ExtensionApproved(kind=kind):
                facts.extensions = [
                    *facts.extensions,
                    Duration(kind.duration.amount, _UNITS[kind.duration.unit]),
                ]
                if facts.state == "running":
                    self._set_lights(work, facts, calendar)
            case Case.Concluded():
                for key in (*intake_keys(case_id), supplement_key(case_id)):
                    timers.cancel(key)
                self._clear_lights(work, facts)
                facts.state = "closed"
            case _:
                return  # no bearing on any deadline
        work.keep(facts)

    async def _item(self, work: _Batch, code: str) -> ItemTimes | None:
        if code not in work.items:
            work.items[code] = await self.items(code)
        return work.items[code]

    async def _republished(
        self, conn: asyncpg.Connection, suffix: str, work: _Batch, year: int, calendar: WorkingCalendar
    ) -> None:
        await work.write_facts(conn, suffix)  # the query below must see this batch's changes so far
        for facts in await rows.running_through(conn, suffix, year):
            self._set_lights(work, facts, calendar)
            work.keep(facts)

    def _deem_from(self, work: _Batch, case_id: UUID, day: Any, calendar: WorkingCalendar) -> None:
        last = deadline(day, PRE_REVIEW_LIMIT, calendar, today=day).due
        work.timers.schedule(deem_key(case_id), DEEM_ACCEPTED, end_of(last), {"case_id": str(case_id)})

    def _set_lights(self, work: _Batch, facts: DeadlineFacts, calendar: WorkingCalendar) -> None:
        computed = facts.compute(calendar)
        if computed is None:
            if facts.limit is None:
                log.warning("case %s: no time limit for %s; no lights", facts.case_id, facts.item_code)
            return
        if computed.due != facts.due:
            self._clear_lights(work, facts)
        facts.due, facts.provisional = computed.due, computed.provisional
        soon, late = light_keys(facts.case_id, computed.due)
        payload = {"case_id": str(facts.case_id), "deadline": computed.due.isoformat()}
        # Before acceptance when the limit is shorter than the window: it fires at once, and that is right.
        yellow_from = calendar.add_working_days(computed.due, -YELLOW_WITHIN)
        work.timers.schedule(soon, DUE_SOON, start_of(yellow_from), payload)
        work.timers.schedule(late, OVERDUE, end_of(computed.due), payload)

    def _clear_lights(self, work: _Batch, facts: DeadlineFacts) -> None:
        if facts.due is not None:
            for key in light_keys(facts.case_id, facts.due):
                work.timers.cancel(key)
        facts.due = None
