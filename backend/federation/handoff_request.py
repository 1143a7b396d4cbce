"""The application a receiving city (收件地) sends with a handoff: `handoff.requested`, built from the case.

The applicant and the agent travel in the clear: our window checked who they are, and
the handling city needs them to decide (cities exchange what they verified; the
message is signed and goes over TLS to a registered partner only). Materials travel as
the sha256 of the files uploaded here.
"""

from __future__ import annotations

from typing import cast
from uuid import UUID

from backend.federation.kinds import (
    ENCODER,
    HandoffRequested,
    Material,
    Mode,
    Party,
    PayloadError,
    decode_payload,
)
from domain.case import Agent, Applicant, Case, Enterprise, UploadedFile
from domain.personal import plain

REQUESTED = "handoff.requested"


def handoff_requested(case: Case, handoff_id: UUID | None = None) -> HandoffRequested:
    """The case as it stood when handed off; PayloadError for what a handoff cannot carry.

    `handoff_id` names a 多地联办 part; without it, the case's one handoff.
    """
    handoff = next((p for p in case.joint if p.handoff == handoff_id), None) or case.handoff
    terms = case.acceptance
    if handoff is None or (terms is None and handoff.mode != "full_online"):
        raise PayloadError(f"case {case.number} was not accepted and handed off")
    if refs := sorted(m for m, source in case.materials.items() if not isinstance(source, UploadedFile)):
        # The payload names files by hash; an e-licence reference has no file to name.
        raise PayloadError(f"materials {', '.join(refs)} are e-licence references: a handoff carries files")
    return HandoffRequested(
        mode=cast(Mode, handoff.mode),
        item_code=case.item_code,
        origin_case_id=case.id,
        origin_number=case.number,
        accepted_at=terms.accepted_at if terms is not None else None,
        applicant=party(case.applicant),
        agent=party(case.agent) if case.agent is not None else None,
        form=dict(case.form),
        materials=[
            Material(material_id=m, sha256=source.sha256)
            for m, source in sorted(case.materials.items())
            if isinstance(source, UploadedFile)
        ],
    )


def party(who: Applicant | Agent) -> Party:
    """A party in the clear; an enterprise's name and 统一社会信用代码 are public anyway."""
    name = who.name if isinstance(who, Enterprise) else plain(who.name)
    return Party(
        kind="enterprise" if isinstance(who, Enterprise) else "person",
        name=name,
        id_type=str(who.id_type),
        id_number=plain(who.identity),
        phone=plain(who.phone),
        address=None if isinstance(who, Agent) else plain(who.address),
    )


def encoded(payload: HandoffRequested) -> bytes:
    """The payload's JSON, checked as the partner's inbox will check it (PayloadError if it would refuse)."""
    body = ENCODER.encode(payload)
    decode_payload(REQUESTED, body)
    return body
