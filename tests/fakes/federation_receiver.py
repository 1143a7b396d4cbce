"""A partner city's message endpoint on 127.0.0.1, in a thread of the test process.

It keeps its port while it is down, so a sender meets a refused connection until it
comes up. It verifies every signature with the sender's public keys as a real partner
would (401 if it fails), answers 202 for a new message id and 200 for one it has, and
can refuse the next requests with a status of the test's choosing.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from backend.federation.signing import SignatureError, verify
from tests.fakes.loopback import LoopbackEndpoint


@dataclass(frozen=True)
class Arrival:
    """One request as the partner saw it, and what it answered."""

    path: str
    region: str | None
    message_id: str | None
    envelope: dict[str, Any]
    signed: bool
    answered: int


class PartnerReceiver(LoopbackEndpoint):
    def __init__(self, sender_keys: dict[str, Ed25519PublicKey], *, prefix: str = "") -> None:
        self.sender_keys = sender_keys
        self.prefix = prefix  # a path the partner is served under
        self.arrivals: list[Arrival] = []
        self.refuse_next = 0  # answer this many requests with `refuse_with`
        self.refuse_with = 503
        self._taken: set[str] = set()
        self._lock = threading.Lock()
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        status = self.handle(path, headers, body)
        return status, json.dumps({"status": status}).encode()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        try:
            signed = verify(headers, "POST", path, body, self.sender_keys, int(time.time()))
            ok = True
        except SignatureError:
            ok = False
        with self._lock:
            message_id = headers.get("Citypass-Message-Id")
            if self.refuse_next > 0:
                self.refuse_next -= 1
                status = self.refuse_with
            elif not ok:
                status = 401
            elif signed.message_id in self._taken:
                status = 200
            else:
                self._taken.add(signed.message_id)
                status = 202
            region = headers.get("Citypass-Region")
            self.arrivals.append(Arrival(path, region, message_id, json.loads(body), ok, status))
            return status

    def taken(self) -> list[Arrival]:
        """The arrivals it accepted as new, in order: each message once."""
        with self._lock:
            return [a for a in self.arrivals if a.answered == 202]
