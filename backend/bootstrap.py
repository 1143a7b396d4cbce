"""The composition root: the only place that picks concrete consumers, handlers and the app."""

from __future__ import annotations

from litestar import Litestar

from backend.runtime import Runtime
from backend.settings import Settings
from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from projections.event_counts import EventCounts


def build_runtime(settings: Settings, url: str, *, with_consumers: bool) -> Runtime:
    return Runtime(
        settings,
        url,
        consumers=[EventCounts()],
        timer_handlers={},
        with_consumers=with_consumers,
    )


def build_app(settings: Settings, url: str) -> Litestar:
    runtime = build_runtime(settings, url, with_consumers=settings.consumers.enabled)
    config = ApiConfig(
        jwt_secret=settings.auth.jwt_secret,
        token_ttl_seconds=settings.auth.token_ttl_seconds,
        dev_login=settings.auth.dev_login,
        max_body_bytes=settings.http.max_body_bytes,
    )
    app = create_app(
        config,
        health=runtime.health,
        registry=runtime.registry,
        on_startup=[runtime.start],
        on_shutdown=[runtime.stop],
    )
    app.state.runtime = runtime
    return app
