"""Devices, WeChat grants, preferences and the outbox's admin side on PostgreSQL; refusals change nothing."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from notifications.admin import NotificationNotDeadError, NotificationNotFoundError, OutboxAdmin
from notifications.contacts import (
    SWITCHES,
    Contacts,
    DeviceNotFoundError,
    InvalidPreferenceError,
    UnknownTemplateError,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 9, 29, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def test_a_device_refreshes_in_place_and_moves_to_whoever_signs_in_on_it(pool: asyncpg.Pool) -> None:
    clock = Clock()
    contacts = Contacts(pool, clock)
    first = await contacts.register_device(
        "citizen-zhang", role="citizen", department=None, installation_id="fid-1", platform="android"
    )
    clock.now += timedelta(hours=1)
    refreshed = await contacts.register_device(
        "citizen-zhang", role="citizen", department=None, installation_id="fid-1", platform="android"
    )
    assert (refreshed.registered_at, refreshed.last_seen_at) == (first.registered_at, T0 + timedelta(hours=1))

    clock.now += timedelta(hours=1)
    moved = await contacts.register_device(
        "officer-gaj", role="officer", department="GAJ", installation_id="fid-1", platform="harmony"
    )
    assert (moved.role, moved.department, moved.platform) == ("officer", "GAJ", "harmony")
    assert moved.registered_at == moved.last_seen_at == T0 + timedelta(hours=2)
    assert await contacts.devices("citizen-zhang") == []
    assert [d.installation_id for d in await contacts.devices("officer-gaj")] == ["fid-1"]
    assert await pool.fetchval("SELECT count(*) FROM push_devices") == 1


async def test_nobody_removes_a_device_of_another_account(pool: asyncpg.Pool) -> None:
    contacts = Contacts(pool, Clock())
    await contacts.register_device(
        "citizen-zhang", role="citizen", department=None, installation_id="fid-zhang", platform="ios"
    )
    with pytest.raises(DeviceNotFoundError):
        await contacts.remove_device("citizen-li", "fid-zhang")
    with pytest.raises(DeviceNotFoundError):
        await contacts.remove_device("citizen-zhang", "fid-unknown")
    assert [d.installation_id for d in await contacts.devices("citizen-zhang")] == ["fid-zhang"]
    await contacts.remove_device("citizen-zhang", "fid-zhang")
    assert await contacts.devices("citizen-zhang") == []


async def open_grants(contacts: Contacts, subject: str) -> dict[str, int]:
    return {g.template_id: g.open for g in await contacts.grants(subject) if g.open}


async def test_only_an_accept_grants_and_an_unknown_template_refuses_the_whole_answer(
    pool: asyncpg.Pool,
) -> None:
    contacts = Contacts(pool, Clock())
    answer = {"wx-submitted": "accept", "wx-accepted": "reject", "wx-mailed": "ban", "wx-resumed": "filter"}
    counts = await contacts.record_grants("citizen-zhang", "oZhang_1", answer)
    assert {g.template_id: g.open for g in counts if g.open} == {"wx-submitted": 1}
    submitted = next(g for g in counts if g.template_id == "wx-submitted")
    assert submitted.purposes == ["submitted"]
    await contacts.record_grants(
        "citizen-zhang", "oZhang_1", {"wx-submitted": "accept", "wx-mailed": "accept"}
    )
    assert await open_grants(contacts, "citizen-zhang") == {"wx-submitted": 2, "wx-mailed": 1}
    assert await open_grants(contacts, "citizen-li") == {}

    with pytest.raises(UnknownTemplateError, match="wx-nonesuch"):
        await contacts.record_grants(
            "citizen-zhang", "oZhang_1", {"wx-accepted": "accept", "wx-nonesuch": "accept"}
        )
    assert await pool.fetchval("SELECT count(*) FROM wechat_grants") == 3

    # A spent grant is no longer open; a reserved one still is.
    await pool.execute(
        "UPDATE wechat_grants SET spent_at = $1, spent_how = 'sent' WHERE template_id = 'wx-mailed'", T0
    )
    await pool.execute("UPDATE wechat_grants SET reserved_by = 'k' WHERE template_id = 'wx-submitted'")
    assert await open_grants(contacts, "citizen-zhang") == {"wx-submitted": 2}
    # Officers' purposes have no WeChat template, so they are never asked for one.
    assert {p for g in counts for p in g.purposes}.isdisjoint({"new_task", "light_yellow", "light_red"})


async def test_preferences_default_to_wanted_and_a_bad_change_writes_none(pool: asyncpg.Pool) -> None:
    contacts = Contacts(pool, Clock())
    everything = await contacts.preferences("citizen-zhang")
    assert all(p.enabled for p in everything)
    assert {(p.purpose, p.channel) for p in everything} == {
        (p.value, c) for p, cs in SWITCHES.items() for c in cs
    }
    assert ("submitted", "inbox") not in {(p.purpose, p.channel) for p in everything}
    assert {p.channel for p in everything if p.purpose == "new_task"} == {"push", "sms"}

    chosen = await contacts.set_preferences(
        "citizen-zhang", [("submitted", "sms", False), ("accepted", "wechat", False)]
    )
    off = {(p.purpose, p.channel) for p in chosen if not p.enabled}
    assert off == {("submitted", "sms"), ("accepted", "wechat")}
    await contacts.set_preferences("citizen-zhang", [("submitted", "sms", True)])
    assert {(p.purpose, p.channel) for p in await contacts.preferences("citizen-zhang") if not p.enabled} == {
        ("accepted", "wechat")
    }

    before = [
        dict(r) for r in await pool.fetch("SELECT * FROM notification_preferences ORDER BY purpose, channel")
    ]
    for bad in (
        ("nonesuch", "sms"),
        ("submitted", "fax"),
        ("submitted", "inbox"),
        ("new_task", "wechat"),  # officers' notices have no WeChat template
    ):
        with pytest.raises(InvalidPreferenceError):
            await contacts.set_preferences("citizen-zhang", [("mailed", "push", False), (*bad, False)])
    with pytest.raises(InvalidPreferenceError, match="twice"):
        await contacts.set_preferences("citizen-zhang", [("mailed", "push", False), ("mailed", "push", True)])
    after = [
        dict(r) for r in await pool.fetch("SELECT * FROM notification_preferences ORDER BY purpose, channel")
    ]
    assert after == before


def key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


async def put_row(pool: asyncpg.Pool, name: str, state: str, created_at: datetime, **columns: Any) -> str:
    """One outbox row, as the policy wrote it and the dispatcher left it."""
    k = key(name)
    await pool.execute(
        "INSERT INTO notification_outbox (key, purpose, recipient_kind, recipient, variables, urgent, "
        "occurred_at, state, next_attempt_at, created_at) "
        "VALUES ($1, 'accepted', 'citizen', 'citizen-zhang', $4, false, $2, $3, $2, $2)",
        k,
        created_at,
        state,
        '{"case_number": "A-1"}',
    )
    for column, value in columns.items():
        await pool.execute(f"UPDATE notification_outbox SET {column} = $2 WHERE key = $1", k, value)
    return k


async def dead_row(pool: asyncpg.Pool, name: str, created_at: datetime = T0) -> str:
    k = await put_row(
        pool,
        name,
        "dead",
        created_at,
        attempts=2,
        channel="sms",
        tried_channels=["wechat", "sms"],
        last_error="aliyun: isv.MOBILE_NUMBER_ILLEGAL",
        claim=uuid.uuid4(),
        deferred="quiet hours",
        unsettled=["aliyun"],
    )
    for attempt, (channel, provider, outcome) in enumerate(
        [("wechat", "wechat", "fail_over"), ("sms", "aliyun", "drop")], 1
    ):
        await pool.execute(
            "INSERT INTO notification_attempts (key, attempt, channel, provider, outcome, detail, at) "
            "VALUES ($1, $2, $3, $4, $5, 'refused', $6)",
            k,
            attempt,
            channel,
            provider,
            outcome,
            created_at + timedelta(minutes=attempt),
        )
    return k


async def test_only_a_dead_notification_is_redriven_and_its_history_stays(pool: asyncpg.Pool) -> None:
    clock = Clock()
    clock.now = T0 + timedelta(days=1)
    admin = OutboxAdmin(pool, clock)
    dead = await dead_row(pool, "dead")
    pending = await put_row(pool, "pending", "pending", T0)
    delivered = await put_row(pool, "delivered", "delivered", T0, delivered_at=T0)

    with pytest.raises(NotificationNotFoundError):
        await admin.redrive(key("nonesuch"))
    for alive in (pending, delivered):
        unchanged = dict(await pool.fetchrow("SELECT * FROM notification_outbox WHERE key = $1", alive))
        with pytest.raises(NotificationNotDeadError):
            await admin.redrive(alive)
        assert (
            dict(await pool.fetchrow("SELECT * FROM notification_outbox WHERE key = $1", alive)) == unchanged
        )

    row = await admin.redrive(dead)
    assert (row.state, row.channel, row.tried_channels, row.deferred) == ("pending", None, [], None)
    assert (row.next_attempt_at, row.attempts) == (clock.now, 2)  # the attempt numbers go on from 3
    assert row.last_error == "aliyun: isv.MOBILE_NUMBER_ILLEGAL"
    stored = await pool.fetchrow("SELECT claim, attempt_base FROM notification_outbox WHERE key = $1", dead)
    assert (stored["claim"], stored["attempt_base"]) == (None, 2)  # counting to the dead letter restarts
    # Aliyun never said whether the last SMS went out: the dispatcher still asks before sending again.
    assert await pool.fetchval("SELECT unsettled FROM notification_outbox WHERE key = $1", dead) == ["aliyun"]
    history = await admin.history(dead)
    assert [(a.attempt, a.provider, a.outcome) for a in history.attempts] == [
        (1, "wechat", "fail_over"),
        (2, "aliyun", "drop"),
    ]
    assert history.variables == {"case_number": "A-1"}
    with pytest.raises(NotificationNotDeadError):
        await admin.redrive(dead)  # pending again now
    with pytest.raises(NotificationNotFoundError):
        await admin.history(key("nonesuch"))


async def test_many_are_redriven_at_once_and_the_list_pages_newest_first(pool: asyncpg.Pool) -> None:
    admin = OutboxAdmin(pool, Clock())
    deads = [await dead_row(pool, f"dead-{i}", T0 + timedelta(minutes=i)) for i in range(5)]
    pending = await put_row(pool, "pending", "pending", T0 + timedelta(minutes=9))
    await put_row(pool, "skipped", "skipped", T0 - timedelta(days=3))

    summary = await admin.summary()
    assert (summary.pending, summary.delivered, summary.dead, summary.skipped) == (1, 0, 5, 1)
    assert summary.oldest_pending_due == T0 + timedelta(minutes=9)

    seen: list[str] = []
    before = None
    while True:
        page = await admin.list("dead", limit=2, before=before)
        seen += [r.key for r in page.items]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == deads[::-1]
    assert [r.state for r in (await admin.list()).items] == ["pending", *["dead"] * 5, "skipped"]

    assert await admin.redrive_many([*deads[:3], pending, key("nonesuch")]) == 3
    summary = await admin.summary()
    assert (summary.pending, summary.dead) == (4, 2)
    assert summary.oldest_pending_due == T0  # the re-driven are due now, by the clock
    assert await admin.redrive_many(deads[:3]) == 0
