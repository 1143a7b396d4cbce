"""收件地: each case handed to a partner city goes to it as `handoff.requested`, exactly once,
and what happens to it here afterwards follows it there.

On `Case.HandedOff` the consumer loads the case at that event's version, builds the
application from it (backend/federation/handoff_request.py) and puts it in the
federation outbox as the handoff's first message (seq 1), in the batch's own
transaction; the relay delivers it. The same transaction records which case the
handoff belongs to (`tongban_sent_handoffs`), which is how the partner's replies find
their case (backend/federation/replies.py).

While the handoff is open (not refused, not withdrawn) three later events of the case
are the handoff's next messages, numbered on from the last: the applicant's 撤回
(`handoff.withdrawn`, which closes it), the paper originals posted for the handling
city's archive (`materials.posted`), and the applicant's 补正 (`materials.supplemented`).

The outbox is not a blue/green read model: a message id follows from (partner,
handoff, seq), so a batch handled again, or a rebuilt generation, enqueues the same id
and nothing is sent twice. Only `tongban_sent_handoffs` is rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from eventsourcing.utils import get_topic

from backend.federation.handoff_request import REQUESTED, encoded, handoff_requested
from backend.federation.kinds import (
    ENCODER,
    HandoffWithdrawn,
    Material,
    MaterialsPosted,
    Payload,
    SupplementSent,
)
from backend.federation.messages import Envelope as Message
from backend.federation.outbox import enqueue
from backend.store.aggregates import AggregateStore
from domain.case import Case, ResultCode, Role, UploadedFile

TABLE = "tongban_sent_handoffs"


class UnknownHandoffError(LookupError):
    """A partner's message names a handoff we never sent it."""


class TongbanHandoffs:
    """Consumer of the case events a handoff's messages come from (the runner's Consumer protocol)."""

    name: str = "tongban_handoffs"
    topics: frozenset[str] | None = frozenset(
        get_topic(e)
        for e in (
            Case.HandedOff, Case.HandoffRefused, Case.Concluded, Case.PaperMaterialsPosted,
            Case.MaterialsSupplemented,
        )
    )  # fmt: skip
    tables: Sequence[str] = (TABLE,)
    schema_version = 2  # 2: last_seq and open, for the messages after the first

    def __init__(self, aggregates: AggregateStore | Callable[[], AggregateStore]) -> None:
        self._aggregates = aggregates  # a callable: the runtime creates the store only at start-up

    @property
    def aggregates(self) -> AggregateStore:
        a = self._aggregates
        return a if isinstance(a, AggregateStore) else a()

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {TABLE}{suffix} (
                handoff       uuid        PRIMARY KEY,
                partner       text        NOT NULL,  -- the handling city's region
                case_id       uuid        NOT NULL,  -- our case
                case_version  integer     NOT NULL,  -- the version of its HandedOff event
                handed_off_at timestamptz NOT NULL,
                last_seq      integer     NOT NULL DEFAULT 1,  -- our last message of the handoff
                open          boolean     NOT NULL DEFAULT true  -- false once refused or withdrawn
            );
            CREATE INDEX IF NOT EXISTS {TABLE}{suffix}_case ON {TABLE}{suffix} (case_id) WHERE open
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        for envelope in envelopes:
            event = envelope.event
            case_id, version = envelope.originator_id, envelope.originator_version
            match event:
                case Case.HandedOff():
                    await self._send_request(conn, suffix, event, case_id, version)
                case Case.HandoffRefused():  # the refusing city's handoff (多地联办: one of several)
                    await conn.execute(
                        f"UPDATE {TABLE}{suffix} SET open = false "
                        "WHERE case_id = $1 AND partner = $2 AND open",
                        case_id, event.actor.id,
                    )  # fmt: skip
                case Case.Concluded(result=ResultCode.WITHDRAWN) if event.actor.role is not Role.PARTNER:
                    await self._follow_up(
                        conn, suffix, case_id, event, HandoffWithdrawn(reason=event.reason or None)
                    )
                case Case.PaperMaterialsPosted() if event.actor.role is not Role.PARTNER:
                    posted = MaterialsPosted(waybill_number=event.waybill_number, carrier=event.carrier)
                    await self._follow_up(conn, suffix, case_id, event, posted)
                case Case.MaterialsSupplemented() if event.actor.role is not Role.PARTNER:
                    files = [
                        Material(material_id=m, sha256=source.sha256)
                        for m, source in sorted(event.materials.items())
                        if isinstance(source, UploadedFile)  # the case takes only files while with a partner
                    ]
                    if files:
                        sent = SupplementSent(materials=files, attempt=event.attempt)
                        await self._follow_up(conn, suffix, case_id, event, sent)

    async def _send_request(
        self, conn: asyncpg.Connection, suffix: str, event: Any, case_id: UUID, version: int
    ) -> None:
        # The case as it was handed off, not as it is now: a retry or a rebuild sends the same.
        case = await self.aggregates.get(case_id, version=version)
        message = Message(
            kind=REQUESTED,
            handoff=event.handoff,
            seq=1,
            sent_at=event.timestamp,
            payload=msgspec.Raw(encoded(handoff_requested(case, event.handoff))),
        )
        await enqueue(conn, event.partner, message)
        await conn.execute(
            f"INSERT INTO {TABLE}{suffix} (handoff, partner, case_id, case_version, handed_off_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (handoff) DO NOTHING",
            event.handoff, event.partner, case_id, version, event.timestamp,
        )  # fmt: skip

    async def _follow_up(
        self, conn: asyncpg.Connection, suffix: str, case_id: UUID, event: Any, payload: Payload
    ) -> None:
        """The next message of each open handoff of the case (多地联办: every city's); a withdrawal
        closes them. None open (never handed off, or refused): nothing to tell.
        """
        closes = isinstance(payload, HandoffWithdrawn)
        rows = await conn.fetch(
            f"UPDATE {TABLE}{suffix} SET last_seq = last_seq + 1, open = open AND NOT $2 "
            "WHERE case_id = $1 AND open RETURNING handoff, partner, last_seq",
            case_id, closes,
        )  # fmt: skip
        for row in sorted(rows, key=lambda r: r["partner"]):
            message = Message(
                kind=_FOLLOW_UP_KINDS[type(payload)],
                handoff=row["handoff"],
                seq=row["last_seq"],
                sent_at=event.timestamp,
                payload=msgspec.Raw(ENCODER.encode(payload)),
            )
            await enqueue(conn, row["partner"], message)


_FOLLOW_UP_KINDS: dict[type[Payload], str] = {
    HandoffWithdrawn: "handoff.withdrawn",
    MaterialsPosted: "materials.posted",
    SupplementSent: "materials.supplemented",
}


async def handed_off_case(pool: asyncpg.Pool, partner: str, handoff: UUID) -> UUID:
    """Our case handed to `partner` as `handoff`; UnknownHandoffError if we sent it no such handoff."""
    case_id: UUID | None = await pool.fetchval(
        f"SELECT case_id FROM {TABLE} WHERE handoff = $1 AND partner = $2", handoff, partner
    )
    if case_id is None:
        raise UnknownHandoffError(f"no case of ours was handed to {partner} as handoff {handoff}")
    return case_id
