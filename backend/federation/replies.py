"""收件地: what the handling city reports of a handoff, carried out on our case as the partner's commands.

    handoff.accepted   record_partner_acceptance (its own 办件编号)
    handoff.refused    record_handoff_refusal: the case is back with our window (不予受理
                       there ends a 全程网办 case not accepted here too)
    status.reported    record_partner_progress; a staff-only (`internal`) step changes nothing
    decision.reported  record_partner_decision: 办结 here as there
    result.delivered   mail_result / issue_e_licence: the handling city sent the result
    materials.archived archive_paper_materials: the paper we posted is in its archive
    materials.requested record_partner_material_request: its 一次性告知; the applicant supplies here

Once the applicant withdrew the case here, what the partner reports of it after (its
own withdrawal, or a step that crossed ours on the way) is applied and changes nothing.

Each runs as the partner (its region as the actor's id, role `partner`, channel
`partner_city`) with the message id as the request id, so a message applied again
after a crash records nothing more. The case is the one the handoff was sent for
(receiving.handed_off_case). A message for a handoff we never sent, or for one the
partner refused before the case was handed off again, raises: the applier shows the
error and tries again later, and nothing is recorded on the case.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

import asyncpg

from backend.federation.handlers import AppliedMessage, Handler
from backend.federation.kinds import (
    DecisionReported,
    HandoffAccepted,
    HandoffRefused,
    MaterialsArchived,
    Payload,
    ResultDelivered,
    StatusReported,
    SupplementRequested,
    decode_payload,
)
from backend.federation.receiving import UnknownHandoffError, handed_off_case
from backend.store.aggregates import AggregateStore
from domain.case import Actor, Case, CaseStatus, Channel, MaterialIssue, ResultCode, Role

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Payload)
Command = Callable[[Case, Actor, datetime, str], None]  # the case, the partner, when, the request id


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class PartnerNames(Protocol):
    """projections.partners.PartnerQueries is the real one: the partner's name, for the histories."""

    async def find(self, region: str) -> _Named | None: ...


def reply_handlers(
    aggregates: Callable[[], AggregateStore],
    pool: Callable[[], asyncpg.Pool],
    partners: PartnerNames,
    clock: Callable[[], datetime],
) -> dict[str, Handler]:
    """The handlers of the handling city's replies, by kind."""

    async def carry_out(message: AppliedMessage, command: Command) -> None:
        case_id = await handed_off_case(pool(), message.partner, message.handoff)
        known = await partners.find(message.partner)
        actor = Actor(id=message.partner, role=Role.PARTNER, name=known.name if known is not None else None)
        at, request_id = clock(), str(message.message_id)

        def act(case: Case) -> None:
            # A message applied already is the case's to ignore (its request id), whatever came since.
            if request_id in case.processed_requests:
                return
            if message.handoff not in case.handoff_ids():
                current = case.handoff.handoff if case.handoff is not None else None
                raise UnknownHandoffError(
                    f"handoff {message.handoff} of case {case.number} is over: the case went on as {current}"
                )
            if case.status is CaseStatus.WITHDRAWN:
                log.info("通办: case %s was withdrawn; %s of %s changes nothing", case.number, message.kind,
                         message.partner)  # fmt: skip
                return
            command(case, actor, at, request_id)

        await aggregates().execute(case_id, act)

    async def accepted(message: AppliedMessage) -> None:
        number = _payload(message, HandoffAccepted).case_number
        await carry_out(message, lambda c, a, at, r: c.record_partner_acceptance(
            a, Channel.PARTNER_CITY, at, partner_number=number, request_id=r))  # fmt: skip

    async def refused(message: AppliedMessage) -> None:
        no = _payload(message, HandoffRefused)
        await carry_out(message, lambda c, a, at, r: c.record_handoff_refusal(
            a, Channel.PARTNER_CITY, at, reason=no.reason, path_forward=no.path_forward,
            request_id=r))  # fmt: skip

    async def status(message: AppliedMessage) -> None:
        step = _payload(message, StatusReported)
        if step.internal:
            # Staff-only at the partner: nothing for the applicant. Applied all the same, so the
            # handoff's next message follows on; the handoff must still be ours.
            await handed_off_case(pool(), message.partner, message.handoff)
            return
        await carry_out(message, lambda c, a, at, r: c.record_partner_progress(
            a, Channel.PARTNER_CITY, at, step=step.step, label=step.label, request_id=r))  # fmt: skip

    async def decision(message: AppliedMessage) -> None:
        decided = _payload(message, DecisionReported)
        result = ResultCode(decided.result)
        await carry_out(message, lambda c, a, at, r: c.record_partner_decision(
            a, Channel.PARTNER_CITY, at, result=result, reason=decided.reason, request_id=r))  # fmt: skip

    async def delivered(message: AppliedMessage) -> None:
        sent = _payload(message, ResultDelivered)
        if sent.method == "mail":
            await carry_out(message, lambda c, a, at, r: c.mail_result(
                a, Channel.PARTNER_CITY, at, waybill_number=sent.reference, carrier=sent.carrier or "EMS",
                request_id=r))  # fmt: skip
        else:
            await carry_out(message, lambda c, a, at, r: c.issue_e_licence(
                a, Channel.PARTNER_CITY, at, licence_number=sent.reference, request_id=r))  # fmt: skip

    async def requested(message: AppliedMessage) -> None:
        asked = _payload(message, SupplementRequested)
        issues = [MaterialIssue(material_id=i.material_id, reason=i.reason) for i in asked.issues]
        await carry_out(message, lambda c, a, at, r: c.record_partner_material_request(
            a, Channel.PARTNER_CITY, at, issues=issues, request_id=r))  # fmt: skip

    async def archived(message: AppliedMessage) -> None:
        _payload(message, MaterialsArchived)
        await carry_out(message, lambda c, a, at, r: c.archive_paper_materials(
            a, Channel.PARTNER_CITY, at, request_id=r))  # fmt: skip

    return {
        "handoff.accepted": accepted,
        "result.delivered": delivered,
        "materials.archived": archived,
        "materials.requested": requested,
        "handoff.refused": refused,
        "status.reported": status,
        "decision.reported": decision,
    }


def _payload(message: AppliedMessage, kind: type[P]) -> P:
    """The payload as its kind's Struct (the inbox checked it on arrival)."""
    payload = decode_payload(message.kind, message.payload)
    if not isinstance(payload, kind):
        raise TypeError(f"a {message.kind} message is not a {kind.__name__}")
    return payload
