"""The departments' work queue (后台分类审批): one row per department task, with lights computed when asked.

A second consumer of the case events, independent of case_progress: it keeps its
own copy of each case's deadline facts (work_queue_cases), so either can be rebuilt
alone. Sorting by light needs the deadline, which depends on today and the calendar,
so the filtering by light, the ordering and the paging happen after computing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
import msgspec

from domain.case import Case, CaseStatus, ReturnTarget, TaskStep
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


class WorkQueueProjection:
    """Consumer of every case event (the runner's Consumer protocol, by shape)."""

    name: str = "work_queue"
    topics: frozenset[str] | None = CASE_TOPICS
    tables: Sequence[str] = ("work_queue", "work_queue_cases")

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
            );
            CREATE TABLE IF NOT EXISTS work_queue{suffix} (
                case_id    uuid NOT NULL,
                department text NOT NULL,
                number     text NOT NULL,
                item_code  text NOT NULL,
                step       text NOT NULL,         -- undertake (承办), review (审核), approve (批准)
                state      text NOT NULL,
                claimed_by text,
                routed_at  timestamptz NOT NULL,
                PRIMARY KEY (case_id, department)
            );
            CREATE INDEX IF NOT EXISTS work_queue_department{suffix}
                ON work_queue{suffix} (department, state);
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        facts: dict[UUID, CaseFacts] = {}
        for envelope in envelopes:
            event, case_id = envelope.event, envelope.originator_id
            if isinstance(event, Case.Submitted):
                await conn.execute(
                    f"INSERT INTO work_queue_cases{suffix} (case_id, number, item_code, facts) "
                    "VALUES ($1, $2, $3, '{}')",
                    case_id,
                    event.number,
                    event.item_code,
                )
                facts[case_id] = CaseFacts()
            elif case_id not in facts:
                raw = await conn.fetchval(
                    f"SELECT facts FROM work_queue_cases{suffix} WHERE case_id = $1", case_id
                )
                facts[case_id] = decode_facts(raw)
            fold(facts[case_id], event)
            await _task_change(conn, suffix, case_id, event)
        await conn.executemany(
            f"UPDATE work_queue_cases{suffix} SET facts = $2::jsonb WHERE case_id = $1",
            [(cid, encode_facts(f).decode()) for cid, f in facts.items()],
        )


async def _task_change(conn: asyncpg.Connection, suffix: str, case_id: UUID, event: Any) -> None:
    table = f"work_queue{suffix}"
    if isinstance(event, Case.Routed):
        for a in event.assignments:
            # Routing again (after a return to the window) reopens the task at 承办.
            await conn.execute(
                f"INSERT INTO {table} (case_id, department, number, item_code, step, state, routed_at) "
                f"SELECT $1, $2, number, item_code, $3, 'routed', $4 FROM work_queue_cases{suffix} "
                "WHERE case_id = $1 ON CONFLICT (case_id, department) DO UPDATE SET step = EXCLUDED.step, "
                "state = 'routed', claimed_by = NULL, routed_at = EXCLUDED.routed_at",
                case_id,
                a.department,
                TaskStep.UNDERTAKE.value,
                event.timestamp,
            )
        return
    change: tuple[TaskStep, str, str | None] | None = None
    match event:
        case Case.TaskClaimed(step=step):
            change = (step, "claimed", event.actor.id)
        case Case.TaskStepApproved(step=step):
            change = (next_step(step) or step, "routed", None)
        case Case.TaskApproved(step=step):
            change = (step, "approved", None)
        case Case.TaskRejected(step=step):
            change = (step, "rejected", None)
        case Case.TaskReturned(step=step, to=to):
            back = previous_step(step) if to is ReturnTarget.PREVIOUS_STEP else None
            change = (back, "routed", None) if back is not None else (step, "returned", None)
    if change is not None:
        await conn.execute(
            f"UPDATE {table} SET step = $3, state = $4, claimed_by = $5 "
            "WHERE case_id = $1 AND department = $2",
            case_id,
            event.department,
            change[0].value,
            change[1],
            change[2],
        )


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
    case_status: CaseStatus
    deadline: DeadlineView | None


class QueuePage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[QueueItem]
    total: int
    page: int
    size: int


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
        state: TaskQueueState | None = None,
        light: Light | None = None,
        item: str | None = None,
        page: int = 1,
        size: int = 20,
    ) -> QueuePage:
        """A department's tasks: red first, then yellow, then by due date (then case number)."""
        rows = await self.pool.fetch(
            "SELECT q.*, c.facts, c.limit_amount, c.limit_unit, "
            "coalesce(ci.spec -> 'promised_limit', cb.spec -> 'target') AS catalogue_limit "
            "FROM work_queue q JOIN work_queue_cases c USING (case_id) "
            "LEFT JOIN catalogue_items ci ON ci.code = c.item_code "
            "LEFT JOIN catalogue_bundles cb ON cb.code = c.item_code "
            "WHERE q.department = $1 AND ($2::text IS NULL OR q.state = $2) "
            "AND ($3::text IS NULL OR q.item_code = $3)",
            department,
            state,
            item,
        )
        calendar, today = self._calendar(), today_in_beijing(self._clock)
        items = [_item(r, calendar, today) for r in rows]
        if light is not None:
            items = [i for i in items if i.deadline is not None and i.deadline.light == light]
        items.sort(key=_order)
        start = (page - 1) * size
        return QueuePage(items=items[start : start + size], total=len(items), page=page, size=size)


def _item(row: asyncpg.Record, calendar: Any, today: date) -> QueueItem:
    facts = decode_facts(row["facts"])
    limit = limit_from(row["limit_amount"], row["limit_unit"], row["catalogue_limit"])
    step = TaskStep(row["step"])
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
        case_status=facts.status,
        deadline=compute(facts, limit, calendar, today),
    )


def _order(item: QueueItem) -> tuple[int, date, str]:
    d = item.deadline
    return (LIGHT_RANK[None if d is None else d.light], date.max if d is None else d.due, item.number)
