"""The departments' work queue (后台分类审批): one row per department task, with lights computed when asked.

A second consumer of the case events, independent of case_progress: it keeps its
own copy of each case's deadline facts (work_queue_cases), so either can be rebuilt
alone. A task is open work until its department decides it (批准 signed, or
rejected) or its case closes (办结, 撤回, 作废 …); then `finished_at` records when,
and it moves to the history. Sorting by light needs the deadline, which depends on
today and the calendar, so the open queue is filtered by light, ordered and paged
after computing; the history is filtered, ordered and paged by the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
import msgspec

from domain.case import Case, CaseStatus, ReturnTarget, TaskStep
from domain.case.status import OPEN
from domain.case.tasks import next_step, previous_step
from projections.case_deadlines import (
    LIGHT_RANK,
    CalendarProvider,
    Clock,
    DeadlineView,
    Light,
    compute,
    limit_from,
    today_in_beijing,
)
from projections.case_facts import CASE_TOPICS, CaseFacts, decode_facts, encode_facts, fold
from projections.catalogue import PoolSource

TaskQueueState = Literal["routed", "claimed", "approved", "rejected", "returned"]
# open: work still to do; finished: the history, newest first; all: the open work, then the history.
QueueScope = Literal["open", "finished", "all"]


class WorkQueueProjection:
    """Consumer of every case event (the runner's Consumer protocol, by shape)."""

    name: str = "work_queue"
    topics: frozenset[str] | None = CASE_TOPICS
    tables: Sequence[str] = ("work_queue", "work_queue_cases")
    schema_version: int = 2  # 2: work_queue.finished_at; a start on older tables rebuilds them

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS work_queue_cases{suffix} (
                case_id      uuid PRIMARY KEY,
                number       text NOT NULL,
                item_code    text NOT NULL,
                limit_amount integer,
                limit_unit   text,
                facts        jsonb NOT NULL
            ) WITH (fillfactor = 70);  -- room on the page: the update of each event can be HOT
            CREATE TABLE IF NOT EXISTS work_queue{suffix} (
                case_id     uuid NOT NULL,
                department  text NOT NULL,
                number      text NOT NULL,
                item_code   text NOT NULL,
                step        text NOT NULL,         -- undertake (承办), review (审核), approve (批准)
                state       text NOT NULL,
                claimed_by  text,
                routed_at   timestamptz NOT NULL,
                finished_at timestamptz,           -- NULL while open work; else decided or case closed
                PRIMARY KEY (case_id, department)
            );
            -- The open queue: only the tasks in hand, however long the history grows.
            CREATE INDEX IF NOT EXISTS work_queue_open{suffix}
                ON work_queue{suffix} (department, item_code) WHERE finished_at IS NULL;
            -- The history, newest first, for paging without sorting.
            CREATE INDEX IF NOT EXISTS work_queue_history{suffix}
                ON work_queue{suffix} (department, finished_at DESC, number DESC)
                WHERE finished_at IS NOT NULL;
            CREATE INDEX IF NOT EXISTS work_queue_history_item{suffix}
                ON work_queue{suffix} (department, item_code, finished_at DESC, number DESC)
                WHERE finished_at IS NOT NULL;
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        # A batch in four statements at most, whatever its size: its cases and their tasks
        # read in one query, worked in memory, and written back in one executemany each.
        # Rows end as handling the events one at a time would leave them.
        known = await _Known.read(conn, suffix, {e.originator_id for e in envelopes})
        facts: dict[UUID, CaseFacts] = {}
        new_cases: dict[UUID, tuple[str, str]] = {}  # number and item code of those submitted now
        for envelope in envelopes:
            event, case_id = envelope.event, envelope.originator_id
            if isinstance(event, Case.Submitted):
                new_cases[case_id] = known.cases[case_id] = (event.number, event.item_code)
                facts[case_id] = CaseFacts()
            elif case_id not in facts:
                facts[case_id] = decode_facts(known.facts.get(case_id))
            case = facts[case_id]
            was_open = case.status in OPEN
            fold(case, event)
            known.task_change(case_id, event)
            if was_open and case.status not in OPEN:
                # The case closed: what its departments had not decided is no longer work to do.
                known.finish_open(case_id, event.timestamp)
        if new_cases:
            await conn.executemany(
                f"INSERT INTO work_queue_cases{suffix} (case_id, number, item_code, facts) "
                "VALUES ($1, $2, $3, $4::jsonb)",
                [(cid, *new_cases[cid], encode_facts(facts[cid]).decode()) for cid in new_cases],
            )
        if continued := [(cid, encode_facts(f).decode()) for cid, f in facts.items() if cid not in new_cases]:
            await conn.executemany(
                f"UPDATE work_queue_cases{suffix} SET facts = $2::jsonb WHERE case_id = $1", continued
            )
        if known.changed:
            await conn.executemany(
                f"INSERT INTO work_queue{suffix} (case_id, department, number, item_code, step, state, "
                "claimed_by, routed_at, finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                "ON CONFLICT (case_id, department) DO UPDATE SET step = EXCLUDED.step, "
                "state = EXCLUDED.state, claimed_by = EXCLUDED.claimed_by, routed_at = EXCLUDED.routed_at, "
                "finished_at = EXCLUDED.finished_at",
                [(*key, *known.tasks[key].row()) for key in sorted(known.changed)],
            )


class _Task(msgspec.Struct):
    """One department's task of a case, as the batch leaves it."""

    number: str
    item_code: str
    step: str
    state: str
    claimed_by: str | None
    routed_at: datetime
    finished_at: datetime | None

    def row(self) -> tuple[Any, ...]:
        return msgspec.structs.astuple(self)


class _Known:
    """What the table holds of a batch's cases and their tasks, changed event by event in memory."""

    def __init__(self) -> None:
        self.cases: dict[UUID, tuple[str, str]] = {}  # number, item code
        self.facts: dict[UUID, str] = {}  # as stored
        self.tasks: dict[tuple[UUID, str], _Task] = {}
        self.changed: set[tuple[UUID, str]] = set()

    @classmethod
    async def read(cls, conn: asyncpg.Connection, suffix: str, case_ids: set[UUID]) -> _Known:
        # LATERAL with OFFSET 0 keeps each case an index probe. As plain joins, a table that grew
        # faster than autovacuum's ANALYZE (a rebuild, a burst) looks tiny to the planner, which
        # then hashes a scan of the whole table on every batch: ~9 ms instead of ~0.3 ms at 130k rows.
        rows = await conn.fetch(
            "SELECT b.case_id, c.number, c.item_code, c.facts, q.department, q.number, q.item_code, "
            "q.step, q.state, q.claimed_by, q.routed_at, q.finished_at "
            "FROM unnest($1::uuid[]) AS b(case_id) "
            "LEFT JOIN LATERAL (SELECT number, item_code, facts "
            f"FROM work_queue_cases{suffix} WHERE case_id = b.case_id OFFSET 0) c ON true "
            "LEFT JOIN LATERAL (SELECT department, number, item_code, step, state, claimed_by, routed_at, "
            f"finished_at FROM work_queue{suffix} WHERE case_id = b.case_id OFFSET 0) q ON true",
            list(case_ids),
        )
        known = cls()
        for case_id, number, item_code, facts, department, *task in rows:
            if number is not None:
                known.cases[case_id], known.facts[case_id] = (number, item_code), facts
            if department is not None:
                known.tasks[case_id, department] = _Task(*task)
        return known

    def task_change(self, case_id: UUID, event: Any) -> None:
        if isinstance(event, Case.Routed):
            if case_id not in self.cases:
                return  # the tasks copy the case's number and item: without its row, none is made
            for a in event.assignments:
                # Routing again (after a return to the window) reopens the task at 承办.
                key = (case_id, a.department)
                step = TaskStep.UNDERTAKE.value
                if (task := self.tasks.get(key)) is None:
                    number, item_code = self.cases[case_id]
                    self.tasks[key] = _Task(number, item_code, step, "routed", None, event.timestamp, None)
                else:
                    task.step, task.state, task.claimed_by = step, "routed", None
                    task.routed_at, task.finished_at = event.timestamp, None
                self.changed.add(key)
            return
        # (step, state, claimed by, finished at): approved after 批准, or rejected, the task is finished.
        change: tuple[TaskStep, str, str | None, datetime | None] | None = None
        match event:
            case Case.TaskClaimed(step=step):
                change = (step, "claimed", event.actor.id, None)
            case Case.TaskStepApproved(step=step):
                change = (next_step(step) or step, "routed", None, None)
            case Case.TaskApproved(step=step):
                change = (step, "approved", None, event.timestamp)
            case Case.TaskRejected(step=step):
                change = (step, "rejected", None, event.timestamp)
            case Case.TaskReturned(step=step, to=to):
                back = previous_step(step) if to is ReturnTarget.PREVIOUS_STEP else None
                change = (back, "routed", None, None) if back is not None else (step, "returned", None, None)
        if change is None:
            return
        key = (case_id, event.department)
        if (task := self.tasks.get(key)) is not None:  # no task of that department: nothing to change
            task.step, task.state, task.claimed_by, task.finished_at = change[0].value, *change[1:]
            self.changed.add(key)

    def finish_open(self, case_id: UUID, at: datetime) -> None:
        for key, task in self.tasks.items():
            if key[0] == case_id and task.finished_at is None:
                task.finished_at = at
                self.changed.add(key)


# The query side.


class QueueItem(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    number: str
    item_code: str
    department: str
    step: TaskStep
    step_label: str  # 承办 / 审核 / 批准
    state: TaskQueueState
    claimed_by: str | None
    routed_at: datetime
    finished_at: datetime | None  # None while open work
    case_status: CaseStatus
    deadline: DeadlineView | None  # a finished task shows the deadline, but no light


class LightCounts(msgspec.Struct, frozen=True, kw_only=True):
    """How many open tasks show each light; `none` are those without one (no time limit known)."""

    red: int
    yellow: int
    green: int
    none: int


class QueuePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[QueueItem]
    total: int
    page: int
    size: int
    counts: LightCounts  # over the open queue, whatever the scope, light and page asked for


_SELECT = (
    "SELECT q.*, c.facts, c.limit_amount, c.limit_unit, "
    "coalesce(ci.spec -> 'promised_limit', cb.spec -> 'target') AS catalogue_limit "
    "FROM work_queue q JOIN work_queue_cases c USING (case_id) "
    "LEFT JOIN catalogue_items ci ON ci.code = c.item_code "
    "LEFT JOIN catalogue_bundles cb ON cb.code = c.item_code "
)


class WorkQueueQueries:
    def __init__(self, pool: PoolSource, calendar: CalendarProvider, clock: Clock) -> None:
        self._pool, self._calendar, self._clock = pool, calendar, clock

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    async def queue(
        self,
        department: str,
        *,
        scope: QueueScope = "open",
        state: TaskQueueState | None = None,
        light: Light | None = None,
        item: str | None = None,
        page: int = 1,
        size: int = 20,
    ) -> QueuePage:
        """A department's tasks: open work red first, then yellow, then by due date; history newest first."""
        where, start = _Filter(department, state, item), (page - 1) * size
        calendar, today = self._calendar(), today_in_beijing(self._clock)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            # Lights need today and the working-day calendar, so they are computed here, in
            # Python, over the department's open tasks only: as many as its officers have in
            # hand, never the history. The counts come from the same rows.
            in_hand = sorted((_item(r, calendar, today) for r in await _open(conn, where)), key=_order)
            # The open work comes first ("open", "all"), then the history ("finished", "all").
            ahead = [] if scope == "finished" else in_hand
            if light is not None:
                ahead = [i for i in ahead if i.deadline is not None and i.deadline.light == light]
            head, done = ahead[start : start + size], 0
            rest: list[QueueItem] = []
            if scope != "open" and light is None:  # history has no lights: a light filter leaves it out
                rows, done = await _history(conn, where, max(0, start - len(ahead)), size - len(head))
                rest = [_item(r, calendar, today) for r in rows]
        return QueuePage(
            items=head + rest, total=len(ahead) + done, page=page, size=size, counts=_counts(in_hand)
        )


async def _open(conn: asyncpg.Connection, where: _Filter) -> list[asyncpg.Record]:
    condition, args = where.sql(finished=False)
    rows: list[asyncpg.Record] = await conn.fetch(f"{_SELECT} WHERE {condition}", *args)
    return rows


async def _history(
    conn: asyncpg.Connection, where: _Filter, offset: int, limit: int
) -> tuple[list[asyncpg.Record], int]:
    """One page of finished tasks, newest first, and how many there are; paged by the database."""
    condition, args = where.sql(finished=True)
    total: int = await conn.fetchval(f"SELECT count(*) FROM work_queue q WHERE {condition}", *args)
    if limit <= 0 or offset >= total:
        return [], total
    n = len(args)
    rows: list[asyncpg.Record] = await conn.fetch(
        f"{_SELECT} WHERE {condition} ORDER BY q.finished_at DESC, q.number DESC "
        f"LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return rows, total


class _Filter(msgspec.Struct, frozen=True):
    department: str
    state: TaskQueueState | None
    item: str | None

    def sql(self, *, finished: bool) -> tuple[str, list[Any]]:
        """The WHERE clause with only the filters given, so the planner can use the partial indexes."""
        conditions = ["q.department = $1", f"q.finished_at IS {'NOT ' if finished else ''}NULL"]
        args: list[Any] = [self.department]
        for column, value in (("state", self.state), ("item_code", self.item)):
            if value is not None:
                args.append(value)
                conditions.append(f"q.{column} = ${len(args)}")
        return " AND ".join(conditions), args


def _item(row: asyncpg.Record, calendar: Any, today: date) -> QueueItem:
    facts = decode_facts(row["facts"])
    limit = limit_from(row["limit_amount"], row["limit_unit"], row["catalogue_limit"])
    step = TaskStep(row["step"])
    deadline = compute(facts, limit, calendar, today)
    if deadline is not None and row["finished_at"] is not None:
        # The department's part is done: the case's clock is no longer its light to watch.
        deadline = msgspec.structs.replace(deadline, light=None, working_days_left=None)
    return QueueItem(
        case_id=row["case_id"],
        number=row["number"],
        item_code=row["item_code"],
        department=row["department"],
        step=step,
        step_label=step.label,
        state=row["state"],
        claimed_by=row["claimed_by"],
        routed_at=row["routed_at"],
        finished_at=row["finished_at"],
        case_status=facts.status,
        deadline=deadline,
    )


def _counts(items: list[QueueItem]) -> LightCounts:
    lights = Counter(i.deadline.light if i.deadline else None for i in items)
    return LightCounts(red=lights["red"], yellow=lights["yellow"], green=lights["green"], none=lights[None])


def _order(item: QueueItem) -> tuple[int, date, str]:
    d = item.deadline
    return (LIGHT_RANK[None if d is None else d.light], date.max if d is None else d.due, item.number)
