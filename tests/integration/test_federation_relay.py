"""The outbox and its relay on PostgreSQL, delivering to a partner on loopback through outages, refusals."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import httpx
import pytest

from backend.federation.admin import FederationAdmin
from backend.federation.delivery import MESSAGES_PATH, RelayRules
from backend.federation.messages import Envelope
from backend.federation.outbox import enqueue, message_id_for, next_seq
from backend.federation.relay import Relay
from tests.fakes.federation_receiver import PartnerReceiver
from tests.integration.federation_support import (
    CHANGSHA,
    XIANGTAN,
    ZHUZHOU,
    Directory,
    envelope,
    eventually,
    key_of,
    now,
    public_keys,
)

pytestmark = pytest.mark.integration

OUR_KEY = key_of(CHANGSHA)


def rules(**changes: float) -> RelayRules:
    base = {"retry_min_seconds": 0.05, "retry_max_seconds": 0.4, "timeout_seconds": 2.0, "poll_seconds": 0.2}
    return RelayRules(**{**base, **changes})  # type: ignore[arg-type]


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real transport that counts the requests it sent: which relay did the work."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await super().handle_async_request(request)


@asynccontextmanager
async def relaying(
    pool: asyncpg.Pool,
    directory: Directory,
    db_url: str,
    schema: str,
    relay_rules: RelayRules,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Relay]:
    relay = Relay(
        lambda: pool,
        directory,
        CHANGSHA,
        OUR_KEY,
        relay_rules,
        clock=now,
        listen=(db_url, schema),
        transport=transport,
    )
    relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


async def put(pool: asyncpg.Pool, partner: str, message: Envelope) -> uuid.UUID:
    async with pool.acquire() as conn, conn.transaction():
        return await enqueue(conn, partner, message)


async def row(pool: asyncpg.Pool, message_id: uuid.UUID) -> asyncpg.Record:
    found = await pool.fetchrow("SELECT * FROM federation_outbox WHERE message_id = $1", message_id)
    assert found is not None
    return found


def delivered(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> Callable[[], object]:
    async def probe() -> bool:
        count = await pool.fetchval(
            "SELECT count(*) FROM federation_outbox WHERE message_id = ANY($1) AND delivered_at IS NOT NULL",
            ids,
        )
        return bool(count == len(ids))

    return probe


async def test_a_partner_down_for_a_while_gets_every_message_when_it_is_back(
    pool: asyncpg.Pool, db_url: str, schema: str
) -> None:
    handoff = uuid.uuid4()
    with PartnerReceiver(public_keys(OUR_KEY)) as partner:  # not up yet: its port refuses connections
        directory = Directory()
        directory.add(ZHUZHOU, partner.base_url, OUR_KEY)
        ids = [await put(pool, ZHUZHOU, envelope(handoff, seq)) for seq in (1, 2)]
        async with relaying(pool, directory, db_url, schema, rules()):

            async def refused_twice() -> bool:
                return (await row(pool, ids[0]))["consecutive_failures"] >= 2

            await eventually(refused_twice, "two refused connections")
            down = await row(pool, ids[0])
            assert down["delivered_at"] is None and down["last_status"] is None
            assert "ConnectError" in down["last_error"] and down["attempts"] >= 2

            partner.refuse_next = 2  # up, but overloaded at first
            partner.up()
            ids.append(await put(pool, ZHUZHOU, envelope(handoff, 3)))  # the NOTIFY wakes the relay
            await eventually(delivered(pool, ids), "all three delivered")

    taken = partner.taken()
    assert sorted(a.message_id for a in taken) == sorted(map(str, ids))  # each once
    assert sorted(a.envelope["seq"] for a in taken) == [1, 2, 3]
    assert all(a.signed and a.region == CHANGSHA and a.path == MESSAGES_PATH for a in taken)
    assert [a.answered for a in partner.arrivals].count(503) == 2
    first = await row(pool, ids[0])
    assert first["consecutive_failures"] == 0 and first["lease"] is None and first["last_status"] == 202
    assert first["attempts"] >= 3  # the refused ones count too
    summary = await FederationAdmin(lambda: pool).outbox("delivered", 10)
    assert (summary.pending, summary.delivered) == (0, 3)
    assert {i.message_id for i in summary.items} == set(ids)


async def test_a_refusal_is_retried_at_the_maximum_with_the_error_on_show(
    pool: asyncpg.Pool, db_url: str, schema: str
) -> None:
    """A partner without our new key answers 401: nothing to do but wait for its configuration to catch up."""
    rotated = key_of(CHANGSHA, "k2")
    with PartnerReceiver(public_keys(rotated)).up() as partner:  # knows only a key we do not sign with
        directory = Directory()
        directory.add(ZHUZHOU, partner.base_url + "/")
        message_id = await put(pool, ZHUZHOU, envelope(uuid.uuid4(), 1))
        async with relaying(pool, directory, db_url, schema, rules(retry_max_seconds=1.0)):

            async def refused() -> asyncpg.Record | None:
                found = await row(pool, message_id)
                return found if found["last_status"] == 401 else None

            failed = await eventually(refused, "a 401")
            wait = failed["next_attempt_at"] - now()
            assert timedelta(seconds=0.5) < wait <= timedelta(seconds=1.0)  # the maximum, not the minimum
            assert failed["last_error"].startswith('HTTP 401: {"status": 401}')
            assert failed["delivered_at"] is None

            partner.sender_keys.update(public_keys(OUR_KEY))  # the partner's admin adds our key
            await eventually(delivered(pool, [message_id]), "delivered once the partner has our key")
    assert [a.answered for a in partner.arrivals][-1] == 202


async def test_a_message_to_an_unknown_partner_is_not_sent_until_it_is_configured(
    pool: asyncpg.Pool, db_url: str, schema: str
) -> None:
    with PartnerReceiver(public_keys(OUR_KEY)).up() as partner:
        directory = Directory()
        message_id = await put(pool, XIANGTAN, envelope(uuid.uuid4(), 1))
        async with relaying(pool, directory, db_url, schema, rules(retry_max_seconds=0.3)):

            async def noted() -> asyncpg.Record | None:
                found = await row(pool, message_id)
                return found if found["consecutive_failures"] >= 1 else None

            failed = await eventually(noted, "the missing partner noted")
            assert failed["last_error"] == "no partner city 430300 is configured"
            assert failed["attempts"] == 0 and failed["last_status"] is None  # nothing was sent
            directory.add(XIANGTAN, partner.base_url, OUR_KEY)
            await eventually(delivered(pool, [message_id]), "delivered once configured")
    assert [a.message_id for a in partner.arrivals] == [str(message_id)]


async def test_two_relays_share_the_outbox_and_send_each_message_once(
    pool: asyncpg.Pool, db_url: str, schema: str
) -> None:
    with PartnerReceiver(public_keys(OUR_KEY), prefix="/zw").up() as partner:  # served under a prefix
        directory = Directory()
        directory.add(ZHUZHOU, partner.base_url, OUR_KEY)
        transports = [CountingTransport(), CountingTransport()]
        async with (
            relaying(pool, directory, db_url, schema, rules(in_flight=2), transports[0]),
            relaying(pool, directory, db_url, schema, rules(in_flight=2), transports[1]),
        ):
            handoffs = [uuid.uuid4() for _ in range(10)]
            ids = [await put(pool, ZHUZHOU, envelope(h, seq)) for h in handoffs for seq in (1, 2, 3)]
            await eventually(delivered(pool, ids), "all delivered")
    # With every answer a 2xx, nothing was ever sent twice: the leases kept the relays apart.
    assert sorted(a.message_id for a in partner.arrivals) == sorted(map(str, ids))
    assert {a.path for a in partner.arrivals} == {"/zw" + MESSAGES_PATH}
    assert all(t.sent > 0 for t in transports), [t.sent for t in transports]  # both did some


async def test_enqueueing_again_adds_nothing_and_seqs_follow_on(pool: asyncpg.Pool) -> None:
    handoff = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        assert await next_seq(conn, ZHUZHOU, handoff) == 1
        first = await enqueue(conn, ZHUZHOU, envelope(handoff, 1))
        assert await next_seq(conn, ZHUZHOU, handoff) == 2
        assert await next_seq(conn, XIANGTAN, handoff) == 1  # numbered per partner
    # A consumer redoing its batch enqueues the same message again: same id, nothing added.
    again = await put(pool, ZHUZHOU, envelope(handoff, 1, n=99))
    assert again == first == message_id_for(ZHUZHOU, handoff, 1)
    assert await pool.fetchval("SELECT count(*) FROM federation_outbox WHERE handoff = $1", handoff) == 1
    stored = await row(pool, first)
    assert b'"n":1' in stored["body"] and stored["kind"] == "test.noted"
    # Another message claiming a seq already taken is the caller's bug, and refused.
    with pytest.raises(asyncpg.UniqueViolationError):
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, ZHUZHOU, envelope(handoff, 1), message_id=uuid.uuid4())
    # Rolled back with its transaction, a message never existed.
    rolled = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await enqueue(conn, ZHUZHOU, envelope(handoff, 2), message_id=rolled)
            raise RuntimeError("the decision to send failed")
    assert await pool.fetchval("SELECT count(*) FROM federation_outbox WHERE message_id = $1", rolled) == 0
