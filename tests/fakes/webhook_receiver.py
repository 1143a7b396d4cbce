"""A department's webhook receiver on 127.0.0.1, in a thread of the test process.

It keeps its port while it is down, so a sender meets a refused connection until it
comes up. It verifies every signature as a real receiver would, can refuse the next
requests with an error status, can answer slowly, and notes how many deliveries of
one subscription it was handling at once.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from backend.streams.signing import DELIVERY_HEADER, SIGNATURE_HEADER, SUBSCRIPTION_HEADER, verify_signature


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender that gave up, or closed a kept-alive connection, is no error of the receiver's.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = self.server.receiver.handle(dict(self.headers.items()), body)
        reply = b'{"ok":true}' if status < 300 else b'{"error":"receiver unavailable"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Receiver:
    def __init__(self, secret: str, *, delay: float = 0.0) -> None:
        self.secret, self.delay = secret, delay
        self.deliveries: list[Delivery] = []
        self.refuse_next = 0  # answer this many requests with `refuse_with`
        self.refuse_with = 503
        self.most_at_once = 0  # the most deliveries of one subscription handled at the same time
        self._handling: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        with socket.socket() as s:  # a port of our own, refused until we listen on it
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/citypass/events"

    def up(self) -> Receiver:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

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

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *_: object) -> None:
        self.down()
