"""ASGI entry point for granian's workers: each worker builds its own app and runtime."""

from __future__ import annotations

import logging

from litestar import Litestar

from backend.bootstrap import build_app
from backend.database import resolve_url
from backend.settings import load_settings


def create() -> Litestar:
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # `citypass serve` has already resolved the URL into the environment; this covers direct use.
    return build_app(settings, resolve_url(settings.database, settings.data_dir))
