"""The inbox on PostgreSQL: signed messages taken once and applied in seq order; every refusal recorded."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from backend.federation.admin import FederationAdmin
from backend.federation.applier import Applier, ApplierRules
from backend.federation.handlers import AppliedMessage
from backend.federation.inbox import Inbox
from backend.federation.refusals import (
    FederationRefusal,
    HeadersInvalid,
    KeyUnknown,
    KindUnknown,
    MessageConflict,
    MessageInvalid,
    MessageStale,
    PartnerUnknown,
    SequenceConflict,
    SignatureInvalid,
)
from backend.federation.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.integration.federation_support import (
    NOTED,
    XIANGTAN,
    ZHUZHOU,
    Directory,
    envelope,
    eventually,
    key_of,
    now,
    signed,
)

pytestmark = pytest.mark.integration

THEIR_KEY = key_of(ZHUZHOU)
REMOTE = "10.43.2.1"


class Noted:
    """The test kind's handler: what was applied, in order."""

    def __init__(self) -> None:
        self.applied: list[AppliedMessage] = []

    async def __call__(self, message: AppliedMessage) -> None:
        self.applied.append(message)

    def seqs(self, handoff: uuid.UUID) -> list[int]:
        return [m.seq for m in self.applied if m.handoff == handoff]


@pytest.fixture
def directory() -> Directory:
    found = Directory()
    found.add(ZHUZHOU, "http://127.0.0.1:9", THEIR_KEY)
    return found


@pytest.fixture
def inbox(pool: asyncpg.Pool, directory: Directory) -> Inbox:
    return Inbox(lambda: pool, directory, {NOTED}, freshness_seconds=300, clock=now)


@pytest.fixture
async def noted(pool: asyncpg.Pool, db_url: str, schema: str) -> AsyncIterator[Noted]:
    handler = Noted()
    rules = ApplierRules(retry_min_seconds=0.05, retry_max_seconds=0.2, poll_seconds=0.2)
    applier = Applier(lambda: pool, db_url, schema, {NOTED: handler}, rules, clock=now)
    applier.start()
    try:
        yield handler
    finally:
        await applier.stop()


async def send(inbox: Inbox, headers: dict[str, str], body: bytes) -> bool:
    return await inbox.receive("POST", "/federation/v1/messages", headers, body, REMOTE)


async def test_a_message_is_taken_once_and_applied_once(
    inbox: Inbox, noted: Noted, pool: asyncpg.Pool
) -> None:
    handoff = uuid.uuid4()
    headers, body, message_id = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 1, caseId="CS-1"))
    assert await send(inbox, headers, body) is True

    async def applied() -> bool:
        return len(noted.applied) == 1

    await eventually(applied, "applied")
    message = noted.applied[0]
    assert (message.partner, message.message_id, message.handoff, message.seq) == (
        ZHUZHOU,
        message_id,
        handoff,
        1,
    )
    assert msgspec.json.decode(message.payload) == {"caseId": "CS-1"} and message.kind == NOTED
    # The relay sends it again (it never saw our answer): a duplicate, stored and applied no more.
    assert await send(inbox, headers, body) is False
    await asyncio.sleep(0.4)  # two of the applier's polls
    assert len(noted.applied) == 1
    assert await pool.fetchval("SELECT count(*) FROM federation_inbox WHERE handoff = $1", handoff) == 1
    summary = await FederationAdmin(lambda: pool).inbox("applied", 10)
    assert (summary.applied, summary.pending, summary.failed) == (1, 0, 0)
    assert summary.items[0].message_id == message_id and summary.items[0].applied_at is not None


async def test_messages_arriving_out_of_order_are_applied_in_seq_order(inbox: Inbox, noted: Noted) -> None:
    handoff, other = uuid.uuid4(), uuid.uuid4()
    messages = {seq: signed(THEIR_KEY, ZHUZHOU, envelope(handoff, seq)) for seq in (1, 2, 3)}
    assert await send(inbox, *messages[3][:2])
    assert await send(inbox, *signed(THEIR_KEY, ZHUZHOU, envelope(other, 1))[:2])

    async def other_applied() -> bool:
        return noted.seqs(other) == [1]

    await eventually(other_applied, "the other handoff applied")
    await asyncio.sleep(0.3)
    assert noted.seqs(handoff) == []  # #3 waits for #1 and #2
    assert await send(inbox, *messages[1][:2])

    async def first_applied() -> bool:
        return noted.seqs(handoff) == [1]

    await eventually(first_applied, "#1 applied")
    await asyncio.sleep(0.3)
    assert noted.seqs(handoff) == [1]  # #3 still waits for #2
    assert await send(inbox, *messages[2][:2])

    async def all_applied() -> bool:
        return len(noted.seqs(handoff)) == 3

    await eventually(all_applied, "all applied")
    assert noted.seqs(handoff) == [1, 2, 3]


def without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name.lower()}


