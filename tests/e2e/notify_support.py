"""What the delivery tests share: the fake providers on loopback, `citypass worker` processes,
and SQL on the server's schema for what no endpoint does (seeding an outbox, reading claims).

The fakes run in threads of the test process and record what reached them; the server
and its workers are real processes pointed at them by the environment, as in production.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from notifications.intents import PURPOSE_VARIABLES, Purpose
from notifications.templates import TEMPLATES
from tests.dbutil import ROOT, database_url
from tests.fakes.aliyun_sms import AliyunSmsGateway, aliyun_gateway
from tests.fakes.fcm import FakeFcm, FcmState
from tests.fakes.loopback import serving
from tests.fakes.sms_script import SmsGateway
from tests.fakes.tencent_sms import TencentSmsGateway, tencent_gateway
from tests.fakes.wechat import FakeWechat, WechatState

# The channels wait SEND_TIMEOUT_SECONDS for an answer (CITYPASS_NOTIFY_SEND_TIMEOUT_SECONDS): a slow
# answer takes longer, so that the worker gives up on a message the gateway did send.
SEND_TIMEOUT_SECONDS = 0.5
SLOW_SECONDS = 1.5


@dataclass
class Providers:
    fcm: FcmState
    wechat: WechatState
    aliyun: SmsGateway
    tencent: SmsGateway
    env: dict[str, str]  # CITYPASS_* pointing every channel at these fakes

    def received_per_key(self) -> Counter[str]:
        """Messages that reached a person, per notification key, over every channel and provider."""
        keys = [m["data"]["key"] for m in list(self.fcm.delivered)]
        # The WeChat fake records even a request whose body never came (a worker killed between
        # headers and body) as an empty message; the real API refuses it, and it reaches nobody.
        keys += [page_key(m) for m in list(self.wechat.delivered) if m]
        counts = Counter(keys)
        for gateway in (self.aliyun, self.tencent):
            counts.update(gateway.delivered_per_key())
        return counts

    def fail_sms(self, rate: float) -> None:
        """Make both SMS gateways fail `rate` of their calls: half 5xx, half slow answers that still send."""
        self.aliyun.failure_rate = self.tencent.failure_rate = rate


def page_key(message: dict[str, Any]) -> str:
    """Our key, as a WeChat subscription message carries it: in the query of the page it opens."""
    return str(dict(parse_qsl(urlsplit(message["page"]).query))["key"])


@contextmanager
def fake_providers() -> Iterator[Providers]:
    FakeFcm.state = FcmState(project=f"citypass-{uuid.uuid4().hex[:8]}")
    FakeWechat.state = WechatState(appid=f"wx{uuid.uuid4().hex[:16]}", secret=uuid.uuid4().hex)
    AliyunSmsGateway.state = aliyun_gateway(slow_seconds=SLOW_SECONDS)
    TencentSmsGateway.state = tencent_gateway(slow_seconds=SLOW_SECONDS)
    with ExitStack() as stack:
        fcm, wechat, aliyun, tencent = (
            stack.enter_context(serving(handler))
            for handler in (FakeFcm, FakeWechat, AliyunSmsGateway, TencentSmsGateway)
        )
        env = {
            "CITYPASS_FCM_PROJECT_ID": FakeFcm.state.project,
            "CITYPASS_FCM_ENDPOINT": fcm.url,
            "CITYPASS_FCM_CREDENTIALS": "anonymous",
            "CITYPASS_WECHAT_APPID": FakeWechat.state.appid,
            "CITYPASS_WECHAT_SECRET": FakeWechat.state.secret,
            "CITYPASS_WECHAT_BASE_URL": wechat.url,
            "CITYPASS_ALIYUN_SMS_ACCESS_KEY_ID": "fake-access-key",
            "CITYPASS_ALIYUN_SMS_ACCESS_KEY_SECRET": "fake-secret",
            "CITYPASS_ALIYUN_SMS_ENDPOINT": urlsplit(aliyun.url).netloc,
            "CITYPASS_ALIYUN_SMS_PROTOCOL": "http",
            "CITYPASS_TENCENT_SMS_SECRET_ID": "fake-secret-id",
            "CITYPASS_TENCENT_SMS_SECRET_KEY": "fake-secret-key",
            "CITYPASS_TENCENT_SMS_APP_ID": "1400000000",
            "CITYPASS_TENCENT_SMS_ENDPOINT": urlsplit(tencent.url).netloc,
            "CITYPASS_TENCENT_SMS_PROTOCOL": "http",
        }
        states = (FakeFcm.state, FakeWechat.state, AliyunSmsGateway.state, TencentSmsGateway.state)
        yield Providers(*states, env)


@dataclass
class Worker:
    """One `citypass worker` (consumers, timers and a dispatcher) or `citypass dispatcher` process."""

    process: subprocess.Popen[bytes]
    log_path: Path
    ready: str = "worker running"  # what its log says once it runs

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a machine going down would: nothing is recorded on the way out."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def launch_worker(tmp: Path, schema: str, env: dict[str, str], command: str = "worker") -> Worker:
    """Start `citypass worker` (or `dispatcher`) on the schema; `wait_until_running` before relying on it."""
    log_path = tmp / f"{command}-{uuid.uuid4().hex[:8]}.log"
    full_env = {
        **os.environ,
        "CITYPASS_DATABASE_URL": database_url(),
        "CITYPASS_DB_SCHEMA": schema,
        "CITYPASS_ENV": "dev",  # the same dev data keys as the server: it opens the cases' phone numbers
        "CITYPASS_CONSUMER_POLL_SECONDS": "0.2",
        "CITYPASS_TIMER_POLL_SECONDS": "0.2",
        "CITYPASS_LOG_LEVEL": "INFO",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", command],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(process, log_path, f"{command} running")


def wait_until_running(worker: Worker, timeout: float = 60.0) -> Worker:
    deadline = time.monotonic() + timeout
    while worker.ready not in worker.log():
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.process.returncode}:\n{worker.log()}")
        if time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"worker did not start within {timeout}s:\n{worker.log()}")
        time.sleep(0.1)
    return worker


class SchemaDb:
    """One connection to the server's schema, for synchronous tests, on a loop of its own."""

    def __init__(self, schema: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection = self._loop.run_until_complete(
            asyncpg.connect(database_url(), server_settings={"search_path": schema})
        )

    def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return list(self._loop.run_until_complete(self._conn.fetch(query, *args)))

    def fetchval(self, query: str, *args: Any) -> Any:
        return self._loop.run_until_complete(self._conn.fetchval(query, *args))

    def in_one_transaction(self, statements: Sequence[tuple[str, Sequence[tuple[Any, ...]]]]) -> None:
        """Each statement with its argument rows, all committed together."""

        async def go() -> None:
            async with self._conn.transaction():
                for query, rows in statements:
                    await self._conn.executemany(query, rows)

        self._loop.run_until_complete(go())

    def close(self) -> None:
        self._loop.run_until_complete(self._conn.close())
        self._loop.close()


# Display values as the policy writes them; each purpose takes those its templates use.
_SAMPLE = {
    "case_number": "430100202610080000001",
    "item_name": "企业开办一件事",
    "occurred_at": "2026年10月8日 09:00",
    "applicant_name": "张*",
    "receipt_number": "SL-0001",
    "acceptance_kind": "受理",
    "deadline": "2026年10月30日",
    "note": "",
    "result": "准予办理",
    "reason": "",
    "next_step": "办理结果将以电子证照送达。",
}


@dataclass(frozen=True)
class Pending:
    """A notification to seed: for a citizen, about a real case (whose phone SMS goes to)."""

    purpose: Purpose
    subject: str
    case_id: uuid.UUID
    key: str = field(default_factory=lambda: secrets.token_hex(32))  # 64 hex digits, as intent keys


_OUTBOX = (
    "INSERT INTO notification_outbox (key, purpose, recipient_kind, recipient, case_id, variables, urgent, "
    "occurred_at, next_attempt_at) VALUES ($1, $2, 'citizen', $3, $4, $5::jsonb, false, $6, $6)"
)
_DEVICE = (
    "INSERT INTO push_devices (installation_id, subject, role, platform, registered_at, last_seen_at) "
    "VALUES ($1, $2, 'citizen', 'android', $3, $3)"
)
_GRANT = "INSERT INTO wechat_grants (subject, openid, template_id, granted_at) VALUES ($1, $2, $3, $4)"


def seed_outbox(
    db: SchemaDb,
    pending: Sequence[Pending],
    devices: dict[str, str],  # subject -> installation id
    openids: dict[str, str],  # subject -> openid with one grant for its notification's template
) -> None:
    """Devices, grants and pending notifications, all visible to the dispatcher at once."""
    now = datetime.now(UTC)
    purposes = {p.subject: p.purpose for p in pending}
    rows = [
        (
            p.key,
            p.purpose.value,
            p.subject,
            p.case_id,
            json.dumps({name: _SAMPLE[name] for name in PURPOSE_VARIABLES[p.purpose]}, ensure_ascii=False),
            now,
        )
        for p in pending
    ]
    db.in_one_transaction(
        [
            (_DEVICE, [(fid, subject, now - timedelta(days=1)) for subject, fid in devices.items()]),
            (
                _GRANT,
                [
                    (subject, openid, TEMPLATES[purposes[subject], "wechat"].template_id, now)
                    for subject, openid in openids.items()
                ],
            ),
            (_OUTBOX, rows),
        ]
    )


def pending_count(db: SchemaDb) -> int:
    return int(db.fetchval("SELECT count(*) FROM notification_outbox WHERE state = 'pending'"))


def claimed_keys(db: SchemaDb) -> set[str]:
    """Pending notifications a dispatcher holds: claimed, their outcome not recorded yet."""
    claimed = db.fetch("SELECT key FROM notification_outbox WHERE state = 'pending' AND claim IS NOT NULL")
    return {r["key"] for r in claimed}


_OUTCOMES = """
SELECT o.key, o.state, o.channel, o.attempts, count(a.key) AS recorded,
       count(a.key) FILTER (WHERE a.channel = o.channel AND a.outcome = 'done') AS done
FROM notification_outbox o LEFT JOIN notification_attempts a ON a.key = o.key
WHERE o.key = ANY($1::text[])
GROUP BY o.key
"""


def outcomes(db: SchemaDb, keys: Collection[str]) -> list[dict[str, Any]]:
    """Each notification's end: state, channel, attempts counted and recorded, "done" ones on its channel."""
    return [dict(r) for r in db.fetch(_OUTCOMES, list(keys))]


def attempt_details(db: SchemaDb, keys: Collection[str]) -> list[tuple[str, str, str, str]]:
    """(channel, provider, outcome, detail) of every attempt recorded for these notifications."""
    found = db.fetch(
        "SELECT channel, provider, outcome, detail FROM notification_attempts WHERE key = ANY($1::text[])",
        list(keys),
    )
    return [(r["channel"], r["provider"], r["outcome"], r["detail"]) for r in found]
