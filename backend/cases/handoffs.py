"""转办理地: the window hands an accepted case to the partner city that decides it (跨城通办).

The partner must be registered and take the case's item in that mode; the case must be
accepted here (the case decides that). What goes out is checked as the partner's inbox
will check it before anything is recorded, so the consumer that sends it
(backend/federation/receiving.py) never meets a case it cannot send.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

from backend.cases.access import Identity
from backend.cases.core import CaseOutcome, CaseServiceBase
from backend.cases.partner_items import check_taken
from backend.federation.handoff_request import encoded, handoff_requested
from backend.federation.kinds import PayloadError
from domain.case import Actor, Case, CaseStatus, Channel, InvalidCommandError, Role

# Never change it: the ids of handoffs already sent were derived under it.
HANDOFF_NAMESPACE = UUID("0c8e2f4a-6b1d-5a3e-9f70-430100000070")


def handoff_id(region: str, case_id: UUID, version: int) -> UUID:
    """The id of a hand-off, from the case's version when it was handed off.

    A case is handed off at most once per version, and a refusal moves the version on,
    so a hand-off after a refusal has an id of its own; a retried command, reloaded at
    the same version, derives the same one.
    """
    return uuid5(HANDOFF_NAMESPACE, f"{region}/{case_id}/{version}")


# 全程网办: the application goes to the handling city as soon as it is submitted, by no one at a window.
ONLINE_HANDOFF = Actor(id="system:通办", role=Role.SYSTEM, name="全程网办转办理地")


def joint_handoff_id(region: str, case_id: UUID, version: int, partner: str) -> UUID:
    """多地联办: each city's part has its own id, however many are handed off at once."""
    return uuid5(HANDOFF_NAMESPACE, f"{region}/{case_id}/{version}/{partner}")


@dataclass(frozen=True, slots=True)
class HandoffOutcome:
    case_id: UUID
    number: str
    status: CaseStatus
    version: int
    handoff: UUID  # the (first) part's
    partner: str
    parts: tuple[tuple[str, UUID], ...] = ()  # (partner, handoff) of each part handed off, in order


class CaseHandoffs(CaseServiceBase):
    async def hand_off(
        self, caller: Identity, case_id: UUID, *, partner: str, mode: str, request_id: str | None = None
    ) -> HandoffOutcome:
        """转办理地 (异地代收代办): the partner city decides; its reports come back as the case's events."""
        registered = await self.partners.find(partner) if self.partners is not None else None

        def hand_off(case: Case, actor: Actor, channel: Channel, at: datetime) -> None:
            check_taken(registered, partner, case.item_code, mode)
            handoff = handoff_id(self.region, case.id, case.version)
            case.hand_off(
                actor, channel, at, partner=partner, mode=mode, handoff=handoff, request_id=request_id
            )
            _check_sendable(case)

        case = await self.run(caller, case_id, hand_off)
        sent = case.partner_handoff(partner) if mode == "multi_city" else case.handoff
        assert sent is not None  # handed off, or a replay of the request that handed it off
        return _outcome(case, ((sent.partner, sent.handoff),))

    async def hand_off_jointly(
        self, caller: Identity, case_id: UUID, *, partners: Sequence[str], request_id: str | None = None
    ) -> HandoffOutcome:
        """多地联办: one acceptance here; each partner city decides its part; the case concludes with all."""
        registered = {p: await self.partners.find(p) if self.partners is not None else None for p in partners}

        def hand_off(case: Case, actor: Actor, channel: Channel, at: datetime) -> None:
            if request_id is not None and request_id in case.processed_requests:
                return  # a retry of the request that handed them off
            for partner in partners:
                check_taken(registered[partner], partner, case.item_code, "multi_city")
            parts = [(p, joint_handoff_id(self.region, case.id, case.version, p)) for p in partners]
            case.hand_off_jointly(actor, channel, at, parts=parts, request_id=request_id)
            for _, handoff in parts:
                _check_sendable(case, handoff)

        case = await self.run(caller, case_id, hand_off)
        # Each city's latest part, whatever became of it since (a retry answers as the first time did).
        latest = {part.partner: part for part in case.joint}
        return _outcome(case, tuple((p, latest[p].handoff) for p in partners if p in latest))

    async def post_paper_materials(
        self, caller: Identity, case_id: UUID, *, waybill_number: str, carrier: str = "EMS",
        request_id: str | None = None,
    ) -> CaseOutcome:  # fmt: skip
        """收件地: the paper originals go to the handling city's archive; it is told the waybill."""
        return await self.act(caller, case_id, lambda c, a, ch, at: c.post_paper_materials(
            a, ch, at, waybill_number=waybill_number, carrier=carrier, request_id=request_id))  # fmt: skip

    async def archive_paper_materials(
        self, caller: Identity, case_id: UUID, *, request_id: str | None = None
    ) -> CaseOutcome:
        """办理地: the paper originals arrived and are archived; the receiving city is told."""
        return await self.act(
            caller, case_id, lambda c, a, ch, at: c.archive_paper_materials(a, ch, at, request_id=request_id)
        )

    def hand_off_online(self, case: Case, partner: str, at: datetime) -> None:
        """全程网办: hand a just-submitted case to the partner city that serves it online."""
        handoff = handoff_id(self.region, case.id, case.version)
        case.hand_off(
            ONLINE_HANDOFF, Channel.SYSTEM, at, partner=partner, mode="full_online", handoff=handoff
        )
        _check_sendable(case)


def _outcome(case: Case, parts: tuple[tuple[str, UUID], ...]) -> HandoffOutcome:
    partner, handoff = parts[0]
    return HandoffOutcome(
        case_id=case.id, number=case.number, status=case.status, version=case.version, handoff=handoff,
        partner=partner, parts=parts,
    )  # fmt: skip


def _check_sendable(case: Case, handoff: UUID | None = None) -> None:
    """Refuse, before anything is recorded, a case the partner's inbox would refuse."""
    try:
        encoded(handoff_requested(case, handoff))
    except PayloadError as exc:
        raise InvalidCommandError(f"the case cannot be handed off as it is: {exc}") from None
