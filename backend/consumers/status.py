"""How far behind each consumer is, and whether some process leads it: for /health and /metrics."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from backend.consumers.leadership import leader_pids

_STATUS = """
SELECT g.consumer_name, g.generation, g.building_generation, coalesce(t.notification_id, 0) AS position
FROM consumer_generations g
-- the same name as base.tracking_name(name, generation)
LEFT JOIN tracking t ON t.application_name = g.consumer_name || '#g' || g.generation
ORDER BY g.consumer_name
"""


@dataclass(frozen=True, slots=True)
class ConsumerStatus:
    name: str
    generation: int
    position: int
    head: int
    lag: int  # head - position: events committed but not yet handled
    has_leader: bool  # some process holds the consumer's leader lock
    leader_pid: int | None  # the backend holding it
    building_generation: int | None  # set while a rebuild replays


async def consumer_status(pool: asyncpg.Pool, metrics: LagMetrics | None = None) -> list[ConsumerStatus]:
    """Every installed consumer's position, the head and the lag; optionally exported to metrics."""
    async with pool.acquire() as conn:
        schema: str = await conn.fetchval("SELECT current_schema()")
        rows = await conn.fetch(_STATUS)
        head: int = await conn.fetchval("SELECT coalesce(max(notification_id), 0) FROM stored_events")
        leaders = await leader_pids(conn, schema, [r["consumer_name"] for r in rows])
    statuses = [
        ConsumerStatus(
            name=r["consumer_name"],
            generation=r["generation"],
            position=r["position"],
            head=head,
            lag=max(head - r["position"], 0),
            has_leader=r["consumer_name"] in leaders,
            leader_pid=leaders.get(r["consumer_name"]),
            building_generation=r["building_generation"],
        )
        for r in rows
    ]
    if metrics is not None:
        metrics.observe(statuses)
    return statuses


class LagMetrics:
    """Prometheus gauges for consumers; create once per registry (gauges cannot be registered twice)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.position = Gauge(
            "citypass_consumer_position",
            "Last notification id the consumer has committed.",
            ["consumer"],
            registry=registry,
        )
        self.lag = Gauge(
            "citypass_consumer_lag",
            "Notifications committed to the store but not yet handled by the consumer.",
            ["consumer"],
            registry=registry,
        )
        self.leader = Gauge(
            "citypass_consumer_leader",
            "1 when some process holds the consumer's leader lock, else 0.",
            ["consumer"],
            registry=registry,
        )

    def observe(self, statuses: list[ConsumerStatus]) -> None:
        for s in statuses:
            self.position.labels(consumer=s.name).set(s.position)
            self.lag.labels(consumer=s.name).set(s.lag)
            self.leader.labels(consumer=s.name).set(1 if s.has_leader else 0)
