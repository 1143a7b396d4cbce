"""The message kinds of a 通办 handoff, and the payload each carries.

A handoff runs between the receiving city (收件地, where the applicant came to a window
or applied online) and the handling city (办理地, whose item it is and which decides):

    收件地 → 办理地   handoff.requested   the application: item, applicant, materials, the origin case
    办理地 → 收件地   handoff.accepted    taken on, under the handling city's own case number
    办理地 → 收件地   handoff.refused     not taken on (an item it does not take this way, say)
    办理地 → 收件地   status.reported     one step of the handling city's case, in its words
    办理地 → 收件地   decision.reported   办结: approved or denied, with the reason

The inbox decodes each payload against its kind before storing it, so a message the
applier could never apply is refused at once, with a clear error, instead of blocking
its handoff.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
Code = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z._-]{1,64}$")]
Mode = Literal["full_online", "remote_collect", "multi_city"]
Sha256 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class Payload(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel", frozen=True):
    """camelCase on the wire, as the rest of the API."""


class Party(Payload, frozen=True):
    """The applicant or agent in the clear: cities exchange what their windows verified."""

    kind: Literal["person", "enterprise"]
    name: Text
    id_type: Code
    id_number: Text
    phone: Text
    address: Text | None = None


class Material(Payload, frozen=True):
    material_id: Code
    sha256: Sha256


class HandoffRequested(Payload, frozen=True):
    mode: Mode
    item_code: Code
    origin_case_id: UUID
    origin_number: Text
    accepted_at: datetime  # when the receiving window accepted the materials and checked identity
    applicant: Party
    agent: Party | None = None
    form: dict[str, Any] = {}
    materials: list[Material] = []


class HandoffAccepted(Payload, frozen=True):
    case_number: Text  # the handling city's own 办件编号


class HandoffRefused(Payload, frozen=True):
    reason: Text


class StatusReported(Payload, frozen=True):
    step: Code  # the handling city's integration event type, e.g. task.approved
    label: Text  # what the applicant reads
    occurred_at: datetime
    internal: bool = False  # a staff-only step: counted in the sequence, not shown to the applicant


class DecisionReported(Payload, frozen=True):
    result: Literal["approved", "denied"]
    reason: Text | None = None


KINDS: dict[str, type[Payload]] = {
    "handoff.requested": HandoffRequested,
    "handoff.accepted": HandoffAccepted,
    "handoff.refused": HandoffRefused,
    "status.reported": StatusReported,
    "decision.reported": DecisionReported,
}

_DECODERS = {kind: msgspec.json.Decoder(cls) for kind, cls in KINDS.items()}
ENCODER = msgspec.json.Encoder()


class PayloadError(ValueError):
    """A payload that does not fit its kind; the message says which field."""


def decode_payload(kind: str, payload: bytes) -> Payload:
    """The payload as its kind's Struct; PayloadError if it does not fit, KeyError for an unknown kind."""
    try:
        return _DECODERS[kind].decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise PayloadError(f"the payload of a {kind} message does not fit: {exc}") from None
