"""办理地: what the receiving city tells of a handoff after the application, carried out on our case.

    handoff.withdrawn   the applicant withdrew (撤回) there: withdraw our case, as the partner
    materials.posted    the paper originals are on their way to our archive (waybill)
    materials.supplemented  the applicant's 补正 for our 一次性告知: supplement our case, as the partner

Each runs as the partner city (role `partner`, channel `partner_city`) on the case the
handoff opened here (handling_rules.handled_case_id), with the message id as the
request id, so applying a message again records nothing more. A handoff we refused
opened no case, and a withdrawal that crossed our decision on the way finds the case
concluded: both change nothing, and say so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from backend.federation.handlers import AppliedMessage, Handler
from backend.federation.handling_rules import handled_case_id
from backend.federation.kinds import HandoffWithdrawn, MaterialsPosted, SupplementSent, decode_payload
from backend.federation.material_files import MissingFiles
from backend.store.aggregates import AggregateStore
from domain.case import Actor, Case, Channel, MaterialSource, Role, UploadedFile
from domain.case.status import OPEN

log = logging.getLogger(__name__)

Command = Callable[[Case, Actor, datetime, str], None]  # the case, the partner, when, the request id


def follow_up_handlers(
    aggregates: Callable[[], AggregateStore],
    clock: Callable[[], datetime],
    *,
    files: MissingFiles | None = None,
) -> dict[str, Handler]:
    """The handlers of the receiving city's follow-up messages, by kind.

    `files` fetches a supplement's files from the receiving city first (material_files.py);
    without it the case references them by sha256 only.
    """

    async def carry_out(message: AppliedMessage, command: Command, *, while_open: bool) -> None:
        case_id = handled_case_id(message.partner, message.handoff)
        store = aggregates()
        if not await store.recorder.select_events(case_id, limit=1):
            log.info("通办: %s for handoff %s, which opened no case here", message.kind, message.handoff)
            return
        actor, at, request_id = Actor(id=message.partner, role=Role.PARTNER), clock(), str(message.message_id)

        def act(case: Case) -> None:
            if request_id in case.processed_requests:
                return
            if while_open and case.status not in OPEN:
                log.info("通办: %s for case %s, which is %s already", message.kind, case.number, case.status)
                return
            command(case, actor, at, request_id)

        await store.execute(case_id, act)

    async def withdrawn(message: AppliedMessage) -> None:
        payload = decode_payload(message.kind, message.payload)
        assert isinstance(payload, HandoffWithdrawn)  # the inbox checked it fits its kind
        reason = payload.reason or "收件地申请人撤回"
        await carry_out(message, lambda c, a, at, r: c.withdraw(
            a, Channel.PARTNER_CITY, at, reason=reason, request_id=r), while_open=True)  # fmt: skip

    async def posted(message: AppliedMessage) -> None:
        payload = decode_payload(message.kind, message.payload)
        assert isinstance(payload, MaterialsPosted)
        await carry_out(message, lambda c, a, at, r: c.record_paper_posted(
            a, Channel.PARTNER_CITY, at, waybill_number=payload.waybill_number, carrier=payload.carrier,
            request_id=r), while_open=False)  # fmt: skip

    async def supplemented(message: AppliedMessage) -> None:
        payload = decode_payload(message.kind, message.payload)
        assert isinstance(payload, SupplementSent)
        given: dict[str, MaterialSource] = {m.material_id: UploadedFile(m.sha256) for m in payload.materials}
        if files is not None:  # raises while the receiving city cannot serve them: the applier retries
            await files.fetch_missing(message.partner, message.handoff, [m.sha256 for m in payload.materials])

        def supplement(case: Case, actor: Actor, at: datetime, request_id: str) -> None:
            if not (set(case.requested) | case.missing_minor):
                log.info("通办: a supplement for case %s, which owes nothing now", case.number)
                return  # nothing asked (a 容缺 owed at the receiving city, say): kept there
            case.supplement_materials(actor, Channel.PARTNER_CITY, at, materials=given, request_id=request_id)

        await carry_out(message, supplement, while_open=True)

    return {
        "handoff.withdrawn": withdrawn,
        "materials.posted": posted,
        "materials.supplemented": supplemented,
    }
