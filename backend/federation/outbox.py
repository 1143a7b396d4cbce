"""Putting a message to a partner city in the outbox, inside the caller's own transaction.

Whatever decides to send (a consumer handling a batch, a service carrying out a
command) calls `enqueue` on the connection of the transaction that records that
decision, so the message exists exactly when the decision does. The relay
(relay.py) delivers it afterwards, at least once.

The message id is derived from (partner, handoff, seq) unless given: a consumer
that redoes a batch enqueues the same ids again, and those are dropped.
"""

from __future__ import annotations

import uuid

import asyncpg

from backend.consumers.leadership import advisory_key
from backend.federation.messages import ENCODER, Envelope

# Never change it: ids already sent were derived under it.
MESSAGE_NAMESPACE = uuid.UUID("6f1d5c0e-3b7a-5e0c-9a41-c1790a5e7a11")
OUTBOX_CHANNEL_SUFFIX = "_federation_out"  # NOTIFY on `<schema>_federation_out` wakes the relay

_INSERT = """
INSERT INTO federation_outbox (message_id, partner, handoff, seq, kind, body, created_at)
VALUES ($1, $2, $3, $4, $5, $6, now())
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id
"""


def message_id_for(partner: str, handoff: uuid.UUID, seq: int) -> uuid.UUID:
    """The id of our seq-th message of a handoff to a partner: the same every time it is asked."""
    return uuid.uuid5(MESSAGE_NAMESPACE, f"{partner}/{handoff}/{seq}")


async def enqueue(
    conn: asyncpg.Connection, partner: str, envelope: Envelope, *, message_id: uuid.UUID | None = None
) -> uuid.UUID:
    """Put the message in the outbox (once: a repeat of its id is dropped); return its id.

    Another message already holding the same (partner, handoff, seq) is a bug of the
    caller's, refused by the database (asyncpg.UniqueViolationError).
    """
    message_id = message_id or message_id_for(partner, envelope.handoff, envelope.seq)
    body = ENCODER.encode(envelope)
    added = await conn.fetchval(
        _INSERT, message_id, partner, envelope.handoff, envelope.seq, envelope.kind, body
    )
    if added is not None:  # delivered on commit, and only then
        await conn.execute("SELECT pg_notify(current_schema() || $1, '')", OUTBOX_CHANNEL_SUFFIX)
    return message_id


async def next_seq(conn: asyncpg.Connection, partner: str, handoff: uuid.UUID) -> int:
    """The seq the next message of this handoff to this partner takes.

    Takes a transaction lock on the handoff, so concurrent senders of the same handoff
    take turns; call it inside the transaction that enqueues.
    """
    schema = await conn.fetchval("SELECT current_schema()")
    key = advisory_key(schema, f"{partner}/{handoff}", "federation-seq")
    await conn.execute("SELECT pg_advisory_xact_lock($1)", key)
    seq: int = await conn.fetchval(
        "SELECT coalesce(max(seq), 0) + 1 FROM federation_outbox WHERE partner = $1 AND handoff = $2",
        partner,
        handoff,
    )
    return seq
