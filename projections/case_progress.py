"""The case progress read model: one row per case, its timeline, and the queries citizens and staff read.

Personal data never lands here in the clear: the applicant is kept as masked display
values plus a one-way key (一人一档), and the 查询密码 only as its scrypt hash. Times
come from the events, never from now(), so a rebuild gives identical rows; deadlines
and lights are computed at query time (see projections.case_deadlines).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from domain.case import Case, CaseStatus
from domain.personal import mask_id, mask_name, mask_phone
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


def plain(value: Any) -> str:
    """The text of a personal field, whether the event carries a str or a typed personal value."""
    if isinstance(value, str):
        return value
    for attribute in ("number", "name", "text"):
        if isinstance(text := getattr(value, attribute, None), str):
            return text
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
            );
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
        facts: dict[UUID, CaseFacts] = {}
        steps: dict[UUID, tuple[str, int, datetime]] = {}
        timeline: list[tuple[Any, ...]] = []
        for envelope in envelopes:
            event, case_id = envelope.event, envelope.originator_id
            if isinstance(event, Case.Submitted):
                await _insert_case(conn, suffix, case_id, event)
                facts[case_id] = CaseFacts()
            elif case_id not in facts:
                raw = await conn.fetchval(f"SELECT facts FROM cases{suffix} WHERE case_id = $1", case_id)
                facts[case_id] = decode_facts(raw)
            label = fold(facts[case_id], event)
            steps[case_id] = (label, envelope.originator_version, event.timestamp)
            timeline.append(
                (
                    case_id,
                    envelope.originator_version,
                    event.timestamp,
                    label,
                    type(event).__name__,
                    isinstance(event, INTERNAL_EVENTS),
                    str(event.actor.role),
                    masked_actor(event.actor),
                    str(event.channel),
                )
            )
            terms = getattr(event, "acceptance", None)
            if terms is not None:
                await conn.execute(
                    f"UPDATE cases{suffix} SET receipt_number = $2, query_password_hash = $3 "
                    "WHERE case_id = $1",
                    case_id,
                    terms.receipt_number,
                    terms.query_password_hash,
                )
        await conn.executemany(
            f"INSERT INTO case_timeline{suffix} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", timeline
        )
        await conn.executemany(
            f"UPDATE cases{suffix} SET status = $2, status_label = $3, accepted_on = $4, facts = $5::jsonb, "
            "current_step = $6, version = $7, updated_at = $8 WHERE case_id = $1",
            [
                (cid, f.status.value, f.status.label, f.accepted_on, encode_facts(f).decode(), *steps[cid])
                for cid, f in facts.items()
            ],
        )


async def _insert_case(conn: asyncpg.Connection, suffix: str, case_id: UUID, event: Any) -> None:
    applicant = event.applicant
    id_number, name = plain(applicant.id_number), plain(applicant.name)
    person = str(applicant.kind) == "person"
    await conn.execute(
        f"INSERT INTO cases{suffix} (case_id, number, item_code, applicant_kind, applicant_key, "
        "applicant_name, applicant_id, applicant_phone, submitter, submitted_at, status, status_label, "
        "current_step, facts, version, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '提交申请', '{}', 1, $10)",
        case_id,
        event.number,
        event.item_code,
        str(applicant.kind),
        applicant_key(str(applicant.id_type), id_number),
        # An enterprise's name is public (公示); only a natural person's is masked.
        mask_name(name) if person else name,
        mask_id(id_number),
        mask_phone(plain(applicant.phone)),
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
