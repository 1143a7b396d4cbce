"""A department's webhook receiver on 127.0.0.1, in a thread of the test process.

It keeps its port while it is down, so a sender meets a refused connection until it
comes up. It verifies every signature as a real receiver would, can refuse the next
requests with an error status, can answer slowly, and notes how many deliveries of
one subscription it was handling at once.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from backend.streams.signing import DELIVERY_HEADER, SIGNATURE_HEADER, SUBSCRIPTION_HEADER, verify_signature
from tests.fakes.loopback import LoopbackEndpoint


@dataclass(frozen=True)
class Delivery:
    """One request as the receiver saw it, and what it answered."""

    subscription: str
    delivery: str
    cursor: int
    events: list[dict[str, Any]]
    signed: bool  # the signature verified
    headers_agree: bool  # the headers name the body's subscription and delivery
    answered: int


class Receiver(LoopbackEndpoint):
    def __init__(self, secret: str, *, delay: float = 0.0) -> None:
        self.secret, self.delay = secret, delay
        self.deliveries: list[Delivery] = []
        self.refuse_next = 0  # answer this many requests with `refuse_with`
        self.refuse_with = 503
        self.most_at_once = 0  # the most deliveries of one subscription handled at the same time
        self._handling: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/citypass/events"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        status = self.handle(headers, body)
        return status, b'{"ok":true}' if status < 300 else b'{"error":"receiver unavailable"}'

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        payload = json.loads(body)
        subscription = payload["subscriptionId"]
        with self._lock:
            self._handling[subscription] = self._handling.get(subscription, 0) + 1
            self.most_at_once = max(self.most_at_once, self._handling[subscription])
            refused = self.refuse_next > 0
            if refused:
                self.refuse_next -= 1
        try:
            time.sleep(self.delay)
            status = self.refuse_with if refused else 200
            signed = verify_signature(self.secret, headers.get(SIGNATURE_HEADER), body, time.time())
            agree = (headers.get(SUBSCRIPTION_HEADER), headers.get(DELIVERY_HEADER)) == (
                subscription,
                payload["deliveryId"],
            )
            if not signed:
                status = 401  # as a real receiver would: an unsigned body is nobody's
            with self._lock:
                self.deliveries.append(
                    Delivery(subscription, payload["deliveryId"], payload["cursor"], payload["events"],
                             signed, agree, status)
                )  # fmt: skip
            return status
        finally:
            with self._lock:
                self._handling[subscription] -= 1

    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.answered == 200]

    def events(self) -> list[dict[str, Any]]:
        """Every event acknowledged, in arrival order, each once: what a receiver that drops repeats keeps."""
        seen: set[str] = set()
        kept = []
        for delivery in self.accepted():
            for event in delivery.events:
                if event["id"] not in seen:
                    seen.add(event["id"])
                    kept.append(event)
        return kept
