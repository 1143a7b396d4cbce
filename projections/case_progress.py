"""The case progress read model: one row per case, its timeline, and the queries citizens and staff read.

Personal data never lands here in the clear: the applicant is kept as masked display
values plus a one-way key (一人一档), and the 查询密码 only as its keyed hash. Times
come from the events, never from now(), so a rebuild gives identical rows; deadlines
and lights are computed at query time (see projections.case_deadlines).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from domain.case import Applicant, Case, CaseStatus, Enterprise
from domain.personal import (
    Address,
    CreditCode,
    IdDocument,
    IdNumber,
    Personal,
    PersonName,
    Phone,
    mask,
    mask_name,
)
from projections.case_facts import CASE_TOPICS, INTERNAL_EVENTS, CaseFacts, decode_facts, encode_facts, fold
from projections.case_reads import (  # the query side, re-exported: import it from here
    AnonymousProgress,
    CaseProgress,
    CaseQueries,
    CaseSummary,
    PublicStep,
    TimelineEntry,
)
from projections.case_secrets import applicant_key


def plain(value: Personal | CreditCode | str) -> str:
    """The whole text of a field, typed or not: what a one-way key or a mask is made from, never stored."""
    match value:
        case str():
            return value
        case IdNumber(number=text) | IdDocument(number=text) | Phone(number=text):
            return text
        case PersonName(name=text) | CreditCode(code=text):
            return text
        case Address():
            return value.text
    raise TypeError(f"no text in {type(value).__name__}")


def masked_actor(actor: Any) -> str | None:
    return None if actor.name is None else mask_name(plain(actor.name))


class CaseProgressProjection:
    """Consumer of every case event (the runner's Consumer protocol, by shape)."""

    name: str = "case_progress"
    topics: frozenset[str] | None = CASE_TOPICS
    tables: Sequence[str] = ("cases", "case_timeline")

    async def create_tables(self, conn: asyncpg.Connection, suffix: str) -> None:
        await conn.execute(
            f"""
            CREATE TABLE IF NOT EXISTS cases{suffix} (
                case_id         uuid PRIMARY KEY,
                number          text NOT NULL UNIQUE,
                item_code       text NOT NULL,
                applicant_kind  text NOT NULL,
                applicant_key   text NOT NULL,      -- sha256 of id type and number, never the number
                applicant_name  text NOT NULL,      -- masked for a person (张*)
                applicant_id    text NOT NULL,      -- masked (430***********1234)
                applicant_phone text NOT NULL,      -- masked (138****1234)
                submitter       text NOT NULL,      -- the account that submitted
                submitted_at    timestamptz NOT NULL,
                status          text NOT NULL,
                status_label    text NOT NULL,
                accepted_on     date,
                receipt_number  text UNIQUE,
                query_password_hash text,
                limit_amount    integer,            -- the acceptance's own limit, when it records one
                limit_unit      text,
                current_step    text NOT NULL,
                facts           jsonb NOT NULL,
                version         integer NOT NULL,
                updated_at      timestamptz NOT NULL
            ) WITH (fillfactor = 70);  -- room on the page: the update of each event can be HOT
            CREATE INDEX IF NOT EXISTS cases_submitter{suffix} ON cases{suffix} (submitter);
            CREATE INDEX IF NOT EXISTS cases_applicant{suffix} ON cases{suffix} (applicant_key);
            CREATE TABLE IF NOT EXISTS case_timeline{suffix} (
                case_id     uuid NOT NULL,
                version     integer NOT NULL,
                at          timestamptz NOT NULL,
                label       text NOT NULL,
                event       text NOT NULL,
                internal    boolean NOT NULL,      -- staff-only steps (督办, claims), hidden from applicants
                actor_role  text NOT NULL,
                actor_name  text,                  -- masked
                channel     text NOT NULL,
                PRIMARY KEY (case_id, version)
            );
            """
        )

    async def handle(self, conn: asyncpg.Connection, envelopes: Sequence[Any], suffix: str) -> None:
        # A batch in four statements at most, whatever its size: the facts of the cases it
        # continues in one query, then new cases, timeline entries and case rows each in one
        # executemany. Rows end as handling the events one at a time would leave them.
        facts = await _continued_facts(conn, suffix, envelopes)
        # (current step, version, time) per case; the step is None while only staff-internal
        # events came in, which leaves the stored one as it was (see below).
        steps: dict[UUID, tuple[str | None, int, datetime]] = {}
        receipts: dict[UUID, tuple[str | None, str | None]] = {}  # the last acceptance's, per case
        new_cases: list[tuple[Any, ...]] = []
        timeline: list[tuple[Any, ...]] = []
        for envelope in envelopes:
            event, case_id = envelope.event, envelope.originator_id
            if isinstance(event, Case.Submitted):
                new_cases.append(_case_row(case_id, event))
                facts[case_id] = CaseFacts()
            label = fold(facts[case_id], event)
            internal = isinstance(event, INTERNAL_EVENTS)
            # The current step is what the applicant reads (in the anonymous lookup too): a
            # 督办 light or a claim stays in the staff timeline and does not replace it.
            current: str | None = label
            if internal:
                current = steps[case_id][0] if case_id in steps else None
            steps[case_id] = (current, envelope.originator_version, event.timestamp)
            timeline.append(
                (
                    case_id,
                    envelope.originator_version,
                    event.timestamp,
                    label,
                    type(event).__name__,
                    internal,
                    str(event.actor.role),
                    masked_actor(event.actor),
                    str(event.channel),
                )
            )
            terms = getattr(event, "acceptance", None)
            if terms is not None:
                receipts[case_id] = (terms.receipt_number, terms.query_password_hash)
        if new_cases:
            await conn.executemany(_INSERT_CASE.format(suffix=suffix), new_cases)
        await conn.executemany(
            f"INSERT INTO case_timeline{suffix} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", timeline
        )
        await conn.executemany(
            f"UPDATE cases{suffix} SET status = $2, status_label = $3, accepted_on = $4, facts = $5::jsonb, "
            "current_step = coalesce($6, current_step), version = $7, updated_at = $8, "
            # $9: whether an acceptance came in this batch; only then are the receipt and hash set.
            "receipt_number = CASE WHEN $9 THEN $10 ELSE receipt_number END, "
            "query_password_hash = CASE WHEN $9 THEN $11 ELSE query_password_hash END "
            "WHERE case_id = $1",
            [
                (
                    cid,
                    f.status.value,
                    f.status.label,
                    f.accepted_on,
                    encode_facts(f).decode(),
                    *steps[cid],
                    cid in receipts,
                    *receipts.get(cid, (None, None)),
                )
                for cid, f in facts.items()
            ],
        )


async def _continued_facts(
    conn: asyncpg.Connection, suffix: str, envelopes: Sequence[Any]
) -> dict[UUID, CaseFacts]:
    """The stored facts of each case whose first event in the batch is not its submission."""
    first: dict[UUID, Any] = {}
    for envelope in envelopes:
        first.setdefault(envelope.originator_id, envelope.event)
    continued = [cid for cid, event in first.items() if not isinstance(event, Case.Submitted)]
    if not continued:
        return {}
    rows = await conn.fetch(  # index probes whatever the statistics say: see work_queue._Known.read
        "SELECT c.case_id, c.facts FROM unnest($1::uuid[]) AS b(case_id) CROSS JOIN LATERAL "
        f"(SELECT case_id, facts FROM cases{suffix} WHERE case_id = b.case_id OFFSET 0) AS c",
        continued,
    )
    stored = {r["case_id"]: r["facts"] for r in rows}
    # A case without a row folds from empty facts, and its UPDATE finds nothing, as before.
    return {cid: decode_facts(stored.get(cid)) for cid in continued}


_INSERT_CASE = (
    "INSERT INTO cases{suffix} (case_id, number, item_code, applicant_kind, applicant_key, "
    "applicant_name, applicant_id, applicant_phone, submitter, submitted_at, status, status_label, "
    "current_step, facts, version, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '提交申请', '{{}}', 1, $10)"
)


def _case_row(case_id: UUID, event: Any) -> tuple[Any, ...]:
    applicant: Applicant = event.applicant
    # An enterprise's name and 统一社会信用代码 are public (公示): `mask` leaves a credit code whole.
    name = applicant.name if isinstance(applicant, Enterprise) else mask(applicant.name)
    return (
        case_id,
        event.number,
        event.item_code,
        str(applicant.kind),
        applicant_key(str(applicant.id_type), plain(applicant.identity)),
        name,
        mask(applicant.identity),
        mask(applicant.phone),
        event.actor.id,
        event.timestamp,
        CaseStatus.SUBMITTED.value,
        CaseStatus.SUBMITTED.label,
    )


__all__ = [
    "AnonymousProgress",
    "CaseProgress",
    "CaseProgressProjection",
    "CaseQueries",
    "CaseSummary",
    "PublicStep",
    "TimelineEntry",
]