async def test_every_refusal_is_answered_and_recorded(inbox: Inbox, pool: asyncpg.Pool) -> None:
    handoff = uuid.uuid4()
    good = envelope(handoff, 1)
    taken_headers, taken_body, taken_id = signed(THEIR_KEY, ZHUZHOU, good)
    assert await send(inbox, taken_headers, taken_body)
    impostor = key_of(ZHUZHOU, "k1-forged")
    forged = signed(impostor, ZHUZHOU, good)[0] | {"citypass-key-id": "k1"}  # our kid, another key
    tampered_headers, tampered_body, tampered_id = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 2))
    bad_id = signed(THEIR_KEY, ZHUZHOU, good)[0] | {"citypass-message-id": "not-a-uuid"}
    other_path = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 2), path="/federation/v1/other")
    cases: list[tuple[str, dict[str, str], bytes, type[FederationRefusal], str | None, uuid.UUID | None]] = []

    def case(
        headers: dict[str, str], body: bytes, refusal: type[FederationRefusal], message_id: uuid.UUID | None
    ) -> None:
        cases.append((refusal.kind, headers, body, refusal, headers.get("citypass-region"), message_id))

    stale = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 2), at=time.time() - 301)
    case(stale[0], stale[1], MessageStale, stale[2])
    ahead = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 2), at=time.time() + 400)
    case(ahead[0], ahead[1], MessageStale, ahead[2])
    # A replay of the message taken above, with its old timestamp: refused although its id is known.
    replay = signed(THEIR_KEY, ZHUZHOU, taken_body, taken_id, at=time.time() - 600)
    case(replay[0], replay[1], MessageStale, taken_id)
    unknown_key = signed(key_of(ZHUZHOU, "k9"), ZHUZHOU, envelope(handoff, 2))
    case(unknown_key[0], unknown_key[1], KeyUnknown, unknown_key[2])
    case(forged, taken_body, SignatureInvalid, uuid.UUID(forged["citypass-message-id"]))
    case(tampered_headers, tampered_body.replace(b'"seq":2', b'"seq":3'), SignatureInvalid, tampered_id)
    case(other_path[0], other_path[1], SignatureInvalid, other_path[2])
    no_signature = without(tampered_headers, SIGNATURE_HEADER)
    case(no_signature, tampered_body, SignatureInvalid, tampered_id)
    stranger = signed(key_of(XIANGTAN), XIANGTAN, envelope(handoff, 2))
    case(stranger[0], stranger[1], PartnerUnknown, stranger[2])
    case(without(tampered_headers, TIMESTAMP_HEADER), tampered_body, HeadersInvalid, tampered_id)
    case(bad_id, taken_body, HeadersInvalid, None)
    case({}, taken_body, HeadersInvalid, None)
    invalid = signed(THEIR_KEY, ZHUZHOU, taken_body.replace(b'"seq":1', b'"seq":0'))
    case(invalid[0], invalid[1], MessageInvalid, invalid[2])
    foreign = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 2, kind="handoff.requested"))
    case(foreign[0], foreign[1], KindUnknown, foreign[2])
    second_first = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 1, n=2))  # #1 again, under a new id
    case(second_first[0], second_first[1], SequenceConflict, second_first[2])
    changed = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 1, n=3), taken_id)  # the id again, new body
    case(changed[0], changed[1], MessageConflict, taken_id)

    for _, headers, body, refusal, _, _ in cases:
        with pytest.raises(refusal):
            await send(inbox, headers, body)

    recorded = await FederationAdmin(lambda: pool).refusals(100)
    assert [(r.kind, r.region, r.message_id) for r in reversed(recorded)] == [
        (kind, region, message_id) for kind, _, _, _, region, message_id in cases
    ]
    assert all(r.remote == REMOTE and r.detail for r in recorded)
    assert recorded[-1].detail.startswith("signed at ")  # the stale one says when
    # None of them reached the inbox: only the one message taken at the start.
    assert await pool.fetchval("SELECT count(*) FROM federation_inbox") == 1


async def test_a_payload_that_does_not_fit_its_kind_is_refused_and_one_that_fits_is_taken(
    pool: asyncpg.Pool, directory: Directory
) -> None:
    inbox = Inbox(lambda: pool, directory, {"handoff.refused"}, freshness_seconds=300, clock=now)
    handoff = uuid.uuid4()
    bad = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 1, kind="handoff.refused", because="x"))
    with pytest.raises(MessageInvalid, match=r"handoff\.refused"):
        await send(inbox, bad[0], bad[1])
    empty = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 1, kind="handoff.refused", reason=""))
    with pytest.raises(MessageInvalid):
        await send(inbox, empty[0], empty[1])
    good = signed(THEIR_KEY, ZHUZHOU, envelope(handoff, 1, kind="handoff.refused", reason="本市不办理该事项"))
    assert await send(inbox, good[0], good[1])
    refused = await pool.fetch("SELECT kind, message_id FROM federation_refusals ORDER BY at")
    assert [(r["kind"], r["message_id"]) for r in refused] == [
        ("message-invalid", bad[2]),
        ("message-invalid", empty[2]),
    ]
