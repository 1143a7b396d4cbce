"""The payload of each 通办 message kind: what fits, and what is refused before it could block a handoff."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from backend.federation.kinds import (
    ENCODER,
    KINDS,
    DecisionReported,
    HandoffAccepted,
    HandoffRefused,
    HandoffRequested,
    HandoffWithdrawn,
    Issue,
    Material,
    MaterialsArchived,
    MaterialsPosted,
    Party,
    PayloadError,
    ResultDelivered,
    StatusReported,
    SupplementRequested,
    SupplementSent,
    decode_payload,
)

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
ZHANG = Party(
    kind="person", name="张小明", id_type="resident_id", id_number="430102199001011238", phone="13812341234",
    address="湖南省株洲市天元区",
)  # fmt: skip
SAMPLES = [
    HandoffRequested(
        mode="remote_collect", item_code="11430200006182474N010100300000", origin_case_id=uuid4(),
        origin_number="43010020261207000001", accepted_at=AT, applicant=ZHANG,
        materials=[Material(material_id="M01", sha256="a" * 64)], form={"经营场所": "株洲"},
    ),
    HandoffAccepted(case_number="43020020261207000003"),
    HandoffRefused(reason="本市不受理该事项的异地代收"),
    StatusReported(step="task.approved", label="株洲市市场监督管理局：批准通过", occurred_at=AT),
    DecisionReported(result="approved"),
    HandoffWithdrawn(reason="申请人撤回"),
    MaterialsPosted(waybill_number="EMS1234567890", carrier="EMS"),
    MaterialsArchived(archived_at=AT),
    ResultDelivered(method="mail", reference="EMS0987654321", carrier="EMS", delivered_at=AT),
    SupplementRequested(issues=[Issue(material_id="M02", reason="复印件不清晰")], occurred_at=AT),
    SupplementSent(materials=[Material(material_id="M02", sha256="b" * 64)], attempt=1),
]  # fmt: skip


def test_every_kind_has_a_sample_and_each_round_trips() -> None:
    assert {type(s) for s in SAMPLES} == set(KINDS.values())
    for kind, cls in KINDS.items():
        sample = next(s for s in SAMPLES if type(s) is cls)
        assert decode_payload(kind, ENCODER.encode(sample)) == sample


@pytest.mark.parametrize(
    ("kind", "payload", "says"),
    [
        ("handoff.refused", b'{"reason": ""}', "reason"),
        ("handoff.refused", b'{"reason": "x", "extra": 1}', "extra"),
        ("handoff.accepted", b"{}", "caseNumber"),
        ("decision.reported", b'{"result": "voided"}', "result"),
        (
            "status.reported",
            b'{"step": "task approved!", "label": "x", "occurredAt": "2026-12-07T09:30:00Z"}',
            "step",
        ),
        ("handoff.requested", b'{"mode": "by_pigeon"}', "mode"),
        ("handoff.accepted", b"not json", "does not fit"),
    ],
)
def test_a_payload_that_does_not_fit_says_why(kind: str, payload: bytes, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        decode_payload(kind, payload)
