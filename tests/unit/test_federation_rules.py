"""Cross-city messaging rules without a database: answers, backoff, envelopes, refusals, message ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.federation.delivery import JITTER, RelayRules, Verdict, backoff_seconds, classify, messages_url
from backend.federation.inbox import decode_envelope
from backend.federation.messages import ENCODER, Envelope
from backend.federation.outbox import message_id_for
from backend.federation.refusals import (
    BY_SIGNATURE_ERROR,
    REFUSALS,
    FederationRefusal,
    MessageInvalid,
    register_federation_problems,
)
from miniapp_api.problems import ProblemMap

pytestmark = pytest.mark.unit

HANDOFF = uuid.UUID("0b9a3c36-9f5e-4c53-a2f4-3f1f0d6a1e01")


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),  # a duplicate: the partner had it already
        (202, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (None, Verdict.RETRY),  # no answer: refused connection, reset, timeout
        (500, Verdict.RETRY),
        (502, Verdict.RETRY),
        (503, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (400, Verdict.REFUSED),  # headers or envelope we sent are wrong: only a fix helps
        (401, Verdict.REFUSED),  # stale, unknown key, bad signature: a key rotation or clock fix helps
        (403, Verdict.REFUSED),  # the partner does not have us configured
        (404, Verdict.REFUSED),
        (409, Verdict.REFUSED),
        (422, Verdict.REFUSED),
        (301, Verdict.REFUSED),  # redirects are not followed: a base URL to fix
    ],
)
def test_an_answer_is_delivered_passing_trouble_or_a_refusal(status: int | None, verdict: Verdict) -> None:
    assert classify(status) is verdict


def test_passing_trouble_backs_off_doubling_up_to_the_maximum() -> None:
    rules = RelayRules(retry_min_seconds=1.0, retry_max_seconds=300.0)
    schedule = [rules.delay(Verdict.RETRY, n, rng=0.0) for n in range(1, 12)]
    assert schedule == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert rules.delay(Verdict.RETRY, 10_000, rng=0.0) == 300  # no overflow after very many


def test_a_refusal_waits_the_maximum_from_the_first_failure() -> None:
    rules = RelayRules(retry_min_seconds=0.5, retry_max_seconds=120.0)
    assert [rules.delay(Verdict.REFUSED, n, rng=0.0) for n in (1, 2, 7)] == [120.0, 120.0, 120.0]
    assert rules.delay(Verdict.DELIVERED, 3, rng=0.5) == 0


@given(
    failures=st.integers(1, 200),
    minimum=st.floats(0.01, 10),
    spread=st.floats(1, 1000),
    rng=st.floats(0, 1, exclude_max=True),
)
def test_the_jitter_only_brings_a_retry_slightly_forward(
    failures: int, minimum: float, spread: float, rng: float
) -> None:
    maximum = minimum * spread
    exact = backoff_seconds(failures, minimum, maximum, rng=0.0)
    jittered = backoff_seconds(failures, minimum, maximum, rng=rng)
    assert exact * (1 - JITTER) <= jittered <= exact <= maximum
    assert minimum <= exact
    assert backoff_seconds(failures + 1, minimum, maximum, rng=0.0) >= exact


def test_rules_refuse_a_minimum_above_the_maximum() -> None:
    with pytest.raises(ValueError, match="retry_min_seconds"):
        RelayRules(retry_min_seconds=10, retry_max_seconds=1)


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://zwfw.zhuzhou.gov.cn", "https://zwfw.zhuzhou.gov.cn/federation/v1/messages"),
        ("https://zwfw.zhuzhou.gov.cn/", "https://zwfw.zhuzhou.gov.cn/federation/v1/messages"),
        ("http://127.0.0.1:8001/citypass/", "http://127.0.0.1:8001/citypass/federation/v1/messages"),
    ],
)
def test_messages_go_to_the_partners_federation_path(base: str, url: str) -> None:
    assert messages_url(base) == url


def envelope_json(**changes: object) -> bytes:
    fields: dict[str, object] = {
        "kind": "handoff.requested",
        "handoff": str(HANDOFF),
        "seq": 1,
        "sentAt": "2026-03-02T09:30:00+08:00",
        "payload": {"caseId": "c-1", "items": ["A"]},
    }
    fields.update(changes)
    return msgspec.json.encode({k: v for k, v in fields.items() if v is not None})


def test_a_valid_envelope_keeps_its_payload_bytes_for_the_handler() -> None:
    envelope = decode_envelope(envelope_json())
    assert (envelope.kind, envelope.handoff, envelope.seq) == ("handoff.requested", HANDOFF, 1)
    assert envelope.sent_at == datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    assert msgspec.json.decode(bytes(envelope.payload)) == {"caseId": "c-1", "items": ["A"]}
    # Encoded back as the outbox stores it, and read again, it is the same envelope.
    assert decode_envelope(ENCODER.encode(envelope)) == envelope


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "malformed"),
        (b"[]", "Expected `object`"),
        (envelope_json(seq=0), "seq"),
        (envelope_json(seq=-3), "seq"),
        (envelope_json(seq="1"), "seq"),
        (envelope_json(kind="Handoff"), "kind"),
        (envelope_json(kind="handoff"), "kind"),  # a kind is dotted: family.event
        (envelope_json(kind="x." + "y" * 70), "kind"),
        (envelope_json(handoff="not-a-uuid"), "handoff"),
        (envelope_json(handoff=None), "handoff"),
        (envelope_json(sentAt="yesterday"), "sentAt"),
        (envelope_json(colour="red"), "colour"),  # unknown fields are refused, not ignored
    ],
)
def test_an_invalid_envelope_is_refused_with_the_reason(body: bytes, says: str) -> None:
    with pytest.raises(MessageInvalid) as refused:
        decode_envelope(body)
    assert says in str(refused.value)


def test_every_refusal_has_a_stable_problem_type_and_status() -> None:
    problems = register_federation_problems(ProblemMap())
    found = {}
    for refusal in REFUSALS:
        kind = problems.lookup(refusal("why"))
        assert kind is not None
        found[kind.slug] = kind.status
    assert found == {
        "federation-headers-invalid": 400,
        "federation-partner-unknown": 403,
        "federation-message-stale": 401,
        "federation-key-unknown": 401,
        "federation-signature-invalid": 401,
        "federation-message-invalid": 400,
        "federation-kind-unknown": 422,
        "federation-sequence-conflict": 409,
        "federation-message-conflict": 409,
        "federation-material-not-found": 404,
    }
    # Each of verify()'s reasons has its refusal.
    assert {k: c.kind for k, c in BY_SIGNATURE_ERROR.items()} == {
        "malformed": "headers-invalid",
        "stale": "message-stale",
        "unknown-key": "key-unknown",
        "bad-signature": "signature-invalid",
    }
    assert all(issubclass(c, FederationRefusal) for c in REFUSALS)


def test_a_message_id_follows_from_partner_handoff_and_seq_alone() -> None:
    first = message_id_for("430200", HANDOFF, 1)
    assert first == message_id_for("430200", HANDOFF, 1)  # a redone batch enqueues the same id
    others = {
        message_id_for("430300", HANDOFF, 1),
        message_id_for("430200", HANDOFF, 2),
        message_id_for("430200", uuid.uuid4(), 1),
    }
    assert first not in others and len(others) == 3
    assert first.version == 5


def test_an_envelope_is_a_struct_the_outbox_encodes_in_camel_case() -> None:
    envelope = Envelope(
        kind="status.reported",
        handoff=HANDOFF,
        seq=4,
        sent_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        payload=msgspec.Raw(b'{"status":"accepted"}'),
    )
    assert msgspec.json.decode(ENCODER.encode(envelope)) == {
        "kind": "status.reported",
        "handoff": str(HANDOFF),
        "seq": 4,
        "sentAt": "2026-03-02T09:30:00Z",
        "payload": {"status": "accepted"},
    }
