"""The composition root: the only place that picks concrete consumers, handlers and the app."""

from __future__ import annotations

import logging

from litestar import Litestar

from backend.calendar_data import base_calendar
from backend.catalogue import load_catalogue
from backend.materials import (
    MaterialCorruptedError,
    MaterialNotFoundError,
    MaterialStore,
    MaterialTooLargeError,
    MaterialTypeError,
)
from backend.runtime import Runtime, utc_now
from backend.settings import Settings
from miniapp_api.app import create_app
from miniapp_api.case_queries import case_queries_router
from miniapp_api.config import ApiConfig
from miniapp_api.materials import materials_router
from miniapp_api.problems import ProblemMap
from miniapp_api.services import catalogue_router
from projections.case_progress import CaseProgressProjection, CaseQueries
from projections.catalogue import CatalogueProjection, CatalogueQueries
from projections.event_counts import EventCounts
from projections.work_queue import WorkQueueProjection, WorkQueueQueries

log = logging.getLogger(__name__)


def build_runtime(settings: Settings, url: str, *, with_consumers: bool) -> Runtime:
    return Runtime(
        settings,
        url,
        consumers=[EventCounts(), CatalogueProjection(), CaseProgressProjection(), WorkQueueProjection()],
        timer_handlers={},
        with_consumers=with_consumers,
    )


def problem_map() -> ProblemMap:
    """Every error of the backend's own that a caller can cause, with its status and stable type."""
    problems = ProblemMap()
    problems.register(MaterialTooLargeError, 413, "material-too-large", "Material file too large")
    problems.register(MaterialTypeError, 415, "material-type", "Material file type not accepted")
    problems.register(MaterialNotFoundError, 404, "material-not-found", "No such material")
    problems.register(MaterialCorruptedError, 500, "material-corrupted", "Stored material is damaged")
    return problems


def build_app(settings: Settings, url: str) -> Litestar:
    runtime = build_runtime(settings, url, with_consumers=settings.consumers.enabled)
    materials = MaterialStore(settings.files.directory, max_bytes=settings.files.max_upload_bytes)
    catalogue = CatalogueQueries(lambda: runtime.pool)  # the pool exists once the runtime has started
    cases = CaseQueries(lambda: runtime.pool, base_calendar, utc_now)
    work_queue = WorkQueueQueries(lambda: runtime.pool, base_calendar, utc_now)

    async def load_services() -> None:
        # Idempotent: an unchanged catalogue appends nothing, so every worker may run it.
        report = await load_catalogue(runtime.aggregates)
        log.info("catalogue: %s", report)
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
        route_handlers=[
            catalogue_router(catalogue),
            case_queries_router(cases, work_queue),
            materials_router(materials, max_upload_bytes=settings.files.max_upload_bytes),
        ],
        problem_map=problem_map(),
        on_startup=[runtime.start, load_services],  # in this order: loading needs the store
        on_shutdown=[runtime.stop],
    )
    app.state.runtime = runtime
    return app
