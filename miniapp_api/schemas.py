"""Base Struct for API schemas, and the health report."""

from __future__ import annotations

from typing import Literal

import msgspec


class ApiStruct(msgspec.Struct, rename="camel", kw_only=True):
    """Base of every API schema: snake_case in Python, camelCase on the wire."""


class ConsumerHealth(ApiStruct):
    """One consumer of the event log, as /health reports it."""

    name: str
    position: int
    lag: int
    leader: bool | None  # None: this process does not know who leads
    status: str


HealthStatus = Literal["ok", "degraded", "down"]


class HealthReport(ApiStruct):
    """What the injected health probe answers; only "ok" makes /health return 200."""

    status: HealthStatus
    database: str
    head_position: int
    consumers: list[ConsumerHealth]
