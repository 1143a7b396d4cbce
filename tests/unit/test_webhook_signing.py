"""Webhook signatures: what a receiver accepts, and everything it must refuse."""

from __future__ import annotations

import pytest

from backend.streams.signing import sign, signature, verify_signature

pytestmark = pytest.mark.unit

SECRET = "whsec-0123456789abcdef0123456789abcdef"
BODY = b'{"subscriptionId":"s","deliveryId":"d","cursor":7,"events":[{"id":"e","position":7}]}'
T = 1_790_000_000


def test_a_signed_body_verifies_within_the_tolerance_either_side() -> None:
    header = sign(SECRET, BODY, T)
    assert header == f"t={T},v1={signature(SECRET, T, BODY)}"
    for now in (T, T + 300, T - 300, T + 0.5):
        assert verify_signature(SECRET, header, BODY, now)


@pytest.mark.parametrize(
    "body",
    [
        BODY.replace(b'"cursor":7', b'"cursor":8'),
        BODY + b" ",
        BODY[:-1],
        b"",
    ],
    ids=["changed", "appended", "truncated", "empty"],
)
def test_a_tampered_body_is_refused(body: bytes) -> None:
    assert not verify_signature(SECRET, sign(SECRET, BODY, T), body, T)


def test_another_secret_is_refused() -> None:
    assert not verify_signature(SECRET, sign(SECRET + "x", BODY, T), BODY, T)
    assert not verify_signature(SECRET + "x", sign(SECRET, BODY, T), BODY, T)


@pytest.mark.parametrize("now", [T + 301, T - 301, T + 86_400])
def test_a_stale_or_future_timestamp_is_refused(now: float) -> None:
    assert not verify_signature(SECRET, sign(SECRET, BODY, T), BODY, now)


def test_the_tolerance_is_the_receivers_to_choose() -> None:
    header = sign(SECRET, BODY, T)
    assert not verify_signature(SECRET, header, BODY, T + 31, tolerance_seconds=30)
    assert verify_signature(SECRET, header, BODY, T + 3600, tolerance_seconds=3600)


def test_a_replayed_signature_under_a_new_timestamp_is_refused() -> None:
    """The timestamp is signed: moving it forward to beat the tolerance breaks the signature."""
    old = sign(SECRET, BODY, T)
    moved = old.replace(f"t={T}", f"t={T + 1000}")
    assert not verify_signature(SECRET, moved, BODY, T + 1000)


def test_any_one_of_several_signatures_may_match() -> None:
    """While a secret is being rotated, a header may carry a signature per secret."""
    header = f"t={T},v1={'0' * 64},v1={signature(SECRET, T, BODY)}"
    assert verify_signature(SECRET, header, BODY, T)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"v1={signature(SECRET, T, BODY)}",  # no timestamp
        f"t={T}",  # no signature
        f"t=abc,v1={signature(SECRET, T, BODY)}",
        f"t=-{T},v1={signature(SECRET, T, BODY)}",
        f"t={T},t={T},v1={signature(SECRET, T, BODY)}",  # two timestamps
        f"t={T};v1={signature(SECRET, T, BODY)}",
        f"t={T},v0={signature(SECRET, T, BODY)}",  # an unknown scheme only
        f"t={T},v1={signature(SECRET, T, BODY).upper()}",
        f"t=１７９０,v1={signature(SECRET, T, BODY)}",  # full-width digits are digits to str.isdigit
        f"t={T},v1=签名",
    ],
)
def test_a_malformed_header_is_refused(header: str | None) -> None:
    assert not verify_signature(SECRET, header, BODY, T)


def test_whitespace_around_the_parts_is_allowed() -> None:
    assert verify_signature(SECRET, f" t={T} , v1={signature(SECRET, T, BODY)} ", BODY, T)
