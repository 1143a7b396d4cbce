"""GET /health from an injected probe, and GET /metrics from an injected registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.enums import MediaType
from litestar.exceptions import ServiceUnavailableException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from miniapp_api.auth import EXCLUDE_FROM_AUTH
from miniapp_api.schemas import HealthReport

HealthProbe = Callable[[], Awaitable[HealthReport]]

_NO_STORE = CacheControlHeader(no_store=True)


def ops_routes(probe: HealthProbe, registry: CollectorRegistry) -> list[HTTPRouteHandler]:
    """The unauthenticated operations routes."""

    @get(
        "/livez",
        opt={EXCLUDE_FROM_AUTH: True},
        security=[{}],
        cache_control=_NO_STORE,
        tags=["ops"],
        summary="The process answers HTTP; touches nothing else (for liveness checks)",
    )
    async def livez() -> dict[str, str]:
        return {"status": "alive"}

    @get(
        "/health",
        opt={EXCLUDE_FROM_AUTH: True},
        security=[{}],
        cache_control=_NO_STORE,
        tags=["ops"],
        summary="Database, consumers and lag; 503 unless everything is ok",
        responses={503: ResponseSpec(HealthReport, description="Degraded or down")},
    )
    async def health() -> Response[HealthReport]:
        try:
            report = await probe()
        except Exception as exc:
            # A probe that cannot run means we are not healthy: answer 503 so load
            # balancers drain us; the error handler logs the cause with its traceback.
            raise ServiceUnavailableException("health probe failed") from exc
        return Response(report, status_code=200 if report.status == "ok" else 503)

    @get(
        "/metrics",
        media_type=MediaType.TEXT,
        opt={EXCLUDE_FROM_AUTH: True},
        security=[{}],
        cache_control=_NO_STORE,
        tags=["ops"],
        summary="Prometheus exposition",
    )
    async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
        # Prometheus asks for OpenMetrics when it can; choose_encoder honours that.
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), media_type=_without_charset(content_type))

    return [livez, health, metrics]


def _without_charset(content_type: str) -> str:
    # litestar appends "charset=utf-8" to text/* itself; keeping ours would send it twice.
    return ";".join(p for p in content_type.split(";") if not p.strip().startswith("charset="))
