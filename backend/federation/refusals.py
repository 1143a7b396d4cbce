"""Why a federation endpoint refuses a request: one error class per reason, each a stable problem type.

The inbox refuses messages; the material files endpoint refuses with the same signature
reasons, and with MaterialNotServed for a file it does not give that partner. Every
refusal is recorded in `federation_refusals` (who claimed to send it, its message
id when readable, the reason, the caller's address) and logged, so a partner's
misconfiguration or somebody probing the endpoint is visible to an administrator.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

import asyncpg

from miniapp_api.problems import ProblemMap

log = logging.getLogger(__name__)

KEPT_REFUSALS = 10_000  # the newest are kept; older ones are pruned as new ones come
_PRUNE_EVERY = 100
_CLAIMED_LENGTH = 32  # of the unverified region and address kept, in characters


class FederationRefusal(Exception):
    """A partner's message the inbox does not take; `kind` is the reason recorded."""

    kind: ClassVar[str]
    status: ClassVar[int]
    title: ClassVar[str]


class HeadersInvalid(FederationRefusal):
    kind, status, title = "headers-invalid", 400, "Federation headers missing or malformed"


class PartnerUnknown(FederationRefusal):
    kind, status, title = "partner-unknown", 403, "Not a partner city of this deployment"


class MessageStale(FederationRefusal):
    kind, status, title = "message-stale", 401, "Message signed too long ago (or ahead)"


class KeyUnknown(FederationRefusal):
    kind, status, title = "key-unknown", 401, "Signing key not valid for this partner"


class SignatureInvalid(FederationRefusal):
    kind, status, title = "signature-invalid", 401, "Signature does not match the message"


class MessageInvalid(FederationRefusal):
    kind, status, title = "message-invalid", 400, "Message body is not a valid envelope"


class KindUnknown(FederationRefusal):
    kind, status, title = "kind-unknown", 422, "No handler for this kind of message"


class SequenceConflict(FederationRefusal):
    kind, status, title = "sequence-conflict", 409, "Another message already holds this handoff's seq"


class MessageConflict(FederationRefusal):
    kind, status, title = "message-conflict", 409, "Message id already used for a different message"


class MaterialNotServed(FederationRefusal):
    """One answer for every file we do not give this partner, so none tells whether a file exists."""

    kind, status, title = "material-not-found", 404, "No such material in a handoff to this partner"


REFUSALS: tuple[type[FederationRefusal], ...] = (
    HeadersInvalid, PartnerUnknown, MessageStale, KeyUnknown, SignatureInvalid,
    MessageInvalid, KindUnknown, SequenceConflict, MessageConflict, MaterialNotServed,
)  # fmt: skip

# verify()'s SignatureError kinds, as refusals.
BY_SIGNATURE_ERROR: dict[str, type[FederationRefusal]] = {
    "malformed": HeadersInvalid,
    "stale": MessageStale,
    "unknown-key": KeyUnknown,
    "bad-signature": SignatureInvalid,
}


def register_federation_problems(problems: ProblemMap) -> ProblemMap:
    for refusal in REFUSALS:
        problems.register(refusal, refusal.status, f"federation-{refusal.kind}", refusal.title)
    return problems


@dataclass(frozen=True, slots=True)
class Refused:
    """One refusal as recorded."""

    at: datetime
    region: str | None
    message_id: uuid.UUID | None
    kind: str
    detail: str
    remote: str | None


async def record_refusal(pool: asyncpg.Pool, refused: Refused) -> None:
    """Record and log it; a database that fails here leaves the log line as the only trace."""
    log.warning(
        "federation: refused a message from %s (id %s, from %s): %s: %s",
        refused.region, refused.message_id, refused.remote, refused.kind, refused.detail,
    )  # fmt: skip
    try:
        async with pool.acquire() as conn, conn.transaction():
            id_ = await conn.fetchval(
                "INSERT INTO federation_refusals (at, region, message_id, kind, detail, remote) "
                "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                refused.at,
                _clip(refused.region),
                refused.message_id,
                refused.kind,
                refused.detail[:500],
                _clip(refused.remote),
            )
            if id_ % _PRUNE_EVERY == 0:
                await conn.execute("DELETE FROM federation_refusals WHERE id <= $1", id_ - KEPT_REFUSALS)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.error("federation: the refusal above was not recorded: %s", exc)


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:_CLAIMED_LENGTH]
