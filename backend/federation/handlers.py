"""What the applier hands each kind's handler, and the handlers' registry.

A handler carries out one partner message: typically a command on an aggregate with
the message id as its request id, so running it again after a crash (between the
handler returning and the message being marked applied) changes nothing. Handlers
are registered by kind; the inbox endpoint refuses kinds nobody handles.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg

DEV_NOTED = "dev.noted"  # dev deployments only: see dev_noted_handler


@dataclass(frozen=True, slots=True)
class AppliedMessage:
    """A partner's message, its turn come: all earlier messages of its handoff are applied."""

    partner: str  # the sender's region, as verified
    message_id: uuid.UUID
    handoff: uuid.UUID
    seq: int
    kind: str
    payload: bytes  # the kind's own fields (JSON), for the handler to decode
    sent_at: datetime
    received_at: datetime


Handler = Callable[[AppliedMessage], Awaitable[None]]
Handlers = Mapping[str, Handler]


def dev_noted_handler(pool: Callable[[], asyncpg.Pool]) -> Handler:
    """`dev.noted`: a row in federation_dev_notes per message, in the order applied, once each.

    For rehearsing federation between two dev deployments (and its tests): it shows
    what was applied and in which order, with nothing else to set up.
    """

    async def note(message: AppliedMessage) -> None:
        await pool().execute(
            "INSERT INTO federation_dev_notes (partner, message_id, handoff, seq, payload, applied_at) "
            "VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (partner, message_id) DO NOTHING",
            message.partner,
            message.message_id,
            message.handoff,
            message.seq,
            message.payload,
        )

    return note
