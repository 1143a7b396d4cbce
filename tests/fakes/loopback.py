"""A fake provider or receiver served over real HTTP on 127.0.0.1, in a thread of the test process.

Each fake is a `JsonHandler` subclass: it answers POST (and GET) requests with JSON,
and records every request it was sent, so tests can see exactly what reached the
provider. The stdlib server is enough: the SDKs under test speak plain HTTP/1.1.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    """One request as the provider saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client: tuple[str, int] | None = None  # the caller's address: a kept-alive connection keeps its port

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Answer:
    status: int
    body: Any  # encoded as JSON unless it is bytes
    headers: dict[str, str] = field(default_factory=dict)


class JsonHandler(BaseHTTPRequestHandler):
    """Subclasses implement `answer(request) -> Answer`; `state` is shared per served fake."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, a kept-alive connection waits for the
    # client's delayed ACK between them, 40 ms an answer, which no real provider adds.
    disable_nagle_algorithm = True
    state: ClassVar[Any] = None

    def answer(self, request: Received) -> Answer:
        raise NotImplementedError

    def do_POST(self) -> None:
        self._serve("POST")

    def do_GET(self) -> None:
        self._serve("GET")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Received(
            method,
            parts.path,
            parse_qs(parts.query),
            dict(self.headers.items()),
            self.rfile.read(length),
            self.client_address,
        )
        self.server.received.append(request)  # type: ignore[attr-defined]
        reply = self.answer(request)
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read `received` instead


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    received: list[Received]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the stdlib's 5 drops connections a client opens at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its timeout passed, its test ended) closed the socket under a
        # slow answer: nothing went wrong here. Anything else is printed as the stdlib does.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def serving(handler: type[JsonHandler]) -> Iterator[Served]:
    """Serve the fake on a free loopback port until the block ends.

    The server gets its own subclass holding the state set before it started, so a request
    still being answered after the block ended (a slow answer outliving its test) writes to
    its own test's state, never to the next test's.
    """
    bound = type(handler.__name__, (handler,), {"state": handler.state})
    server = _Server(("127.0.0.1", 0), bound)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name=f"fake:{handler.__name__}", daemon=True
    )  # a short poll, so that shutting down takes 50 ms rather than the stdlib's 500
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}", server.received)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _EndpointHandler(JsonHandler):
    def answer(self, request: Received) -> Answer:
        status, body = self.server.endpoint.answer(request.path, request.headers, request.body)  # type: ignore[attr-defined]
        return Answer(status, body)


class _KeptPortServer(_Server):
    allow_reuse_address = True  # up again on the port it had, straight after going down


class LoopbackEndpoint:
    """A receiver that can go down and come back: it keeps its port meanwhile, so a sender meets
    a refused connection until it is up again. Subclasses answer each request in `answer`."""

    def __init__(self) -> None:
        self._server: _KeptPortServer | None = None
        with socket.socket() as s:  # a port of our own, refused until we listen on it
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    def up(self) -> Self:
        server = _KeptPortServer(("127.0.0.1", self.port), _EndpointHandler)
        server.received = []  # type: ignore[attr-defined]
        server.endpoint = self  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._server = server
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.down()
