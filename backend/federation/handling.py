"""办理地: a partner city's `handoff.requested` opens a case here, or is refused with a reason.

The case is submitted by the partner city itself (role partner, channel partner_city)
and records where it came from in the same append, so it exists linked or not at all.
Its id is derived from the handoff, so applying the request again (the applier does,
after a crash between the handler and the mark) finds the case and does nothing.

Before a case is opened, its material files are fetched from the receiving city
(material_files.py), so a clerk here can open every one. A fetch that fails raises:
the handoff is not refused, the applier tries the message again later.

Taking the case on is not answered here: TongbanReports (reports.py) sends
`handoff.accepted` from the ReceivedFromPartner event, so it and every later report
are numbered from the case's own versions. A refusal is the handoff's message 1
instead, sent from here; once sent, no case follows it, whatever the catalogue says later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg
import msgspec

from backend.cases.numbers import next_case_number
from backend.cases.terms import Catalogue
from backend.federation import handling_rules as rules
from backend.federation.handlers import AppliedMessage
from backend.federation.handling_rules import HandoffNotTaken
from backend.federation.kinds import ENCODER, HandoffRefused, HandoffRequested, decode_payload
from backend.federation.material_files import MissingFiles
from backend.federation.messages import Envelope
from backend.federation.outbox import enqueue, message_id_for
from backend.store.aggregates import AggregateStore
from backend.store.errors import ConcurrencyError
from domain.case import DEFAULT_PATTERN, Actor, Case, CaseError, Channel, Role
from domain.case.checks import BEIJING

log = logging.getLogger(__name__)

HANDOFF_REQUESTED = "handoff.requested"
HANDOFF_REFUSED = "handoff.refused"
REASON_LIMIT = 2000  # kinds.Text


class Named(Protocol):
    @property
    def name(self) -> str: ...


class PartnerNames(Protocol):
    """projections.partners.PartnerQueries is the real one: the registry names each partner city."""

    async def find(self, region: str) -> Named | None: ...


class HandoffRequests:
    """The `handoff.requested` handler (a handlers.Handler by shape)."""

    def __init__(
        self,
        aggregates: Callable[[], AggregateStore],
        pool: Callable[[], asyncpg.Pool],
        catalogue: Catalogue,
        partners: PartnerNames,
        *,
        region: str,
        clock: Callable[[], datetime],
        number_pattern: str = DEFAULT_PATTERN,
        files: MissingFiles | None = None,  # None: the material files are not fetched
    ) -> None:
        self._aggregates, self._pool, self.catalogue, self.partners = aggregates, pool, catalogue, partners
        self.region, self.clock, self.number_pattern, self.files = region, clock, number_pattern, files

    async def __call__(self, message: AppliedMessage) -> None:
        request = decode_payload(HANDOFF_REQUESTED, message.payload)  # the inbox checked it fits
        assert isinstance(request, HandoffRequested)
        case_id = rules.handled_case_id(message.partner, message.handoff)
        if await self._opened(case_id) or await self._answered(message):
            return  # applied before
        try:
            case = await self._open(message, request, case_id)
        except HandoffNotTaken as refusal:
            await self._refuse(message, str(refusal))
            return
        try:
            await self._aggregates().save(case)
        except ConcurrencyError:  # a run of the same message won: its case is this handoff's
            return
        log.info("通办: handoff %s from %s opened case %s", message.handoff, message.partner, case.number)

    async def _open(self, message: AppliedMessage, request: HandoffRequested, case_id: UUID) -> Case:
        code = request.item_code
        guide = await self.catalogue.service(code)
        is_bundle = guide is None and await self.catalogue.bundle(code) is not None
        served = rules.served_item(code, request.mode, guide, is_bundle=is_bundle)
        applicant, agent = rules.parties(request.applicant, request.agent)
        materials = rules.materials(request.materials)
        if self.files is not None:  # the rules take it on: its files now, before a retry could skip a number
            files = [m.sha256 for m in request.materials]
            await self.files.fetch_missing(message.partner, message.handoff, files)
        found = await self.partners.find(message.partner)
        named = (p.city for p in served.spec.tongban if p.region == message.partner)
        city = found.name if found else next(named, None)
        actor = Actor(id=message.partner, role=Role.PARTNER, name=city)
        at = self.clock()
        day = at.astimezone(BEIJING).date()
        number = await next_case_number(self._pool(), self.region, day, self.number_pattern)
        try:
            case = Case.submit(
                actor, Channel.PARTNER_CITY, at, case_id=case_id, number=number, applicant=applicant,
                item_code=code, catalogue_version=str(served.version), agent=agent,
                form=request.form, materials=materials, request_id=str(message.message_id),
            )  # fmt: skip
            # One append with the submission; the message id already answers for a rerun.
            case.received_from_partner(
                actor, Channel.PARTNER_CITY, at, origin_case_id=request.origin_case_id,
                origin_number=request.origin_number, mode=request.mode, handoff=message.handoff,
            )  # fmt: skip
        except CaseError as exc:
            raise HandoffNotTaken(
                f"办理地无法据此立案 / the application cannot be filed here: {exc}"
            ) from None
        return case

    async def _opened(self, case_id: UUID) -> bool:
        return bool(await self._aggregates().recorder.select_events(case_id, limit=1))

    async def _answered(self, message: AppliedMessage) -> bool:
        """Our message 1 of this handoff is out already: only a refusal can be, when no case is."""
        found = await self._pool().fetchval(
            "SELECT 1 FROM federation_outbox WHERE message_id = $1",
            message_id_for(message.partner, message.handoff, 1),
        )
        return found is not None

    async def _refuse(self, message: AppliedMessage, reason: str) -> None:
        refused = HandoffRefused(reason=reason[:REASON_LIMIT])
        envelope = Envelope(
            kind=HANDOFF_REFUSED,
            handoff=message.handoff,
            seq=1,
            sent_at=self.clock(),
            payload=msgspec.Raw(ENCODER.encode(refused)),
        )
        async with self._pool().acquire() as conn, conn.transaction():
            await enqueue(conn, message.partner, envelope)
        log.info("通办: handoff %s from %s refused: %s", message.handoff, message.partner, reason)
