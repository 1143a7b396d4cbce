"""The appointment policy: a reminder before each confirmed booking, and "your turn is near" in the hall.

The reminder is written when the booking is confirmed, due a day before the slot
(or at once, for a slot less than a day away), and the dispatcher sends it when due,
deferring it past quiet hours like any non-urgent notice. A booking cancelled,
rescheduled, expired or missed before then takes its reminder back. "Your turn is
near" follows the queue's `TurnNear` event at once and is urgent: it is only worth
anything now.

`AppointmentNoticeState` is the policy over a table of what each reminder says (whose
booking, which item, where, when, the masked name), kept from the hold. Two consumers
use it, each with a table of its own, as the case notices are used: the outbox's
(`AppointmentNotices`) and the inbox's (notifications.inbox).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from eventsourcing.utils import get_topic

from domain.booking import Appointment
from domain.hall_queue import HallQueue
from domain.personal import mask
from notifications.case_notices import ItemLookup
from notifications.intents import Intent, Purpose, Recipient, intent_key
from notifications.outbox import DEFAULT_CUTOFF, insert_intents
from notifications.policy import moment

REMIND_BEFORE = timedelta(days=1)
_ENDED = (Appointment.Cancelled, Appointment.Expired, Appointment.Rescheduled, Appointment.NoShow)
APPOINTMENT_NOTICE_TOPICS = frozenset(
    get_topic(cls) for cls in (Appointment.Held, Appointment.Confirmed, *_ENDED, HallQueue.TurnNear)
)
_TAKE_BACK = "UPDATE notification_outbox SET state = 'skipped' WHERE key = $1 AND state = 'pending'"


async def create_appointment_notice_table(conn: asyncpg.Connection, table: str) -> None:
    await conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {table} (
            appointment_id uuid PRIMARY KEY,
            subject        text NOT NULL,
            item_code      text NOT NULL,
            hall           text NOT NULL,
            start_at       timestamptz NOT NULL,
            name           text NOT NULL,   -- masked: 张*
            reminder_key   text             -- the reminder's key, once confirmed
        )
        """
    )


@dataclass
class Outcome:
    """What a batch of events says: intents to give, and reminders to take back (key, when)."""

    intents: list[Intent] = field(default_factory=list)
    taken_back: list[tuple[str, datetime]] = field(default_factory=list)


class AppointmentNoticeState:
    def __init__(self, table: str, items: ItemLookup) -> None:
        self.table, self.items = table, items
        self._halls: dict[str, str] = {}  # for this batch: a busy hall's calls name it once

    async def apply(self, conn: asyncpg.Connection, envelopes: Sequence[Any]) -> Outcome:
        outcome = Outcome()
        for envelope in envelopes:
            event, origin = envelope.event, envelope.originator_id
            match event:
                case Appointment.Held():
                    await conn.execute(
                        f"INSERT INTO {self.table} VALUES ($1, $2, $3, $4, $5, $6, NULL) "
                        "ON CONFLICT DO NOTHING",
                        origin, event.actor.id, event.item_code, event.hall, event.slot.start,
                        mask(event.visitor.name),
                    )  # fmt: skip
                case Appointment.Confirmed():
                    row = await conn.fetchrow(f"SELECT * FROM {self.table} WHERE appointment_id = $1", origin)
                    if row is None:
                        continue
                    reminder = await self._reminder(conn, row, (origin, envelope.originator_version), event)
                    outcome.intents.append(reminder)
                    await conn.execute(
                        f"UPDATE {self.table} SET reminder_key = $2 WHERE appointment_id = $1",
                        origin,
                        reminder.key,
                    )
                case _ if isinstance(event, _ENDED):
                    key = await conn.fetchval(
                        f"SELECT reminder_key FROM {self.table} WHERE appointment_id = $1", origin
                    )
                    if key is not None:
                        outcome.taken_back.append((key, event.timestamp))
                case HallQueue.TurnNear() if event.subject is not None:
                    outcome.intents.append(
                        await self._turn_near(conn, event, (origin, envelope.originator_version))
                    )
        return outcome

    async def _reminder(
        self, conn: asyncpg.Connection, row: asyncpg.Record, position: tuple[Any, int], event: Any
    ) -> Intent:
        recipient = Recipient.citizen(row["subject"])
        start: datetime = row["start_at"]
        facts = (await self.items([row["item_code"]])).get(row["item_code"])
        return Intent(
            key=intent_key(position, recipient, Purpose.APPOINTMENT_REMINDER),
            purpose=Purpose.APPOINTMENT_REMINDER,
            recipient=recipient,
            variables={
                "applicant_name": row["name"],
                "item_name": facts.name if facts is not None else row["item_code"],
                "hall": await self._hall_name(conn, row["hall"]),
                "appointment_time": moment(start),
            },
            urgent=False,
            # Due a day ahead: the outbox sends nothing, and the inbox shows nothing, before an intent's time.
            occurred_at=max(start - REMIND_BEFORE, event.timestamp),
            case_id=None,
        )

    async def _turn_near(self, conn: asyncpg.Connection, event: Any, position: tuple[Any, int]) -> Intent:
        recipient = Recipient.citizen(event.subject)
        return Intent(
            key=intent_key(position, recipient, Purpose.TURN_NEAR),
            purpose=Purpose.TURN_NEAR,
            recipient=recipient,
            variables={
                "applicant_name": mask(event.name) if event.name is not None else "您",
                "hall": await self._hall_name(conn, event.hall),
                "ticket_number": event.ticket,
                "waiting_ahead": str(event.ahead),
            },
            urgent=True,
            occurred_at=event.timestamp,
            case_id=None,
        )

    async def _hall_name(self, conn: asyncpg.Connection, code: str) -> str:
        """The hall's name from the booking read model; its code if that has not seen the hall yet."""
        if code not in self._halls:
            # Another consumer's view: it may not be installed yet on a fresh start.
            name = None
            if await conn.fetchval("SELECT to_regclass('booking_halls')") is not None:
                name = await conn.fetchval("SELECT config->>'name' FROM booking_halls WHERE code = $1", code)
            self._halls[code] = str(name) if name else code
        return self._halls[code]


class AppointmentNotices:
    """Consumer of appointment and queue events into the outbox (the runner's Consumer protocol, by shape)."""

    name: str = "appointment_notices"
    topics: frozenset[str] | None = APPOINTMENT_NOTICE_TOPICS
    tables: Sequence[str] = ("appointment_notices",)

    def __init__(
        self, items: ItemLookup, clock: Callable[[], datetime], *, cutoff: timedelta = DEFAULT_CUTOFF
    ) -> None:
        self.items, self.clock, self.cutoff = items, clock, cutoff

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await create_appointment_notice_table(conn, f"appointment_notices{suffix}")

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        outcome = await AppointmentNoticeState(f"appointment_notices{suffix}", self.items).apply(
            conn, envelopes
        )
        await insert_intents(conn, outcome.intents, self.clock() - self.cutoff)
        for key, _ in outcome.taken_back:
            await conn.execute(_TAKE_BACK, key)  # one already sent stays sent
