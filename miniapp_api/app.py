"""The one factory that assembles the HTTP application from injected parts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from prometheus_client import CollectorRegistry

from miniapp_api.auth import BearerAuthMiddleware, provide_principal
from miniapp_api.auth_routes import auth_router
from miniapp_api.config import ApiConfig
from miniapp_api.error_handler import exception_handler
from miniapp_api.health import HealthProbe, ops_routes
from miniapp_api.media import JsonBodyOnly
from miniapp_api.metrics import HttpMetrics
from miniapp_api.openapi import OPENAPI_PATH, document_problems, openapi_config
from miniapp_api.problems import ProblemMap

LifespanHook = Callable[..., Any]


def create_app(
    config: ApiConfig,
    *,
    health: HealthProbe,
    registry: CollectorRegistry,
    route_handlers: Sequence[Any] = (),
    problem_map: ProblemMap | None = None,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    """Build the app; every handler needs a bearer token unless it opts out."""
    metrics = HttpMetrics(registry)
    app = Litestar(
        route_handlers=[*ops_routes(health, registry), auth_router(config), *route_handlers],
        # Outermost first: stamp the start, reject wrong media types, then authenticate.
        middleware=[
            metrics.middleware,
            JsonBodyOnly(),
            BearerAuthMiddleware(config, public_prefixes=(OPENAPI_PATH,)),
        ],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False)},
        exception_handlers={Exception: exception_handler(problem_map or ProblemMap())},
        before_send=[metrics.before_send],
        # Enforced on the bytes actually read, so chunked bodies without Content-Length count too.
        request_max_body_size=config.max_body_bytes,
        openapi_config=openapi_config(config),
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        # Logging is configured once by the composition root, not by each app.
        logging_config=None,
        debug=False,
    )
    # Built now, so a handler whose types cannot be documented fails at startup, not on /schema.
    document_problems(app)
    return app
