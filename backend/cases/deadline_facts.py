"""What the case timers remember of a case: enough to recompute its deadline when a year is published."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal
from uuid import UUID

import asyncpg
import msgspec

from domain.calendar import WorkingCalendar
from domain.calendar_deadline import Deadline, Duration, deadline
from domain.case.checks import BEIJING

State = Literal["intake", "running", "suspended", "closed"]

TABLE = "case_deadline_facts"


class DeadlineFacts(msgspec.Struct, kw_only=True):
    """Mutable on purpose: one instance per case is updated event by event within a batch."""

    case_id: UUID
    item_code: str
    state: State = "intake"
    accepted_on: date | None = None
    limit: Duration | None = None
    suspensions: list[tuple[date, date | None]] = msgspec.field(default_factory=list)
    extensions: list[Duration] = msgspec.field(default_factory=list)
    missing: list[str] = msgspec.field(default_factory=list)  # 容缺 materials still owed
    due: date | None = None  # the deadline the light timers are scheduled for
    provisional: bool = False

    def compute(self, calendar: WorkingCalendar) -> Deadline | None:
        if self.accepted_on is None or self.limit is None:
            return None
        return deadline(
            self.accepted_on,
            self.limit,
            calendar,
            today=self.accepted_on,  # only an open suspension reads it, and then no lights are scheduled
            suspensions=self.suspensions,
            extensions=self.extensions,
        )


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(DeadlineFacts).decode


def beijing_day(at: datetime) -> date:
    return at.astimezone(BEIJING).date()


def start_of(day: date) -> datetime:
    """Midnight in Beijing at the start of `day`: a date's end is the next day's start."""
    return datetime.combine(day, time(0), tzinfo=BEIJING)


def end_of(day: date) -> datetime:
    return start_of(day + timedelta(days=1))


async def create_table(conn: asyncpg.Connection, suffix: str) -> None:
    await conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {TABLE}{suffix} (
            case_id  uuid PRIMARY KEY,
            state    text NOT NULL,
            due      date,              -- the deadline the light timers are set for
            facts    jsonb NOT NULL
        ) WITH (fillfactor = 70);  -- room on the page: an update of the facts alone can be HOT
        CREATE INDEX IF NOT EXISTS {TABLE}_running{suffix} ON {TABLE}{suffix} (due) WHERE state = 'running';
        """
    )


async def load_many(
    conn: asyncpg.Connection, suffix: str, case_ids: Iterable[UUID]
) -> dict[UUID, DeadlineFacts]:
    """The facts of those cases that have them, in one query."""
    if not (wanted := list(case_ids)):
        return {}
    rows = await conn.fetch(  # index probes whatever the statistics say (a young table looks tiny)
        "SELECT f.case_id, f.facts FROM unnest($1::uuid[]) AS b(case_id) CROSS JOIN LATERAL "
        f"(SELECT case_id, facts FROM {TABLE}{suffix} WHERE case_id = b.case_id OFFSET 0) AS f",
        wanted,
    )
    return {r["case_id"]: _decode(r["facts"]) for r in rows}


async def store_many(conn: asyncpg.Connection, suffix: str, many: Sequence[DeadlineFacts]) -> None:
    """Insert or replace the facts of each case, in one statement; the cases must differ."""
    ordered = sorted(many, key=lambda f: f.case_id)  # rows locked in one order by every writer
    await conn.execute(
        f"INSERT INTO {TABLE}{suffix} (case_id, state, due, facts) "
        "SELECT case_id, state, due, facts::jsonb "
        "FROM unnest($1::uuid[], $2::text[], $3::date[], $4::text[]) AS f(case_id, state, due, facts) "
        "ON CONFLICT (case_id) DO UPDATE SET "
        "state = EXCLUDED.state, due = EXCLUDED.due, facts = EXCLUDED.facts",
        [f.case_id for f in ordered],
        [f.state for f in ordered],
        [f.due for f in ordered],
        [_encode(f).decode() for f in ordered],
    )


async def running_through(conn: asyncpg.Connection, suffix: str, year: int) -> list[DeadlineFacts]:
    """Running cases whose deadline lies in `year` or later: only their count of days can touch that year."""
    rows = await conn.fetch(
        f"SELECT facts FROM {TABLE}{suffix} WHERE state = 'running' AND due >= $1 ORDER BY case_id",
        date(year, 1, 1),
    )
    return [_decode(r["facts"]) for r in rows]
