"""The 好差评 policy: the reminder to rate, a 差评's acknowledgement, and what the unit did about it.

- `Rating.Reminded` (3 days after an unrated invitation) sends the rating invitation
  again; the first one goes out with the case's conclusion (notifications.policy).
- `RectificationTicket.Opened` tells the citizen the unit will call back
  (BAD_RATING_FOLLOW_UP).
- `Resolved`, or an upheld appeal, tells them the outcome (RATING_OUTCOME).

Only occasions of a case are written about: every template names the case. A hall
visit with no case has its screen and its ticket, not a notice. Like the appointment
policy, `RatingNoticeState` keeps what the notices say in a table per consumer: the
outbox's (`RatingNotices`) and the inbox's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.utils import get_topic

from domain.rating import Rating, RectificationTicket, TicketState
from notifications.case_notices import ItemLookup
from notifications.intents import Intent, Purpose, Recipient, intent_key
from notifications.outbox import DEFAULT_CUTOFF, insert_intents
from notifications.policy import moment

_EVENTS = (
    Rating.Invited, Rating.Reminded, RectificationTicket.Opened, RectificationTicket.Resolved,
    RectificationTicket.AppealDecided,
)  # fmt: skip
RATING_NOTICE_TOPICS = frozenset(get_topic(cls) for cls in _EVENTS)
_OUTCOMES = {
    TicketState.RECTIFIED: "已整改",
    TicketState.EXPLAINED: "已作出解释说明",
    TicketState.EXCLUDED: "经核实，该评价不计入统计",
}

DepartmentNames = Callable[[Sequence[str]], Any]  # codes -> awaitable {code: name}


async def create_rating_notice_table(conn: asyncpg.Connection, table: str) -> None:
    await conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {table} (
            rating_id      uuid PRIMARY KEY,
            ticket_id      uuid UNIQUE,           -- once a 差评 opened one
            subject        text NOT NULL,
            case_id        uuid NOT NULL,
            case_number    text NOT NULL,
            item_code      text NOT NULL,
            department     text NOT NULL,
            applicant_name text NOT NULL          -- masked
        )
        """
    )


class RatingNoticeState:
    def __init__(self, table: str, items: ItemLookup, department_names: DepartmentNames) -> None:
        self.table, self.items, self.department_names = table, items, department_names
        self._units: dict[str, str] = {}  # for this batch: each department named once

    async def apply(self, conn: asyncpg.Connection, envelopes: Sequence[Any]) -> list[Intent]:
        intents: list[Intent] = []
        for envelope in envelopes:
            event, origin = envelope.event, envelope.originator_id
            position = (origin, envelope.originator_version)
            match event:
                case Rating.Invited(occasion=o) if o.case_id is not None and o.case_number is not None:
                    await conn.execute(
                        f"INSERT INTO {self.table} (rating_id, subject, case_id, case_number, item_code, "
                        "department, applicant_name) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                        "ON CONFLICT DO NOTHING",
                        origin, event.applicant, o.case_id, o.case_number, o.item_code, o.department,
                        o.applicant_name or "您",
                    )  # fmt: skip
                case Rating.Reminded():
                    row = await conn.fetchrow(f"SELECT * FROM {self.table} WHERE rating_id = $1", origin)
                    if row is not None:
                        intents.append(
                            await self._intent(row, position, Purpose.RATING_INVITATION, event, {})
                        )
                case RectificationTicket.Opened():
                    await conn.execute(
                        f"UPDATE {self.table} SET ticket_id = $2 WHERE rating_id = $1",
                        event.rating_id,
                        origin,
                    )
                    row = await conn.fetchrow(
                        f"SELECT * FROM {self.table} WHERE rating_id = $1", event.rating_id
                    )
                    if row is not None:
                        unit = await self._unit(row)
                        extra = {"handling_unit": unit}
                        intents.append(
                            await self._intent(row, position, Purpose.BAD_RATING_FOLLOW_UP, event, extra)
                        )
                case RectificationTicket.Resolved():
                    intents.extend(
                        await self._outcome(conn, origin, position, event, event.outcome, event.note)
                    )
                case RectificationTicket.AppealDecided() if event.upheld:
                    # Not upheld: back to the unit, and the outcome is still to come.
                    intents.extend(
                        await self._outcome(conn, origin, position, event, TicketState.EXCLUDED, "")
                    )
        return intents

    async def _outcome(
        self,
        conn: asyncpg.Connection,
        ticket: UUID,
        position: tuple[UUID, int],
        event: Any,
        outcome: TicketState,
        note: str,
    ) -> list[Intent]:
        row = await conn.fetchrow(f"SELECT * FROM {self.table} WHERE ticket_id = $1", ticket)
        if row is None:
            return []
        said = f"{note}。" if note and not note.endswith("。") else note
        extra = {"handling_unit": await self._unit(row), "outcome": _OUTCOMES[outcome], "note": said}
        return [await self._intent(row, position, Purpose.RATING_OUTCOME, event, extra)]

    async def _unit(self, row: asyncpg.Record) -> str:
        code = row["department"]
        if code not in self._units:
            names = await self.department_names([code])
            self._units[code] = str(names.get(code, "承办单位"))
        return self._units[code]

    async def _intent(
        self,
        row: asyncpg.Record,
        position: tuple[UUID, int],
        purpose: Purpose,
        event: Any,
        extra: dict[str, str],
    ) -> Intent:
        recipient = Recipient.citizen(row["subject"])
        facts = (await self.items([row["item_code"]])).get(row["item_code"])
        return Intent(
            key=intent_key(position, recipient, purpose),
            purpose=purpose,
            recipient=recipient,
            variables={
                "applicant_name": row["applicant_name"],
                "item_name": facts.name if facts is not None else row["item_code"],
                "case_number": row["case_number"],
                "occurred_at": moment(event.timestamp),
                **extra,
            },
            urgent=False,
            occurred_at=event.timestamp,
            case_id=row["case_id"],
        )


class RatingNotices:
    """Consumer of ratings and their tickets into the outbox (the runner's Consumer protocol, by shape)."""

    name: str = "rating_notices"
    topics: frozenset[str] | None = RATING_NOTICE_TOPICS
    tables: Sequence[str] = ("rating_notices",)

    def __init__(
        self,
        items: ItemLookup,
        department_names: DepartmentNames,
        clock: Callable[[], datetime],
        *,
        cutoff: timedelta = DEFAULT_CUTOFF,
    ) -> None:
        self.items, self.department_names, self.clock, self.cutoff = items, department_names, clock, cutoff

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await create_rating_notice_table(conn, f"rating_notices{suffix}")

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        state = RatingNoticeState(f"rating_notices{suffix}", self.items, self.department_names)
        await insert_intents(conn, await state.apply(conn, envelopes), self.clock() - self.cutoff)
