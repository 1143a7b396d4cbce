"""What bench/notify.py's dispatcher talks to: the four fake providers, and the real channels aimed at them.

The fakes run each in a process of its own (or all in threads of the caller). Their
handlers are the tests' own (tests/fakes): the same request and response shapes the
channels' SDKs meet in the integration tests. Only the server around them and the SMS
gateways' record are made for volume here. The server is aiohttp's on an event loop,
not the tests' thread per connection: that one cost the machine 0.5 ms of CPU per
request, a quarter of everything a notification cost, which no real provider puts on
our machine. Its listen backlog takes a batch of hundreds of new connections, no copy
of every request is kept, and the sends are indexed by number, so that a lookup reads
one number's sends and not all of them.

The channels are the shipped ones, each wrapped to time its calls.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from aiohttp import web
from google.auth.credentials import AnonymousCredentials

from backend.notify_settings import load_notification_settings
from notifications.channels.aliyun_sms import AliyunSmsChannel, AliyunSmsConfig
from notifications.channels.base import Delivery, Message
from notifications.channels.fcm import FcmChannel, FcmConfig
from notifications.channels.tencent_sms import TencentSmsChannel, TencentSmsConfig
from notifications.channels.wechat import WechatChannel, WechatConfig
from notifications.dispatcher import Channels
from tests.fakes.aliyun_sms import AliyunSmsGateway
from tests.fakes.fcm import FakeFcm, FcmState
from tests.fakes.loopback import JsonHandler, Received
from tests.fakes.sms_script import SLOW, Sent, SmsGateway
from tests.fakes.tencent_sms import TencentSmsGateway
from tests.fakes.wechat import FakeWechat, WechatState

KINDS = ("fcm", "wechat", "aliyun", "tencent")


@dataclass(frozen=True, slots=True)
class FakesConfig:
    """What every fake needs to know before it serves: the chaos and the scripted refusals."""

    sms_failure_rate: float
    slow_seconds: float
    fcm_project: str
    wechat_refusals: dict[str, int] = field(default_factory=dict)  # openid -> how many 43101 answers first
    unregistered: tuple[str, ...] = ()  # installation ids FCM answers UNREGISTERED


class IndexedSmsGateway(SmsGateway):
    """The tests' gateway, with its sends also kept per number: a lookup reads only that number's."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._by_phone: dict[str, list[Sent]] = {}
        self.calls: Counter[str] = Counter()  # codes answered, SERVER_ERROR and SLOW included
        self.stalled = False

    def record(self, phone: str, template: str, params: object, key: str, code: str) -> None:
        sent = Sent(phone, template, params, key, code, code in (self.ok_code, SLOW), self.clock())
        with self._lock:
            self.sent.append(sent)
            self._by_phone.setdefault(phone, []).append(sent)
            self.calls[code] += 1

    def delivered_to(self, same_phone: Callable[[str], bool]) -> list[Sent]:
        with self._lock:
            found = [s for phone, sends in self._by_phone.items() if same_phone(phone) for s in sends]
        return sorted((s for s in found if s.delivered), key=lambda s: s.at)

    def stall(self) -> None:
        """Hold this answer back `slow_seconds`: the server sees `stalled` and sleeps its loop."""
        self.stalled = True


def _state(kind: str, config: FakesConfig, seed: int) -> Any:
    if kind == "fcm":
        fcm = FcmState(project=config.fcm_project)
        for fid in config.unregistered:
            fcm.fail(fid, "UNREGISTERED")
        return fcm
    if kind == "wechat":
        wechat = WechatState()
        for openid, times in config.wechat_refusals.items():
            wechat.fail(openid, *[43101] * times)
        return wechat
    ok = "OK" if kind == "aliyun" else "Ok"
    return IndexedSmsGateway(ok, config.sms_failure_rate, seed, config.slow_seconds)


