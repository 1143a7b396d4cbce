"""What the two fake SMS gateways share: the script of answers, chaos, and the record of sends.

A gateway's `state` is an `SmsGateway`. Per phone number a test queues codes to answer
(each N times) before the gateway falls back to success; on top, a seeded failure rate
makes some calls fail at random, half as HTTP 5xx, half as an answer slower than the
client waits for. A slow answer still delivers the message (the provider sent it, the
caller gave up waiting), which is exactly the case the idempotency key is for.

Lookups (the providers' per-number send records) list the delivered sends with our key
and the gateway's time of sending; they fail as queued with `fail_lookups`, and at the
same failure rate as sends.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from tests.fakes.loopback import JsonHandler, Received

SERVER_ERROR = "<http 500>"  # scripted pseudo-code: answer HTTP 500, send nothing
SLOW = "<slow>"  # scripted pseudo-code: send, but answer after `slow_seconds`

# The carrier's report on a delivered send, as the lookups show it.
REPORT_SUCCESS = "success"
REPORT_FAIL = "fail"
REPORT_PENDING = "pending"  # no report yet


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Sent:
    """One call as the gateway saw it, and what it did with it."""

    phone: str
    template: str
    params: object  # a dict (Aliyun TemplateParam) or a list (Tencent TemplateParamSet)
    key: str  # OutId / SessionContext
    code: str  # the code answered, or SERVER_ERROR / SLOW
    delivered: bool
    at: datetime  # by the gateway's clock
    report: str = REPORT_SUCCESS


@dataclass
class SmsGateway:
    ok_code: str
    failure_rate: float = 0.0
    seed: int = 0
    slow_seconds: float = 2.0
    clock: Callable[[], datetime] = utc_now  # a test moves it to put sends in the past
    sent: list[Sent] = field(default_factory=list)
    _scripts: dict[str, deque[str]] = field(default_factory=dict)
    _lookup_failures: deque[str] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def script(self, phone: str, code: str, times: int = 1) -> None:
        """Answer the next `times` calls for `phone` with `code`."""
        with self._lock:
            self._scripts.setdefault(phone, deque()).extend([code] * times)

    def fail_lookups(self, code: str = SERVER_ERROR, times: int = 1) -> None:
        """Answer the next `times` lookups, for any number, with `code` (SERVER_ERROR, SLOW, an error)."""
        with self._lock:
            self._lookup_failures.extend([code] * times)

    def next_code(self, phone: str) -> str:
        with self._lock:
            return self._next(self._scripts.get(phone))

    def next_lookup_code(self) -> str:
        with self._lock:
            return self._next(self._lookup_failures)

    def _next(self, queued: deque[str] | None) -> str:
        if queued:
            return queued.popleft()
        if self.failure_rate and self._random.random() < self.failure_rate:
            return SERVER_ERROR if self._random.random() < 0.5 else SLOW
        return self.ok_code

    def record(self, phone: str, template: str, params: object, key: str, code: str) -> None:
        delivered = code in (self.ok_code, SLOW)
        at = self.clock()
        with self._lock:
            self.sent.append(Sent(phone, template, params, key, code, delivered, at))

    def report(self, key: str, status: str) -> None:
        """The carrier's report arrives for every delivered send carrying `key`."""
        with self._lock:
            for sent in self.sent:
                if sent.key == key and sent.delivered:
                    sent.report = status

    def delivered_to(self, same_phone: Callable[[str], bool]) -> list[Sent]:
        """Delivered sends to one number, oldest first; each fake knows its number formats."""
        with self._lock:
            return [sent for sent in self.sent if sent.delivered and same_phone(sent.phone)]

    def delivered_per_key(self) -> Counter[str]:
        with self._lock:
            return Counter(sent.key for sent in self.sent if sent.delivered)

    def stall(self) -> None:
        time.sleep(self.slow_seconds)


def header(request: Received, name: str) -> str | None:
    """Header names arrive as each SDK spelled them."""
    return next((value for key, value in request.headers.items() if key.lower() == name), None)


class SmsGatewayHandler(JsonHandler):
    """Base for both fakes: a client that gave up on a slow answer is no error here."""

    state: ClassVar[SmsGateway]

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
