"""Prometheus request count and latency, labelled by route template rather than raw path."""

from __future__ import annotations

from time import perf_counter

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram

_STARTED = "citypass.metrics.started"
# Routing failures (404, 405) have no template; one label keeps scanners from minting series.
UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _StampStart(ASGIMiddleware):
    """Note when a routed request reached the app, for the latency histogram."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["state"][_STARTED] = perf_counter()
        await next_app(scope, receive, send)


class HttpMetrics:
    """The HTTP metrics of one app, registered in the registry /metrics exposes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "citypass_http_requests",
            "HTTP responses sent",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "citypass_http_request_duration_seconds",
            "Time from routing to the first response byte",
            ["method", "route"],
            registry=registry,
        )
        self.middleware = _StampStart()

    async def before_send(self, message: Message, scope: Scope) -> None:
        """Count every response, including errors raised before any handler ran."""
        # Recorded at response start: for event streams, the stream's lifetime is not latency.
        if message["type"] != "http.response.start":
            return
        method = scope.get("method", "")
        method = method if method in _METHODS else "OTHER"
        route = scope.get("path_template") or UNMATCHED
        self.requests.labels(method, route, str(message["status"])).inc()
        started = scope.get("state", {}).get(_STARTED)
        if started is not None:
            self.latency.labels(method, route).observe(perf_counter() - started)
