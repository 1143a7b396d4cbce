"""The dispatcher on PostgreSQL, through the real channels and SDKs to fake providers on loopback."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from eventsourcing.persistence import Mapper, StoredEvent

from notifications.address_book import AddressBook, PhoneDigest, Wanted, read_book
from notifications.delivery_rules import QuietHours, RateLimit
from notifications.intents import Purpose, RecipientKind
from tests.fakes.sms_script import REPORT_PENDING, REPORT_SUCCESS, SERVER_ERROR, SLOW
from tests.integration import test_case_progress as shared
from tests.integration.dispatch_support import (
    NOON,
    Fakes,
    add_device,
    add_grants,
    attempts,
    dispatcher,
    drain,
    enqueue,
    fakes,
    rows,
    template_of,
)
from tests.integration.test_case_progress import World

mapper, store, world = shared.mapper, shared.store, shared.world
__all__ = ["fakes"]  # a fixture, imported for pytest

pytestmark = pytest.mark.integration

ZHANG_PHONE = "+8613812341234"  # case A's applicant
WANG_PHONE = "+8613700001111"  # the agent who filed case C for an enterprise (whose own number is a landline)


async def test_each_notification_takes_the_first_channel_that_can_reach_its_recipient(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    case_a = world.ids["A"]
    await add_grants(pool, "with-grant", "openid-1", Purpose.ACCEPTED)
    await add_device(pool, "with-device", "fid-1")
    await add_device(pool, "officer-1", "fid-officer", role="officer", department="WJW")
    by_wechat = await enqueue(pool, Purpose.ACCEPTED, "with-grant", case_a, occurred_at=NOON)
    by_push = await enqueue(pool, Purpose.ACCEPTED, "with-device", case_a, occurred_at=NOON)
    by_sms = await enqueue(pool, Purpose.ACCEPTED, "citizen-zhang", case_a, occurred_at=NOON)
    by_agent_sms = await enqueue(pool, Purpose.ACCEPTED, "agent-wang", world.ids["C"], occurred_at=NOON)
    to_officers = await enqueue(
        pool, Purpose.NEW_TASK, "WJW", case_a, occurred_at=NOON, kind="department", role="handler"
    )
    nobody_reaches = await enqueue(
        pool, Purpose.NEW_TASK, "GAJ", case_a, occurred_at=NOON, kind="department", role="handler"
    )
    await drain(dispatcher(pool, fakes, mapper), pool)

    found = {r["key"]: r for r in await rows(pool)}
    assert {k: found[k]["channel"] for k in found} == {
        by_wechat: "wechat",
        by_push: "push",
        by_sms: "sms",
        by_agent_sms: "sms",
        to_officers: "push",
        nobody_reaches: "inbox",
    }
    assert {r["state"] for r in found.values()} == {"delivered"}
    [to_wechat] = fakes.wechat.delivered
    assert to_wechat["touser"] == "openid-1"
    # The template's page, for this case, with the key in its query.
    assert to_wechat["page"] == f"pages/cases/detail?id={case_a}&key={by_wechat}"
    assert sorted(m["fid"] for m in fakes.fcm.delivered) == ["fid-1", "fid-officer"]
    # The phone comes from each case's own submission: the applicant's, or the agent's who filed it.
    assert sorted(s.phone for s in fakes.aliyun.sent) == sorted([ZHANG_PHONE, WANG_PHONE])
    assert fakes.aliyun.delivered_per_key() == {by_sms: 1, by_agent_sms: 1}
    assert await attempts(pool, by_sms) == [("sms", "aliyun-sms", "done")]
    assert await attempts(pool, nobody_reaches) == []
    spent = await pool.fetch("SELECT spent_how, reserved_by FROM wechat_grants")
    assert [(r["spent_how"], r["reserved_by"]) for r in spent] == [("sent", by_wechat)]


async def test_a_phone_is_opened_only_for_a_notification_that_gets_as_far_as_sms(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    # Cases A and C belong to recipients WeChat and push reach; case B's applicant has a push
    # device FCM no longer knows, so that notification falls over to SMS.
    await add_grants(pool, "with-grant", "openid-1", Purpose.ACCEPTED)
    await add_device(pool, "with-device", "fid-1")
    await add_device(pool, "device-gone", "fid-gone")
    fakes.fcm.fail("fid-gone", "UNREGISTERED")
    await enqueue(pool, Purpose.ACCEPTED, "with-grant", world.ids["A"], occurred_at=NOON)
    await enqueue(pool, Purpose.ACCEPTED, "with-device", world.ids["C"], occurred_at=NOON)
    fell_over = await enqueue(pool, Purpose.ACCEPTED, "device-gone", world.ids["B"], occurred_at=NOON)
    opened: list[uuid.UUID] = []

    def decode(stored: StoredEvent) -> object:
        opened.append(stored.originator_id)
        return mapper.to_domain_event(stored)

    await drain(dispatcher(pool, fakes, mapper, decode=decode), pool)

    assert {r["key"]: r["channel"] for r in await rows(pool)}[fell_over] == "sms"
    assert opened == [world.ids["B"]]  # the others' personal data stayed sealed
    assert [s.key for s in fakes.aliyun.sent] == [fell_over]


async def test_two_claims_for_one_citizen_at_once_each_reserve_one_of_the_open_grants(
    pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    # A claim locks only the grants it takes: locking every open grant of the citizen left a
    # second dispatcher, claiming that citizen's next notification at the same moment, none.
    await add_grants(pool, "citizen-li", "openid-li", Purpose.ACCEPTED, count=5)

    def wanted(key: str) -> Wanted:
        template = template_of(Purpose.ACCEPTED)
        return Wanted(key, Purpose.ACCEPTED.value, RecipientKind.CITIZEN, "citizen-li", None, template)

    async def claim(conn: asyncpg.Connection, key: str) -> AddressBook:
        return await read_book(conn, [wanted(key)], mapper.to_domain_event, PhoneDigest(b"k" * 32), NOON)

    async with pool.acquire() as first, pool.acquire() as second, first.transaction():
        book_a = await claim(first, "key-a")
        async with second.transaction():
            book_b = await claim(second, "key-b")
    assert set(book_a.grants) == {"key-a"} and set(book_b.grants) == {"key-b"}
    assert book_a.grants["key-a"].id != book_b.grants["key-b"].id
    reserved = await pool.fetch("SELECT reserved_by FROM wechat_grants WHERE reserved_by IS NOT NULL")
    assert sorted(r["reserved_by"] for r in reserved) == ["key-a", "key-b"]


async def test_a_grant_is_spent_once_and_a_refused_one_falls_over_in_the_same_pass(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    case_a = world.ids["A"]
    await add_grants(pool, "citizen-zhang", "openid-zhang", Purpose.CONCLUDED, count=2)
    await add_device(pool, "citizen-zhang", "fid-zhang")
    keys = [
        await enqueue(pool, Purpose.CONCLUDED, "citizen-zhang", case_a, occurred_at=NOON) for _ in range(3)
    ]
    fakes.wechat.fail("openid-zhang", 43101)  # the first send: the user withdrew that subscription
    await drain(dispatcher(pool, fakes, mapper), pool)

    channels = sorted(r["channel"] for r in await rows(pool))
    # Two grants: one refused by WeChat (void now), one spent; the other two messages go by push.
    assert channels == ["push", "push", "wechat"]
    grants = await pool.fetch("SELECT spent_how FROM wechat_grants ORDER BY id")
    assert sorted(r["spent_how"] for r in grants) == ["refused", "sent"]
    refused = [k for k in keys if ("wechat", "wechat", "drop") in await attempts(pool, k)]
    assert len(refused) == 1
    assert await attempts(pool, refused[0]) == [("wechat", "wechat", "drop"), ("push", "fcm", "done")]
    assert max(fakes.received_per_key().values()) == 1


async def test_an_unregistered_device_is_removed_and_the_message_goes_by_sms(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    await add_device(pool, "citizen-zhang", "fid-gone")
    key = await enqueue(pool, Purpose.SUSPENDED, "citizen-zhang", world.ids["A"], occurred_at=NOON)
    fakes.fcm.fail("fid-gone", "UNREGISTERED")
    await drain(dispatcher(pool, fakes, mapper), pool)

    assert [(r["state"], r["channel"], r["tried_channels"]) for r in await rows(pool)] == [
        ("delivered", "sms", ["push"])
    ]
    assert await attempts(pool, key) == [("push", "fcm", "drop"), ("sms", "aliyun-sms", "done")]
    assert await pool.fetchval("SELECT count(*) FROM push_devices") == 0


async def test_sms_fails_over_between_providers_and_retries_with_backoff(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    key = await enqueue(pool, Purpose.RESUMED, "citizen-zhang", world.ids["A"], occurred_at=NOON)
    fakes.aliyun.script(ZHANG_PHONE, SERVER_ERROR, times=2)
    fakes.tencent.script(ZHANG_PHONE, "LimitExceeded.PhoneNumberOneHourLimit", times=1)
    d = dispatcher(pool, fakes, mapper)
    assert await d.dispatch_once() == 1
    [row] = await rows(pool)
    assert row["state"] == "pending" and row["attempts"] == 2
    # two attempts: twice the base, and equal jitter with rng 0.5 makes it three quarters of that
    assert row["next_attempt_at"] == NOON + timedelta(seconds=1.5)
    await drain(d, pool)
    assert await attempts(pool, key) == [
        ("sms", "aliyun-sms", "retry"),
        ("sms", "tencent-sms", "retry"),
        ("sms", "aliyun-sms", "retry"),
        ("sms", "tencent-sms", "done"),
    ]
    assert fakes.received_per_key() == {key: 1}


async def test_an_sms_of_unclear_fate_is_looked_up_before_it_is_sent_again(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    key = await enqueue(pool, Purpose.RESUMED, "citizen-zhang", world.ids["A"], occurred_at=NOON)
    fakes.aliyun.script(ZHANG_PHONE, SLOW)  # sent, but the answer comes after the channel gave up
    await drain(dispatcher(pool, fakes, mapper), pool)

    [row] = await rows(pool)
    assert (row["state"], row["channel"], row["unsettled"]) == ("delivered", "sms", [])
    # No second provider in the pass of the unclear answer, and no second send after it.
    assert await attempts(pool, key) == [("sms", "aliyun-sms", "retry"), ("sms", "aliyun-sms", "done")]
    assert fakes.received_per_key() == {key: 1}
    assert fakes.tencent.sent == []


async def test_not_listed_yet_is_no_proof_until_the_settle_window_has_passed(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    clock = fakes.clock
    key = await enqueue(pool, Purpose.RESUMED, "citizen-zhang", world.ids["A"], occurred_at=NOON)
    fakes.aliyun.script(ZHANG_PHONE, SERVER_ERROR)  # a clear failure: on to Tencent in the same pass
    fakes.tencent.script(ZHANG_PHONE, SLOW)  # sent, answered too late
    d = dispatcher(pool, fakes, mapper, settle_after=timedelta(minutes=10))
    assert await d.dispatch_once() == 1
    fakes.tencent.report(key, REPORT_PENDING)  # the carrier has not reported: Tencent does not list it
    [row] = await rows(pool)
    assert (row["unsettled"], row["unsettled_since"]) == (["tencent-sms"], NOON)
    clock.now = row["next_attempt_at"]
    assert await d.dispatch_once() == 1
    [row] = await rows(pool)
    assert (row["state"], row["deferred"]) == ("pending", "settling")
    assert row["next_attempt_at"] == NOON + timedelta(minutes=10)
    fakes.tencent.report(key, REPORT_SUCCESS)
    clock.now = row["next_attempt_at"]
    await drain(d, pool)
    [row] = await rows(pool)
    assert (row["state"], row["channel"], row["unsettled"]) == ("delivered", "sms", [])
    assert fakes.received_per_key() == {key: 1}
    assert await attempts(pool, key) == [
        ("sms", "aliyun-sms", "retry"),
        ("sms", "tencent-sms", "retry"),
        ("sms", "tencent-sms", "done"),
    ]


async def test_quiet_hours_defer_push_and_sms_but_not_wechat_nor_urgent_notices(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    night = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)  # 23:30 in Changsha
    clock = fakes.clock
    clock.now = night
    case_a = world.ids["A"]
    await add_grants(pool, "with-grant", "openid-1", Purpose.ACCEPTED)
    await add_device(pool, "with-device", "fid-1")
    by_wechat = await enqueue(pool, Purpose.ACCEPTED, "with-grant", case_a, occurred_at=night)
    deferred_push = await enqueue(pool, Purpose.ACCEPTED, "with-device", case_a, occurred_at=night)
    deferred_sms = await enqueue(pool, Purpose.ACCEPTED, "citizen-zhang", case_a, occurred_at=night)
    urgent = await enqueue(
        pool, Purpose.MATERIALS_REQUESTED, "citizen-li", world.ids["B"], occurred_at=night, urgent=True
    )
    quiet = QuietHours.parse("22:00-08:00", "Asia/Shanghai")
    d = dispatcher(pool, fakes, mapper, quiet=quiet)
    assert await d.dispatch_once() == 4

    found = {r["key"]: r for r in await rows(pool)}
    assert found[by_wechat]["channel"] == "wechat" and found[urgent]["channel"] == "sms"
    morning = datetime(2026, 12, 2, 0, 0, tzinfo=UTC)  # 08:00 in Changsha
    for key in (deferred_push, deferred_sms):
        row = found[key]
        assert (row["state"], row["next_attempt_at"], row["deferred"]) == ("pending", morning, "quiet_hours")
        assert row["attempts"] == 0  # waiting is not failing
    assert fakes.fcm.delivered == []
    clock.now = morning - timedelta(seconds=1)
    assert await d.dispatch_once() == 0  # nothing due before 08:00
    clock.now = morning
    await drain(d, pool)
    after = {r["key"]: r["channel"] for r in await rows(pool)}
    assert (after[deferred_push], after[deferred_sms]) == ("push", "sms")


async def test_muted_channels_are_skipped_and_the_inbox_is_left(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    await add_device(pool, "citizen-zhang", "fid-zhang")
    for channel in ("push", "sms"):
        await pool.execute(
            "INSERT INTO notification_preferences "
            "VALUES ('citizen-zhang', 'rating_invitation', $1, false, now())",
            channel,
        )
    muted = await enqueue(pool, Purpose.RATING_INVITATION, "citizen-zhang", world.ids["A"], occurred_at=NOON)
    wanted = await enqueue(pool, Purpose.CONCLUDED, "citizen-zhang", world.ids["A"], occurred_at=NOON)
    await drain(dispatcher(pool, fakes, mapper), pool)
    found = {r["key"]: r["channel"] for r in await rows(pool)}
    assert found == {muted: "inbox", wanted: "push"}


async def test_per_phone_limits_defer_sms_until_the_window_has_room(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    clock = fakes.clock
    keys = [
        await enqueue(pool, Purpose.RESUMED, "citizen-zhang", world.ids["A"], occurred_at=NOON)
        for _ in range(3)
    ]
    limits = RateLimit.parse_many("2/1h")
    d = dispatcher(pool, fakes, mapper, sms_limits=limits)
    assert await d.dispatch_once() == 3
    found = await rows(pool)
    assert sorted(r["state"] for r in found) == ["delivered", "delivered", "pending"]
    [waiting] = [r for r in found if r["state"] == "pending"]
    assert waiting["deferred"] == "rate_limit" and waiting["next_attempt_at"] == NOON + timedelta(hours=1)
    clock.advance(3600)
    await drain(d, pool)
    assert sorted(fakes.received_per_key()) == sorted(keys)


async def test_per_phone_limits_hold_across_claims_in_flight_at_once(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    # Two claims of one dispatcher (two lanes) walk at the same time, each with a notice for
    # the same phone: each read the phone's history before the other's send was recorded.
    for _ in range(2):
        await enqueue(pool, Purpose.RESUMED, "citizen-zhang", world.ids["A"], occurred_at=NOON)
    d = dispatcher(pool, fakes, mapper, sms_limits=RateLimit.parse_many("1/1h"), batch=1)
    assert await asyncio.gather(d.dispatch_once(), d.dispatch_once()) == [1, 1]
    found = await rows(pool)
    assert sorted(r["state"] for r in found) == ["delivered", "pending"]
    [waiting] = [r for r in found if r["state"] == "pending"]
    assert waiting["deferred"] == "rate_limit" and waiting["next_attempt_at"] == NOON + timedelta(hours=1)
    assert sum(fakes.received_per_key().values()) == 1
    assert await pool.fetchval("SELECT count(*) FROM sms_sends") == 1
    fakes.clock.advance(3600)  # the window has room again
    await drain(d, pool)
    assert {r["state"] for r in await rows(pool)} == {"delivered"}
    assert sorted(fakes.received_per_key().values()) == [1, 1]


async def test_a_notification_that_keeps_failing_is_dead_lettered_then_re_driven(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    clock = fakes.clock
    key = await enqueue(pool, Purpose.RESUMED, "citizen-zhang", world.ids["A"], occurred_at=NOON)
    for gateway in (fakes.aliyun, fakes.tencent):
        gateway.script(ZHANG_PHONE, SERVER_ERROR, times=3)
    d = dispatcher(pool, fakes, mapper, max_attempts=6)
    await drain(d, pool)
    [row] = await rows(pool)
    assert (row["state"], row["attempts"]) == ("dead", 6)
    assert "sms" in row["last_error"]
    # An operator re-drives it (as the admin endpoint does): the count towards the limit starts again.
    await pool.execute(
        "UPDATE notification_outbox SET state = 'pending', attempt_base = attempts, next_attempt_at = $2 "
        "WHERE key = $1",
        key,
        clock.now,
    )
    await drain(d, pool)
    [row] = await rows(pool)
    assert (row["state"], row["channel"], row["attempts"]) == ("delivered", "sms", 7)
    assert fakes.received_per_key() == {key: 1}


async def test_chaos_every_notification_ends_delivered_or_dead_and_none_twice_but_after_a_kill(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    """SMS fails 30 % of calls (5xx and timeouts), some devices are gone, some users withdrew WeChat.

    A first dispatcher is killed between sending and recording; a second one, after its
    lease, finishes. Every notification ends delivered or dead; a message reached someone
    twice only for a key the killed dispatcher had sent, and then both carried that key.
    """
    rng = random.Random(7)
    fakes.aliyun.failure_rate = fakes.tencent.failure_rate = 0.3
    clock = fakes.clock
    cases = [world.ids[letter] for letter in "ABC"]
    keys: list[str] = []
    for n in range(120):
        subject = f"citizen-{n}"
        if n % 3 == 0:
            await add_grants(pool, subject, f"openid-{n}", Purpose.ACCEPTED)
            if n % 9 == 0:
                fakes.wechat.fail(f"openid-{n}", 43101)
        if n % 4 == 0:
            await add_device(pool, subject, f"fid-{n}")
            if n % 8 == 0:
                fakes.fcm.fail(f"fid-{n}", "UNREGISTERED")
        keys.append(await enqueue(pool, Purpose.ACCEPTED, subject, rng.choice(cases), occurred_at=NOON))

    lease = timedelta(seconds=30)
    killed = dispatcher(pool, fakes, mapper, lease=lease, batch=40)
    before_kill = dict(fakes.received_per_key())
    recording = asyncio.Event()

    async def never_records(*args: object) -> None:
        recording.set()
        await asyncio.sleep(3600)

    killed._record = never_records  # type: ignore[method-assign,assignment]  # dies between sending and recording
    task = asyncio.create_task(killed.dispatch_once())
    await asyncio.wait_for(recording.wait(), 30)
    task.cancel()
    sent_by_the_killed = set(fakes.received_per_key()) - set(before_kill)
    assert sent_by_the_killed, "the killed dispatcher should have sent something"

    clock.advance(lease.total_seconds())
    await drain(dispatcher(pool, fakes, mapper, lease=lease, batch=40, max_attempts=12), pool)

    found = await rows(pool)
    assert len(found) == 120
    outcomes = {
        (r["channel"], r["provider"], r["outcome"])
        for r in await pool.fetch("SELECT channel, provider, outcome FROM notification_attempts")
    }
    # Every kind of trouble happened, and every channel delivered something.
    assert {("wechat", "wechat", "drop"), ("push", "fcm", "drop"), ("sms", "aliyun-sms", "retry")} <= outcomes
    assert {r["channel"] for r in found} >= {"wechat", "push", "sms"}
    assert {r["state"] for r in found} <= {"delivered", "dead"}
    received = fakes.received_per_key()
    twice = {k for k, n in received.items() if n > 1}
    unexplained = {k: await attempts(pool, k) for k in twice - sent_by_the_killed}
    assert not unexplained, unexplained
    delivered_outside = {r["key"] for r in found if r["state"] == "delivered" and r["channel"] != "inbox"}
    assert delivered_outside <= set(received)
    assert set(received) <= set(keys)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM wechat_grants WHERE spent_at IS NULL AND reserved_by IS NOT NULL"
        )
        == 0
    )


async def test_a_channel_never_has_more_calls_under_way_than_its_cap(
    world: World, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], fakes: Fakes
) -> None:
    for n in range(6):
        await add_device(pool, f"citizen-{n}", f"fid-{n}")
        fakes.fcm.fail(f"fid-{n}", "SLOW:0.3")  # answers, after 0.3 s
        await enqueue(pool, Purpose.RESUMED, f"citizen-{n}", world.ids["A"], occurred_at=NOON)
    d = dispatcher(pool, fakes, mapper, in_flight=2, lanes=2, batch=3)
    started = time.monotonic()
    await asyncio.gather(d.dispatch_once(), d.dispatch_once())  # two lanes, three rows each
    # Six slow calls, two at a time, however many rows and lanes want them: at least three rounds.
    assert time.monotonic() - started >= 0.9
    assert [r["channel"] for r in await rows(pool)] == ["push"] * 6
