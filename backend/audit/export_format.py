"""The audit export's lines (JSON Lines, `citypass.audit-export` version 1): a header, events, a trailer.

The writer (backend/audit/export.py) and the offline verifier (export_verifier.py)
share these types, so what one writes the other reads. Only msgspec and the standard
library are used here: the verifier runs with neither a database nor settings.

Each event line carries the exact stored bytes (`state`, base64), so anyone can
recompute its hash: sha256(previous_hash || topic as UTF-8 || state), with the
previous hash of a case's first event empty (the genesis). The readable `fields`
are decoded from `state` with the personal values opened; they are a convenience
the hash does not cover, since `state` holds those values encrypted.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any, TypeAlias
from uuid import UUID

import msgspec

FORMAT = "citypass.audit-export"
FORMAT_VERSION = 1
MEDIA_TYPE = "application/x-ndjson"
HASH_RULE = "sha256(previous_hash || topic utf-8 || state); genesis previous_hash is empty"


def link_hash(previous: bytes, topic: str, state: bytes) -> bytes:
    """The chain's hash, as backend/store/hashchain.py's chain_hash computes it (a test keeps them equal)."""
    return hashlib.sha256(previous + topic.encode("utf-8") + state).digest()


class Auditor(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    role: str
    name: str | None = None
    department: str | None = None
    hall: str | None = None


class Scope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One case, or the cases submitted from `since` to `until` (Beijing dates, both included)."""

    case_id: UUID | None = None
    case_number: str | None = None
    since: date | None = None
    until: date | None = None


class Header(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="header"):
    format: str
    format_version: int
    generated_at: datetime
    scope: Scope
    exported_by: Auditor
    reason: str
    access_id: UUID  # the AuditAccess that records this export
    hash_rule: str = HASH_RULE


class EventLine(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="event"):
    position: int  # the event's place in the whole store: increases line by line
    case_id: UUID
    case_number: str | None
    version: int
    topic: str
    type: str
    recorded_at: datetime
    occurred_at: datetime | None  # None when the state does not decode
    actor: dict[str, Any] | None
    channel: str | None
    state: bytes  # the stored bytes, base64 on the wire
    previous_hash: str  # hex, "" at version 1
    hash: str  # hex
    fields: dict[str, Any] | None  # readable, personal values revealed; not covered by the hash
    unreadable: str | None = None  # why `state` did not decode, when it did not


class Trailer(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="trailer"):
    events: int
    cases: int


Line: TypeAlias = Header | EventLine | Trailer

encode_line = msgspec.json.Encoder().encode
decode_line = msgspec.json.Decoder(Line).decode
