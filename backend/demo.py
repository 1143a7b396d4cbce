"""Demo data for `citypass serve --demo` (development only)."""

from __future__ import annotations

import logging

from backend.settings import Settings

log = logging.getLogger(__name__)


async def seed(settings: Settings, url: str) -> None:
    """Seed demo data; the platform itself has none yet, so say how to get a token."""
    log.info(
        "demo mode: get a token with POST /api/v1/auth/dev-login "
        '{"subject": "citizen-1", "role": "citizen"}; '
        "the case catalogue and demo cases come with the cases module"
    )
