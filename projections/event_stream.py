"""The published stream: every case event as its integration event, with the departments that may see it.

A department sees a case from the moment the case is routed to it (the routing
event included) and every case-wide event after that; a task's own events go only
to the task's department. The audience of each event is decided as the log stands at
that event, so a subscriber resuming from any cursor gets the same events again.

The stored body is masked. `revealable` marks the events whose body differs when
personal data is shown; readers entitled to it re-derive those from the event store
(see event_stream_reads.py), so no clear personal data is kept here.

Each committed batch announces its last position on the `<schema>_stream` channel,
so the stream hubs of every API process fan it out without polling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic

from domain.case import Case
from projections.integration_events import ENCODER, CaseRef
from projections.integration_mapping import PUBLISHED_EVENTS, event_id, publish, task_department

STREAM_CHANNEL_SUFFIX = "_stream"


class _Case:
    __slots__ = ("departments", "known", "ref")

    def __init__(self, ref: CaseRef, departments: list[str], known: bool) -> None:
        self.ref, self.departments, self.known = ref, departments, known


class EventStreamProjection:
    name = "event_stream"
    topics: frozenset[str] | None = frozenset(get_topic(cls) for cls in PUBLISHED_EVENTS)
    tables: Sequence[str] = ("stream_cases", "stream_events", "stream_audience")
    schema_version = 1

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS stream_cases{suffix} (
                case_id     uuid   PRIMARY KEY,
                number      text   NOT NULL,
                item_code   text   NOT NULL,
                departments text[] NOT NULL
            );
            CREATE TABLE IF NOT EXISTS stream_events{suffix} (
                position    bigint      PRIMARY KEY,
                event_id    uuid        NOT NULL,
                case_id     uuid        NOT NULL,
                type        text        NOT NULL,
                departments text[]      NOT NULL,
                revealable  boolean     NOT NULL,
                recorded_at timestamptz NOT NULL,
                body        bytea       NOT NULL
            );
            CREATE TABLE IF NOT EXISTS stream_audience{suffix} (
                department text   NOT NULL,
                position   bigint NOT NULL,
                PRIMARY KEY (department, position)
            );
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        ours = [e for e in envelopes if type(e.event) in _PUBLISHED]
        if not ours:
            return
        cases = await self._cases(conn, {e.originator_id for e in ours}, suffix)
        rows: list[tuple[Any, ...]] = []
        audience: list[tuple[str, int]] = []
        for env in ours:
            event = env.event
            if isinstance(event, Case.Submitted):
                ref = CaseRef(id=env.originator_id, number=event.number, item_code=event.item_code)
                cases[env.originator_id] = _Case(ref, [], False)
            case = cases.get(env.originator_id)
            if case is None:  # a history that began before this projection existed cannot be named
                continue
            if isinstance(event, Case.Routed):
                case.departments = sorted({*case.departments, *(a.department for a in event.assignments)})
            own = task_department(event)
            departments = [own] if own is not None else list(case.departments)
            masked = publish(
                event, position=env.notification_id, case=case.ref, recorded_at=env.recorded_at, reveal=False
            )
            body = ENCODER.encode(masked)
            revealable = body != ENCODER.encode(
                publish(event, position=env.notification_id, case=case.ref,
                        recorded_at=env.recorded_at, reveal=True)
            )  # fmt: skip
            rows.append(
                (env.notification_id, event_id(env.originator_id, env.originator_version), env.originator_id,
                 type(masked).__struct_config__.tag, departments, revealable, env.recorded_at, body)
            )  # fmt: skip
            audience.extend((d, env.notification_id) for d in departments)
        await self._save(conn, cases, rows, audience, suffix)

    async def _cases(self, conn: asyncpg.Connection, ids: set[UUID], suffix: str) -> dict[UUID, _Case]:
        found = await conn.fetch(
            f"SELECT case_id, number, item_code, departments FROM stream_cases{suffix} "
            "WHERE case_id = ANY($1::uuid[])",
            list(ids),
        )
        return {r[0]: _Case(CaseRef(id=r[0], number=r[1], item_code=r[2]), list(r[3]), True) for r in found}

    async def _save(
        self,
        conn: asyncpg.Connection,
        cases: dict[UUID, _Case],
        rows: list[tuple[Any, ...]],
        audience: list[tuple[str, int]],
        suffix: str,
    ) -> None:
        await conn.executemany(
            f"INSERT INTO stream_cases{suffix} (case_id, number, item_code, departments) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (case_id) DO UPDATE SET departments = EXCLUDED.departments",
            [(c.ref.id, c.ref.number, c.ref.item_code, c.departments) for c in cases.values()],
        )
        await conn.executemany(
            f"INSERT INTO stream_events{suffix} (position, event_id, case_id, type, departments, revealable, "
            "recorded_at, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (position) DO NOTHING",
            rows,
        )
        if audience:
            await conn.execute(
                f"INSERT INTO stream_audience{suffix} (department, position) "
                "SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING",
                [a[0] for a in audience],
                [a[1] for a in audience],
            )
        if rows:
            await conn.execute(
                "SELECT pg_notify(current_schema() || $1, $2)", STREAM_CHANNEL_SUFFIX, str(rows[-1][0])
            )


_PUBLISHED = frozenset(PUBLISHED_EVENTS)
