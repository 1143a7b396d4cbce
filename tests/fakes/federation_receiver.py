"""A partner city's message endpoint on 127.0.0.1, in a thread of the test process.

It keeps its port while it is down, so a sender meets a refused connection until it
comes up. It verifies every signature with the sender's public keys as a real partner
would (401 if it fails), answers 202 for a new message id and 200 for one it has, and
can refuse the next requests with a status of the test's choosing.
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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from backend.federation.signing import SignatureError, verify


@dataclass(frozen=True)
class Arrival:
    """One request as the partner saw it, and what it answered."""

    path: str
    region: str | None
    message_id: str | None
    envelope: dict[str, Any]
    signed: bool
    answered: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: PartnerReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = self.server.receiver.handle(self.path, dict(self.headers.items()), body)
        reply = json.dumps({"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class PartnerReceiver:
    def __init__(self, sender_keys: dict[str, Ed25519PublicKey], *, prefix: str = "") -> None:
        self.sender_keys = sender_keys
        self.prefix = prefix  # a path the partner is served under
        self.arrivals: list[Arrival] = []
        self.refuse_next = 0  # answer this many requests with `refuse_with`
        self.refuse_with = 503
        self._taken: set[str] = set()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        with socket.socket() as s:  # a port of our own, refused until we listen on it
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def up(self) -> PartnerReceiver:
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

    def __enter__(self) -> PartnerReceiver:
        return self

    def __exit__(self, *_: object) -> None:
        self.down()
