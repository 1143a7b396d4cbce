"""Integration events: every case event has one, their shapes stay as published, and masking holds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import msgspec
import pytest

from domain.case import Case
from projections.case_facts import CASE_EVENTS
from projections.integration_events import DECODER, ENCODER, CaseRef, Envelope, IntegrationEvent, type_names
from projections.integration_mapping import PUBLISHED_EVENTS, event_id, publish, task_department
from tests.unit.case_builders import CITIZEN, STATES, STEP, SYS
from tests.unit.case_builders import officer as officer_of

# The published contract of schema version 1: each type and the fields its data adds. A change
# here breaks every department's integration; ship a version 2 beside it instead.
VERSION_1 = {
    "case.submitted": ("applicant", "agent", "catalogueVersion", "children", "materials"),
    "case.pre_review_passed": (),
    "case.materials_requested": ("issues",),
    "case.acceptance_refused": ("reason", "pathForward"),
    "case.materials_supplemented": ("materials", "attempt", "outstanding"),
    "case.accepted": ("acceptance", "missing"),
    "case.routed": ("assignments",),
    "task.claimed": ("department", "step"),
    "task.step_approved": ("department", "step", "opinion"),
    "task.approved": ("department", "step", "opinion"),
    "task.rejected": ("department", "step", "reason"),
    "task.returned": ("department", "step", "to", "reason"),
    "case.suspended": ("kind", "reason", "expectedEnd", "issues"),
    "case.resumed": (),
    "case.extension_requested": ("kind", "reason"),
    "case.extension_approved": ("kind",),
    "case.extension_refused": ("reason",),
    "case.concluded": ("result", "reason", "forwardedTo"),
    "case.approval_revoked": ("reason",),
    "case.licence_issued": ("licenceNumber", "itemCode"),
    "case.ready_for_pickup": ("hall",),
    "case.picked_up": ("hall",),
    "case.mailed": ("waybillNumber", "carrier"),
    "case.trip_recorded": ("purpose", "hall"),
    "case.supervision_raised": ("light", "deadline"),
    "case.handed_off": ("partner", "mode", "handoff"),
    "case.handoff_accepted": ("partnerNumber",),
    "case.handoff_refused": ("reason", "pathForward"),
    "case.partner_progressed": ("step", "label"),
    "case.received_from_partner": ("partner", "originCaseId", "originNumber", "mode", "handoff"),
    "case.paper_posted": ("waybillNumber", "carrier"),
    "case.paper_archived": (),
    "case.partner_decided": ("result", "reason"),
    "case.partner_requested_materials": ("issues",),
}
ENVELOPE = ("type", "id", "position", "version", "occurredAt", "recordedAt", "case", "actor", "channel")


def every_event() -> list[Any]:
    return [event for build in STATES.values() for event in build()[1]]


def published(event: Any, reveal: bool) -> IntegrationEvent:
    ref = CaseRef(id=event.originator_id, number="430100202605060000001", item_code="430100-XK-001")
    return publish(event, position=7, case=ref, recorded_at=datetime(2026, 5, 6, tzinfo=UTC), reveal=reveal)


def test_every_case_event_is_published() -> None:
    assert set(PUBLISHED_EVENTS) == set(CASE_EVENTS)


def test_the_published_shapes_are_those_of_version_1() -> None:
    assert type_names() == list(VERSION_1)
    base = set(Envelope.__struct_encode_fields__)
    for cls in IntegrationEvent.__args__:  # type: ignore[attr-defined]
        added = tuple(f for f in cls.__struct_encode_fields__ if f not in base)
        assert added == VERSION_1[cls.__struct_config__.tag], cls
    wire = msgspec.json.decode(ENCODER.encode(published(every_event()[0], reveal=False)))
    assert tuple(wire)[: len(ENVELOPE)] == ENVELOPE


@pytest.mark.parametrize("reveal", [False, True])
def test_each_event_round_trips_through_its_schema(reveal: bool) -> None:
    seen = set()
    for event in every_event():
        out = published(event, reveal)
        body = ENCODER.encode(out)
        assert DECODER.decode(body) == out
        assert out.id == event_id(event.originator_id, event.originator_version)
        seen.add(type(out).__struct_config__.tag)
    assert len(seen) >= 19  # the builders reach most types; the mapping's table names the rest


def test_masked_events_hold_no_personal_value_nor_the_pickup_code() -> None:
    events = every_event()
    submitted = next(e for e in events if isinstance(e, Case.Submitted))
    applicant = submitted.applicant
    secrets = [
        applicant.identity.number,
        applicant.phone.number,
        applicant.name.name,
        applicant.address.detail,
    ]
    masked = b"".join(ENCODER.encode(published(e, reveal=False)) for e in events)
    clear = b"".join(ENCODER.encode(published(e, reveal=True)) for e in events)
    for secret in secrets:
        assert secret.encode() not in masked
        assert secret.encode() in clear
    assert b"8421" not in clear  # the pickup code is the citizen's, revealed or not
    citizen_acts = [published(e, reveal=False) for e in events if e.actor == CITIZEN]
    assert citizen_acts and all(p.actor.id is None and p.actor.name is None for p in citizen_acts)


def test_free_text_is_scrubbed_unless_revealed() -> None:
    case = STATES["in_handling"]()[0]
    officer = next(iter(case.tasks))
    case.claim_task(officer_of(0), SYS, STEP, department=officer)
    case.reject_task(officer_of(0), SYS, STEP, department=officer, reason="申请人电话13812345678与登记不符")
    rejected = case.collect_events()[-1]
    assert published(rejected, reveal=False).reason == "申请人电话138****5678与登记不符"  # type: ignore[union-attr]
    assert "13812345678" in published(rejected, reveal=True).reason  # type: ignore[union-attr]
    assert task_department(rejected) == officer


def test_event_ids_are_stable_and_distinct() -> None:
    one, other = uuid4(), uuid4()
    assert event_id(one, 1) == event_id(one, 1)
    assert len({event_id(one, 1), event_id(one, 2), event_id(other, 1)}) == 3
