"""TongbanReports: every step of a case received from a partner city, sent back there, each once.

A consumer of case events. A case submitted by a partner city is remembered from its
Submitted event (its number, for `handoff.accepted`); its ReceivedFromPartner event
links it to the handoff, and from there each event of the case is one message to the
receiving city, numbered `version - base + 1` (report_mapping.py says which kind).

Messages are put in the outbox on the runner's connection, so they exist exactly when
the batch and its position commit. Their ids derive from (partner, handoff, seq): a
batch redone, or a rebuild from position 0 into fresh tables, enqueues the same ids,
and the outbox drops them. Events of other cases change nothing; the runner records
the position past them all the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from backend.consumers.base import Envelope
from backend.federation import report_mapping as mapping
from backend.federation.kinds import ENCODER, Payload
from backend.federation.messages import Envelope as Message
from backend.federation.outbox import enqueue
from domain.case import Case, Role
from projections.case_facts import CASE_TOPICS, CaseFacts, decode_facts, encode_facts

TABLE = "tongban_reports"
DepartmentNames = Callable[[Sequence[str]], Awaitable[Mapping[str, str]]]


@dataclass(slots=True)
class Link:
    """One partner-submitted case: linked once its ReceivedFromPartner is seen."""

    case_id: UUID
    number: str
    partner: str | None = None  # the receiving city (收件地): the messages go there
    handoff: UUID | None = None
    base_version: int | None = None  # the version of ReceivedFromPartner
    facts: CaseFacts = field(default_factory=CaseFacts)


@dataclass(frozen=True, slots=True)
class _Outgoing:
    link: Link
    seq: int
    payload: Payload
    recorded_at: datetime


class TongbanReports:
    """Consumer of case events (the runner's Consumer protocol, by shape)."""

    name: str = "tongban_reports"
    topics: frozenset[str] | None = CASE_TOPICS
    tables: Sequence[str] = (TABLE,)

    def __init__(self, department_names: DepartmentNames) -> None:
        self.department_names = department_names

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {TABLE}{suffix} (
                case_id      uuid    PRIMARY KEY,
                number       text    NOT NULL,  -- our 办件编号, sent in handoff.accepted
                partner      text,              -- the receiving city; NULL until ReceivedFromPartner
                handoff      uuid,
                base_version integer,           -- the version of ReceivedFromPartner: message 1
                facts        jsonb   NOT NULL   -- CaseFacts, for the timeline's words
            )
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Envelope], suffix: str) -> None:
        links = await _load(conn, suffix, {e.originator_id for e in envelopes})
        changed: dict[UUID, Link] = {}
        outgoing: list[_Outgoing] = []
        for envelope in envelopes:
            link = _follow(links, envelope.originator_id, envelope.originator_version, envelope.event)
            if link is None:
                continue
            changed[link.case_id] = link
            if link.base_version is not None:
                seq = mapping.seq_of(envelope.originator_version, link.base_version)
                payload = mapping.report(envelope.event, link.facts, link.number)
                outgoing.append(_Outgoing(link, seq, payload, envelope.recorded_at))
        departments = set().union(*(mapping.departments_in(o.payload) for o in outgoing))
        names = await self.department_names(sorted(departments)) if departments else {}
        for out in outgoing:
            await _send(conn, out, names)
        await _store(conn, suffix, changed.values())


def _follow(links: dict[UUID, Link], case_id: UUID, version: int, event: Any) -> Link | None:
    """The case's link if this event is one to report (or starts one), else None."""
    if isinstance(event, Case.Submitted):
        if event.actor.role is not Role.PARTNER:
            return None
        links[case_id] = Link(case_id=case_id, number=event.number)
        return links[case_id]
    link = links.get(case_id)
    if link is None:
        return None
    if isinstance(event, Case.ReceivedFromPartner) and link.base_version is None:
        link.partner, link.handoff, link.base_version = event.partner, event.handoff, version
    if link.base_version is None or version < link.base_version:
        return None
    return link


async def _send(conn: asyncpg.Connection, out: _Outgoing, names: Mapping[str, str]) -> None:
    link = out.link
    assert link.partner is not None and link.handoff is not None
    payload = mapping.rendered(out.payload, names)
    message = Message(
        kind=mapping.kind_of(payload),
        handoff=link.handoff,
        seq=out.seq,
        sent_at=out.recorded_at,  # from the log, so a rebuild writes the same envelope
        payload=msgspec.Raw(ENCODER.encode(payload)),
    )
    await enqueue(conn, link.partner, message)


async def _load(conn: asyncpg.Connection, suffix: str, case_ids: Collection[UUID]) -> dict[UUID, Link]:
    rows = await conn.fetch(
        f"SELECT case_id, number, partner, handoff, base_version, facts FROM {TABLE}{suffix} "
        "WHERE case_id = ANY($1::uuid[])",
        list(case_ids),
    )
    return {r["case_id"]: _link(r) for r in rows}


def _link(row: asyncpg.Record) -> Link:
    return Link(
        case_id=row["case_id"],
        number=row["number"],
        partner=row["partner"],
        handoff=row["handoff"],
        base_version=row["base_version"],
        facts=decode_facts(row["facts"]),
    )


async def _store(conn: asyncpg.Connection, suffix: str, links: Iterable[Link]) -> None:
    ordered = sorted(links, key=lambda link: link.case_id)
    if not ordered:
        return
    await conn.execute(
        f"INSERT INTO {TABLE}{suffix} (case_id, number, partner, handoff, base_version, facts) "
        "SELECT c, n, p, h, b, f::jsonb "
        "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::integer[], $6::text[]) "
        "AS t(c, n, p, h, b, f) "
        "ON CONFLICT (case_id) DO UPDATE SET partner = EXCLUDED.partner, handoff = EXCLUDED.handoff, "
        "base_version = EXCLUDED.base_version, facts = EXCLUDED.facts",
        [link.case_id for link in ordered],
        [link.number for link in ordered],
        [link.partner for link in ordered],
        [link.handoff for link in ordered],
        [link.base_version for link in ordered],
        [encode_facts(link.facts).decode() for link in ordered],
    )
