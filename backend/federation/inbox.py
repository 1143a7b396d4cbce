"""The inbox: takes a partner city's signed message, once, for the applier; refuses and records the rest.

In order, a message must: carry well-formed signing headers; come from a region we
have as a partner; be signed within the freshness window, by one of that partner's
keys, over exactly this method, path, body and message id; hold a valid envelope; be
of a kind we have a handler for. Then it is stored by (sender, message id): a repeat
is answered as a duplicate and stored nothing, a different message under a known id
or a known (handoff, seq) is a conflict. A replay of an old message fails the
freshness check before its id is even looked at.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import datetime

import asyncpg
import msgspec

from backend.federation.directory import PartnerDirectory
from backend.federation.kinds import KINDS, PayloadError, decode_payload
from backend.federation.messages import ENVELOPE, Envelope
from backend.federation.refusals import (
    FederationRefusal,
    KindUnknown,
    MessageConflict,
    MessageInvalid,
    SequenceConflict,
)
from backend.federation.signed_requests import authenticate, record_refused

INBOX_CHANNEL_SUFFIX = "_federation_in"  # NOTIFY on `<schema>_federation_in` wakes the applier

_INSERT = """
INSERT INTO federation_inbox (partner, message_id, handoff, seq, kind, body, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
RETURNING message_id
"""


def decode_envelope(body: bytes) -> Envelope:
    """The envelope of a message body; MessageInvalid says what is wrong with it."""
    try:
        return ENVELOPE.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError is one
        raise MessageInvalid(str(exc)) from None


class Inbox:
    """The adapter behind miniapp_api.federation_routes.FederationInbox."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        directory: PartnerDirectory,
        kinds: Collection[str],  # those the applier has a handler for
        *,
        freshness_seconds: int,
        clock: Callable[[], datetime],
        wall_clock: Callable[[], float] = time.time,  # signatures carry real Unix time, whatever `clock` says
    ) -> None:
        self._pool, self._directory, self._kinds = pool, directory, frozenset(kinds)
        self._freshness, self._clock, self._wall = freshness_seconds, clock, wall_clock

    async def receive(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, remote: str | None
    ) -> bool:
        """Take the message: True if stored now, False if it was here already. Refusals raise."""
        try:
            return await self._take(method, path, headers, body)
        except FederationRefusal as refusal:
            await record_refused(self._pool(), self._clock(), headers, refusal, remote)
            raise

    async def _take(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> bool:
        signed = await authenticate(
            self._directory, method, path, headers, body, now=int(self._wall()), freshness=self._freshness
        )
        envelope = decode_envelope(body)
        if envelope.kind not in self._kinds:
            raise KindUnknown(f"no handler for messages of kind {envelope.kind!r}")
        if envelope.kind in KINDS:  # a payload its handler could never apply would block its handoff
            try:
                decode_payload(envelope.kind, bytes(envelope.payload))
            except PayloadError as exc:
                raise MessageInvalid(str(exc)) from None
        return await self._store(signed.region, uuid.UUID(signed.message_id), envelope, body)

    async def _store(self, partner: str, message_id: uuid.UUID, envelope: Envelope, body: bytes) -> bool:
        async with self._pool().acquire() as conn, conn.transaction():
            added = await conn.fetchval(
                _INSERT,
                partner,
                message_id,
                envelope.handoff,
                envelope.seq,
                envelope.kind,
                body,
                self._clock(),
            )
            if added is not None:
                await conn.execute("SELECT pg_notify(current_schema() || $1, '')", INBOX_CHANNEL_SUFFIX)
                return True
            held = await conn.fetchrow(
                "SELECT handoff, seq, body FROM federation_inbox WHERE partner = $1 AND message_id = $2",
                partner,
                message_id,
            )
        if held is None:
            raise SequenceConflict(
                f"message #{envelope.seq} of handoff {envelope.handoff} from {partner} "
                "already came under another message id"
            )
        if bytes(held["body"]) != body:
            raise MessageConflict(f"message id {message_id} already came with a different body")
        return False