_HANDLERS: dict[str, type[JsonHandler]] = {
    "fcm": FakeFcm,
    "wechat": FakeWechat,
    "aliyun": AliyunSmsGateway,
    "tencent": TencentSmsGateway,
}


def received_per_key(kind: str, state: Any) -> Counter[str]:
    """Messages that reached a person, per key: what the fake accepted (a slow SMS answer included)."""
    if kind == "fcm":
        return Counter(m["data"]["key"] for m in state.delivered)
    if kind == "wechat":
        return Counter(dict(parse_qsl(urlsplit(m["page"]).query))["key"] for m in state.delivered)
    return state.delivered_per_key()  # type: ignore[no-any-return]


class _Fake:
    """One fake provider, served by aiohttp from a thread of its own running its own event loop.

    The handler's `answer` is called as the tests' server calls it, on the loop's thread; a slow
    SMS answer is held back with a sleep of the loop, not of a thread, so it holds no worker.
    """

    def __init__(self, kind: str, config: FakesConfig, seed: int) -> None:
        self.kind = kind
        self.state = _state(kind, config, seed)
        # The tests' handler, bound to this fake's state, as an answerer: `answer` reads only
        # `self.state`, so the instance needs none of the stdlib server's set-up.
        bound = type(f"Bench{_HANDLERS[kind].__name__}", (_HANDLERS[kind],), {"state": self.state})
        self._handler: JsonHandler = object.__new__(bound)
        self.requests = self.unfinished = 0
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        ready: Future[str] = Future()
        self.thread = threading.Thread(target=self._run, args=(ready,), name=f"fake:{kind}", daemon=True)
        self.thread.start()
        self.url = ready.result(10)

    def _run(self, ready: Future[str]) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start(ready))
        except BaseException as exc:
            ready.set_exception(exc)
            return
        self.loop.run_forever()
        if self._runner is not None:
            self.loop.run_until_complete(self._runner.cleanup())
        self.loop.close()

    async def _start(self, ready: Future[str]) -> None:
        app = web.Application(client_max_size=1 << 20)
        app.router.add_route("*", "/{tail:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # A batch opens hundreds of connections at once: the default backlog would drop SYNs.
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set_result(f"http://127.0.0.1:{port}")

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        parts = urlsplit(request.raw_path)
        received = Received(
            request.method, parts.path, parse_qs(parts.query), dict(request.headers), await request.read()
        )
        self.requests += 1
        reply = self._handler.answer(received)
        if getattr(self.state, "stalled", False):  # a slow SMS answer: sent, answered late
            self.state.stalled = False
            await asyncio.sleep(self.state.slow_seconds)
        if request.transport is None or request.transport.is_closing():
            self.unfinished += 1  # the client gave up waiting
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        return web.Response(status=reply.status, body=body, headers=headers)

    def report(self) -> dict[str, Any]:
        """Read on the fake's own loop, so that no request changes the record under it."""
        return asyncio.run_coroutine_threadsafe(self._report(), self.loop).result(30)

    async def _report(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "unfinished": self.unfinished,
            "per_key": dict(received_per_key(self.kind, self.state)),
            "sms_calls": dict(getattr(self.state, "calls", {})),
        }

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _serve(kind: str, config: FakesConfig, seed: int, conn: Connection) -> None:
    """A fake's own process: serve, answer `report`, end on `stop`."""
    fake = _Fake(kind, config, seed)
    conn.send(fake.url)
    while (command := conn.recv()) != "stop":
        if command == "report":
            conn.send(fake.report())
    fake.stop()


@dataclass
class Fakes:
    urls: dict[str, str]
    pids: dict[str, int]  # per fake, in process mode; empty in thread mode
    _report: Callable[[], dict[str, dict[str, Any]]]
    fcm_project: str

    def report(self) -> dict[str, dict[str, Any]]:
        """Per fake: requests served, messages received per key, and (SMS) codes answered."""
        return self._report()


@contextmanager
def running(config: FakesConfig, *, processes: bool) -> Iterator[Fakes]:
    """The four fakes on free loopback ports; `processes` puts each in a process of its own."""
    seeds = {kind: n for n, kind in enumerate(KINDS)}  # the two gateways fail independently
    if not processes:
        fakes = {kind: _Fake(kind, config, seeds[kind]) for kind in KINDS}
        try:
            urls = {kind: f.url for kind, f in fakes.items()}
            yield Fakes(urls, {}, lambda: {k: f.report() for k, f in fakes.items()}, config.fcm_project)
        finally:
            for fake in fakes.values():
                fake.stop()
        return
    context = multiprocessing.get_context("spawn")
    pipes: dict[str, Connection] = {}
    children: dict[str, Any] = {}
    try:
        for kind in KINDS:
            mine, theirs = context.Pipe()
            child = context.Process(target=_serve, args=(kind, config, seeds[kind], theirs), daemon=True)
            child.start()
            pipes[kind], children[kind] = mine, child
        urls = {kind: pipe.recv() for kind, pipe in pipes.items()}

        def report() -> dict[str, dict[str, Any]]:
            for pipe in pipes.values():
                pipe.send("report")
            return {kind: pipe.recv() for kind, pipe in pipes.items()}

        pids = {kind: child.pid for kind, child in children.items() if child.pid is not None}
        yield Fakes(urls, pids, report, config.fcm_project)
    finally:
        for pipe in pipes.values():
            with suppress(OSError):
                pipe.send("stop")
        for child in children.values():
            child.join(10)
            if child.is_alive():
                child.kill()


def merged(report: dict[str, dict[str, Any]]) -> Counter[str]:
    """Messages received per key across every fake."""
    total: Counter[str] = Counter()
    for fake in report.values():
        total.update(fake["per_key"])
    return total


# --- the real channels, pointed at the fakes ------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q / 100 * len(ordered)), len(ordered) - 1)]


class CallLog:
    """Wall time of every channel call, per provider and kind (send, lookup)."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self.outcomes: dict[str, Counter[str]] = {}

    def add(self, what: str, seconds: float, outcome: str) -> None:
        self.seconds.setdefault(what, []).append(seconds)
        self.outcomes.setdefault(what, Counter())[outcome] += 1

    def figures(self) -> dict[str, Any]:
        return {
            what: {
                "calls": len(times),
                "p50_ms": 1000 * percentile(times, 50),
                "p99_ms": 1000 * percentile(times, 99),
                "sum_s": sum(times),
                "outcomes": dict(self.outcomes[what]),
            }
            for what, times in sorted(self.seconds.items())
        }


class Timed:
    """A channel that logs the wall time of each send; the dispatcher sees the channel it wraps.

    With a `cap`, at most that many calls are in the channel at once, and a call's time counts
    from when it got in: `--cap-in-flight`, a proposal measured here, not production's shape.
    """

    def __init__(self, inner: Any, calls: CallLog, cap: int = 0) -> None:
        self.inner, self.calls, self.name = inner, calls, inner.name
        self.gate: AbstractAsyncContextManager[Any] = asyncio.Semaphore(cap) if cap else nullcontext()

    async def send(self, message: Message) -> Delivery:
        async with self.gate:
            started = time.perf_counter()
            delivery: Delivery = await self.inner.send(message)
        outcome = delivery.outcome.value + (" (unclear)" if delivery.ambiguous else "")
        self.calls.add(f"{self.name} send", time.perf_counter() - started, outcome)
        return delivery

    async def aclose(self) -> None:
        await self.inner.aclose()


class TimedReconciling(Timed):
    """The same for an SMS provider, whose lookups (`was_sent`) the dispatcher makes too."""

    async def was_sent(self, key: str, address: str, since: datetime) -> bool | None:
        async with self.gate:
            started = time.perf_counter()
            found: bool | None = await self.inner.was_sent(key, address, since)
        self.calls.add(f"{self.name} lookup", time.perf_counter() - started, str(found))
        return found


def channels_to(fakes: Fakes, sms_timeout: float, calls: CallLog, cap: int = 0) -> Channels:
    """The real channels, built as backend/notify.py builds them, pointed at the fakes.

    WeChat and FCM keep the shipped send timeout (CITYPASS_NOTIFY_SEND_TIMEOUT_SECONDS's default);
    the SMS providers get `sms_timeout`, short, so that a slow answer costs a pass little.
    """
    a, t = urlsplit(fakes.urls["aliyun"]), urlsplit(fakes.urls["tencent"])
    credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
    timeout = load_notification_settings({}).send_timeout
    wechat = WechatChannel(
        WechatConfig("wx-test-app", "s3cret", base_url=fakes.urls["wechat"], timeout_s=timeout)
    )
    push = FcmChannel(
        FcmConfig(fakes.fcm_project, credentials, endpoint=fakes.urls["fcm"], timeout_s=timeout)
    )
    aliyun = AliyunSmsChannel(AliyunSmsConfig("ak", "sk", "长沙通", a.netloc, a.scheme, sms_timeout))
    tencent = TencentSmsChannel(
        TencentSmsConfig("id", "key", "1400000000", "长沙通", endpoint=t.netloc, protocol=t.scheme,
                         timeout_s=sms_timeout)
    )  # fmt: skip
    return Channels(
        wechat=Timed(wechat, calls, cap),
        push=Timed(push, calls, cap),
        sms=[TimedReconciling(aliyun, calls, cap), TimedReconciling(tencent, calls, cap)],
    )


async def channel_costs(sms_timeout: float, calls: int, in_flight: int) -> dict[str, Any]:
    """CPU of this process per send, each channel on its own, one at a time and `in_flight` at once.

    The fakes answer every call at once here (no failures), so the figures are the clients'
    own cost: SDK, HTTP client, threads. Process time counts every thread of this process.
    """
    config = FakesConfig(0.0, 2 * sms_timeout, f"citypass-bench-{secrets.token_hex(3)}")
    found: dict[str, Any] = {}
    with running(config, processes=True) as fakes:
        channels = channels_to(fakes, sms_timeout, CallLog())
        assert channels.wechat is not None and channels.push is not None
        sms = {c.name: c for c in channels.sms}
        every = {
            "wechat": (channels.wechat, "openid-cost", "tmpl", {"thing1": "食品经营许可"}),
            "fcm": (channels.push, "fid-cost", "", {}),
            "aliyun-sms": (sms["aliyun-sms"], "+8613900000001", "SMS_0001", {"name": "张*"}),
            "tencent-sms": (sms["tencent-sms"], "+8613900000001", "1000001", {"1": "张*"}),
        }
        for name, (channel, address, template, variables) in every.items():
            found[name] = {}
            for at_once in (1, in_flight):
                await _sends(channel, address, template, variables, 20, at_once)  # connections, token
                cpu, wall = time.process_time(), time.perf_counter()
                outcomes = await _sends(channel, address, template, variables, calls, at_once)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                found[name][f"in_flight_{at_once}"] = {
                    "cpu_ms_per_call": 1000 * cpu / calls,
                    "calls_per_s": calls / wall,
                    "outcomes": dict(outcomes),
                }
        for channel in (channels.wechat, channels.push, *channels.sms):
            await channel.aclose()  # type: ignore[attr-defined]
    return found


async def _sends(
    channel: Any, address: str, template: str, variables: dict[str, str], count: int, in_flight: int
) -> Counter[str]:
    """`count` sends through `channel`, `in_flight` at a time; their outcomes."""
    gate = asyncio.Semaphore(in_flight)

    async def one() -> str:
        async with gate:
            key = secrets.token_hex(16)
            message = Message(key, address, template, variables, "标题", "正文", {"purpose": "accepted"})
            delivery: Delivery = await channel.send(message)
            return delivery.outcome.value

    return Counter(await asyncio.gather(*(one() for _ in range(count))))
