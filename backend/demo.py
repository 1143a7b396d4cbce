"""Demo data for `citypass serve --demo` (development only)."""

from __future__ import annotations

import logging

from backend.settings import Settings

log = logging.getLogger(__name__)


async def seed(settings: Settings, url: str) -> None:
    """Say how to explore; the catalogue itself is loaded at every start, demo cases are not yet seeded."""
    log.info(
        "demo mode: the 长沙 catalogue is at /api/v1/services; get a token with "
        'POST /api/v1/auth/dev-login {"subject": "citizen-1", "role": "citizen"}'
    )
