"""The message kinds of a 通办 handoff, and the payload each carries.

A handoff runs between the receiving city (收件地, where the applicant came to a window
or applied online) and the handling city (办理地, whose item it is and which decides):

    收件地 → 办理地   handoff.requested   the application: item, applicant, materials, the origin case
    收件地 → 办理地   handoff.withdrawn   the applicant withdrew (撤回) here
    收件地 → 办理地   materials.posted    the paper originals are on their way to the archive (waybill)
    收件地 → 办理地   materials.supplemented  the applicant's 补正 as files (sha256), for its notice
    办理地 → 收件地   handoff.accepted    taken on, under the handling city's own case number
    办理地 → 收件地   handoff.refused     not taken on (an item it does not take this way, say), or
                                        不予受理 by its window, with the path forward
    办理地 → 收件地   status.reported     one step of the handling city's case, in its words
    办理地 → 收件地   materials.requested its window's 一次性告知: each material, with the reason
    办理地 → 收件地   decision.reported   办结: approved or denied, with the reason
    办理地 → 收件地   result.delivered    the result mailed (waybill) or issued as an 电子证照
    办理地 → 收件地   materials.archived  the paper originals arrived and are archived

Each side numbers its own messages of a handoff from 1; the receiver applies each
sender's messages of a handoff in that order.

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
    applicant: Party
    agent: Party | None = None
    form: dict[str, Any] = {}
    materials: list[Material] = []
    # When the receiving window accepted the materials and checked identity; none for 全程网办,
    # which the handling city accepts itself.
    accepted_at: datetime | None = None


class HandoffAccepted(Payload, frozen=True):
    case_number: Text  # the handling city's own 办件编号


class HandoffRefused(Payload, frozen=True):
    reason: Text
    path_forward: Text | None = None  # 不予受理 by the handling city's window: where the applicant can go


class HandoffWithdrawn(Payload, frozen=True):
    reason: Text | None = None


class MaterialsPosted(Payload, frozen=True):
    waybill_number: Text
    carrier: Text


class Issue(Payload, frozen=True):
    material_id: Code
    reason: Text


class SupplementRequested(Payload, frozen=True):
    issues: Annotated[list[Issue], msgspec.Meta(min_length=1)]
    occurred_at: datetime


class SupplementSent(Payload, frozen=True):
    materials: Annotated[list[Material], msgspec.Meta(min_length=1)]
    attempt: int


class MaterialsArchived(Payload, frozen=True):
    archived_at: datetime


class ResultDelivered(Payload, frozen=True):
    method: Literal["mail", "e_licence"]
    reference: Text  # the waybill or the licence number
    delivered_at: datetime
    carrier: Text | None = None  # mail only


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
    "handoff.withdrawn": HandoffWithdrawn,
    "materials.posted": MaterialsPosted,
    "materials.archived": MaterialsArchived,
    "result.delivered": ResultDelivered,
    "materials.requested": SupplementRequested,
    "materials.supplemented": SupplementSent,
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
