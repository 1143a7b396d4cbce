"""What the dispatcher tests share: the four fake providers on loopback, real channels, a movable clock."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from eventsourcing.persistence import Mapper, StoredEvent
from google.auth.credentials import AnonymousCredentials

from notifications.address_book import PhoneDigest
from notifications.channels.aliyun_sms import AliyunSmsChannel, AliyunSmsConfig
from notifications.channels.fcm import FcmChannel, FcmConfig
from notifications.channels.tencent_sms import TencentSmsChannel, TencentSmsConfig
from notifications.channels.wechat import WechatChannel, WechatConfig
from notifications.dispatcher import Channels, Dispatcher, DispatchRules
from notifications.intents import Purpose
from notifications.templates import TEMPLATES
from tests.fakes.aliyun_sms import AliyunSmsGateway, aliyun_gateway
from tests.fakes.fcm import FakeFcm, FcmState
from tests.fakes.loopback import serving
from tests.fakes.sms_script import SmsGateway
from tests.fakes.tencent_sms import TencentSmsGateway, tencent_gateway
from tests.fakes.wechat import FakeWechat, WechatState

TIMEOUT_S = 0.3  # the SMS fakes' SLOW answers take longer than this
NOON = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # 12:00 in Changsha


class MovableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Fakes:
    fcm: FcmState
    wechat: WechatState
    aliyun: SmsGateway
    tencent: SmsGateway
    channels: Channels
    clock: MovableClock  # the dispatcher's, the channels' and the gateways' time
    closed: bool = False  # by a dispatcher's stop(): the channels cannot be closed twice

    def received_per_key(self) -> dict[str, int]:
        """Messages that reached a person, per key, over every channel and provider."""
        counts: dict[str, int] = {}
        keys = [m["data"]["key"] for m in self.fcm.delivered]
        keys += [dict(_query(m["page"]))["key"] for m in self.wechat.delivered]
        for gateway in (self.aliyun, self.tencent):
            keys += [k for k, n in gateway.delivered_per_key().items() for _ in range(n)]
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        return counts


def _query(page: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(urlsplit(page).query)


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    FakeFcm.state = FcmState(project=f"citypass-{uuid.uuid4().hex[:8]}")
    FakeWechat.state = WechatState()
    clock = MovableClock(NOON)
    AliyunSmsGateway.state = aliyun_gateway(slow_seconds=TIMEOUT_S * 3)
    TencentSmsGateway.state = tencent_gateway(slow_seconds=TIMEOUT_S * 3)
    AliyunSmsGateway.state.clock = TencentSmsGateway.state.clock = clock
    with (
        serving(FakeFcm) as fcm,
        serving(FakeWechat) as wechat,
        serving(AliyunSmsGateway) as aliyun,
        serving(TencentSmsGateway) as tencent,
    ):
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        a, t = urlsplit(aliyun.url), urlsplit(tencent.url)
        channels = Channels(
            wechat=WechatChannel(
                WechatConfig(
                    FakeWechat.state.appid, FakeWechat.state.secret, base_url=wechat.url, timeout_s=2
                )
            ),
            push=FcmChannel(FcmConfig(FakeFcm.state.project, credentials, endpoint=fcm.url, timeout_s=2)),
            sms=[
                AliyunSmsChannel(AliyunSmsConfig("ak", "sk", "长沙通", a.netloc, a.scheme, TIMEOUT_S), clock),
                TencentSmsChannel(
                    TencentSmsConfig(
                        "id",
                        "key",
                        "1400000000",
                        "长沙通",
                        endpoint=t.netloc,
                        protocol=t.scheme,
                        timeout_s=TIMEOUT_S,
                    ),
                    clock,
                ),
            ],
        )
        states = (FakeFcm.state, FakeWechat.state, AliyunSmsGateway.state, TencentSmsGateway.state)
        found = Fakes(*states, channels, clock)
        yield found
        if not found.closed:
            for channel in (channels.wechat, channels.push, *channels.sms):
                await channel.aclose()  # type: ignore[union-attr]


RULES = DispatchRules(
    quiet=None,
    sms_limits=(),
    max_attempts=6,
    backoff_base=1.0,
    backoff_cap=60.0,
    batch=50,
    lanes=1,
    settle_after=timedelta(0),
)


def dispatcher(
    pool: asyncpg.Pool,
    fakes: Fakes,
    mapper: Mapper[uuid.UUID],
    decode: Callable[[StoredEvent], object] | None = None,
    **rules: Any,
) -> Dispatcher:
    return Dispatcher(
        lambda: pool,
        fakes.channels,
        replace(RULES, **rules),
        decode=decode or mapper.to_domain_event,
        phone_digest=PhoneDigest(b"k" * 32),
        clock=fakes.clock,
        rng=lambda: 0.5,
    )


async def drain(d: Dispatcher, pool: asyncpg.Pool, *, rounds: int = 200) -> None:
    """Dispatch until nothing is pending, moving the clock to each next due time."""
    clock = d.clock
    assert isinstance(clock, MovableClock)
    for _ in range(rounds):
        if await d.dispatch_once():
            continue
        due = await pool.fetchval(
            "SELECT min(next_attempt_at) FROM notification_outbox WHERE state = 'pending'"
        )
        if due is None:
            return
        clock.now = max(clock.now, due)
        await asyncio.sleep(0)
    raise AssertionError("the outbox did not drain")


async def add_device(
    pool: asyncpg.Pool, subject: str, fid: str, *, role: str = "citizen", department: str | None = None
) -> None:
    now = datetime.now(UTC) - timedelta(days=1)
    await pool.execute(
        "INSERT INTO push_devices (installation_id, subject, role, department, platform, registered_at, "
        "last_seen_at) VALUES ($1, $2, $3, $4, 'android', $5, $5)",
        fid,
        subject,
        role,
        department,
        now,
    )


def template_of(purpose: Purpose) -> str:
    return TEMPLATES[purpose, "wechat"].template_id


async def add_grants(pool: asyncpg.Pool, subject: str, openid: str, purpose: Purpose, count: int = 1) -> None:
    for _ in range(count):
        await pool.execute(
            "INSERT INTO wechat_grants (subject, openid, template_id, granted_at) VALUES ($1, $2, $3, now())",
            subject,
            openid,
            template_of(purpose),
        )


async def rows(pool: asyncpg.Pool, **where: Any) -> list[dict[str, Any]]:
    clauses = " AND ".join(f"{name} = ${n}" for n, name in enumerate(where, 1)) or "true"
    found = await pool.fetch(
        f"SELECT * FROM notification_outbox WHERE {clauses} ORDER BY key", *where.values()
    )
    return [dict(r) for r in found]


async def attempts(pool: asyncpg.Pool, key: str) -> list[tuple[str, str, str]]:
    found = await pool.fetch(
        "SELECT channel, provider, outcome FROM notification_attempts WHERE key = $1 ORDER BY attempt", key
    )
    return [(r["channel"], r["provider"], r["outcome"]) for r in found]


async def enqueue(
    pool: asyncpg.Pool,
    purpose: Purpose,
    subject: str,
    case_id: uuid.UUID | None,
    *,
    occurred_at: datetime,
    urgent: bool = False,
    variables: dict[str, str] | None = None,
    kind: str = "citizen",
    role: str | None = None,
) -> str:
    """A pending notification as the policy writes it; the variables fill every template of the purpose."""
    key = uuid.uuid4().hex
    filled = {
        "case_number": "430100202610080000001",
        "item_name": "医师执业注册",
        "occurred_at": "2026-10-08 09:00",
        "applicant_name": "张*",
        "materials": "身份证明",
        "material_count": "1",
        "due": "2026-10-15",
        "receipt_number": "SL-0001",
        "acceptance_kind": "受理",
        "deadline": "2026-10-30",
        "note": "",
        "procedure": "现场勘查",
        "reason": "",
        "expected_end": "",
        "result": "出证办结",
        "next_step": "",
        "method": "电子证照",
        "reference": "E-1",
        "instruction": "",
        "carrier": "EMS",
        "waybill_number": "EMS0001",
        "handling_unit": "市卫健委",
        "department": "市卫健委",
        **(variables or {}),
    }
    await pool.execute(
        "INSERT INTO notification_outbox (key, purpose, recipient_kind, recipient, recipient_role, case_id, "
        "variables, urgent, occurred_at, next_attempt_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $9)",
        key,
        purpose.value,
        kind,
        subject,
        role,
        case_id,
        json.dumps(filled, ensure_ascii=False),
        urgent,
        occurred_at,
    )
    return key


async def eventually(holds: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll until `holds()` is true; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not await holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.01)


async def stop(d: Dispatcher, fakes: Fakes, grace_seconds: float = 5.0) -> None:
    """Stop a started dispatcher; it closes the channels on its way out."""
    await d.stop(grace_seconds)
    fakes.closed = True
