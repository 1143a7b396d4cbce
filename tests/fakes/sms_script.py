"""What the two fake SMS gateways share: the script of answers, chaos, and the record of sends.

A gateway's `state` is an `SmsGateway`. Per phone number a test queues codes to answer
(each N times) before the gateway falls back to success; on top, a seeded failure rate
makes some calls fail at random, half as HTTP 5xx, half as an answer slower than the
client waits for. A slow answer still delivers the message (the provider sent it, the
caller gave up waiting), which is exactly the case the idempotency key is for.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import ClassVar

from tests.fakes.loopback import JsonHandler, Received

SERVER_ERROR = "<http 500>"  # scripted pseudo-code: answer HTTP 500, send nothing
SLOW = "<slow>"  # scripted pseudo-code: send, but answer after `slow_seconds`


@dataclass
class Sent:
    """One call as the gateway saw it, and what it did with it."""

    phone: str
    template: str
    params: object  # a dict (Aliyun TemplateParam) or a list (Tencent TemplateParamSet)
    key: str  # OutId / SessionContext
    code: str  # the code answered, or SERVER_ERROR / SLOW
    delivered: bool


@dataclass
class SmsGateway:
    ok_code: str
    failure_rate: float = 0.0
    seed: int = 0
    slow_seconds: float = 2.0
    sent: list[Sent] = field(default_factory=list)
    _scripts: dict[str, deque[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def script(self, phone: str, code: str, times: int = 1) -> None:
        """Answer the next `times` calls for `phone` with `code`."""
        with self._lock:
            self._scripts.setdefault(phone, deque()).extend([code] * times)

    def next_code(self, phone: str) -> str:
        with self._lock:
            queued = self._scripts.get(phone)
            if queued:
                return queued.popleft()
            if self.failure_rate and self._random.random() < self.failure_rate:
                return SERVER_ERROR if self._random.random() < 0.5 else SLOW
            return self.ok_code

    def record(self, phone: str, template: str, params: object, key: str, code: str) -> None:
        delivered = code in (self.ok_code, SLOW)
        with self._lock:
            self.sent.append(Sent(phone, template, params, key, code, delivered))

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
