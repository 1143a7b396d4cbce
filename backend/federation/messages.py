"""The envelope of every message between cities; each kind's own fields travel in `payload`.

A handoff (one case handed from one city to another) has one id on both sides, and each
side numbers the messages it sends for that handoff from 1 (`seq`). The receiver applies
a handoff's messages in that order, each once, whatever order they arrive in and however
often. The message id (a header, signed) is the dedupe key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

Kind = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$", max_length=64)]


class Envelope(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    kind: Kind  # e.g. "handoff.requested", "status.reported"
    handoff: UUID
    seq: Annotated[int, msgspec.Meta(ge=1)]
    sent_at: datetime
    payload: msgspec.Raw = msgspec.Raw(b"{}")  # the kind's own fields, decoded by its handler


ENVELOPE = msgspec.json.Decoder(Envelope)
ENCODER = msgspec.json.Encoder()
