"""Everything one process runs: the pool, the event writer, the aggregate store, consumers and timers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from prometheus_client import CollectorRegistry

from backend.consumers.base import Consumer
from backend.consumers.rebuild import rebuild
from backend.consumers.runner import ConsumerRunner
from backend.consumers.status import LagMetrics, consumer_status
from backend.consumers.upgrade import bring_up_to_date
from backend.database import connect, create_pool
from backend.migrations import migrate
from backend.settings import Settings
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import PersonalCipher
from backend.store.recorder import EventRecorder
from backend.timers import TimerHandler, TimerWorker
from miniapp_api.schemas import ConsumerHealth, HealthReport

log = logging.getLogger(__name__)


# Zero but in a dev server started with CITYPASS_DEV_CLOCK_START (see start_clock_at).
_clock_shift = timedelta(0)


def utc_now() -> datetime:
    return datetime.now(UTC) + _clock_shift


def start_clock_at(at: datetime, anchor: float | None = None) -> None:
    """Make utc_now read `at` at Unix time `anchor` (now by default) and run on from it.

    Dev only, to rehearse a morning's release.
    """
    global _clock_shift
    _clock_shift = at - (datetime.now(UTC) if anchor is None else datetime.fromtimestamp(anchor, UTC))


def plan_groups(spec: str, names: Sequence[str]) -> list[list[str]]:
    """The runners to start, each a list of consumer names, from CITYPASS_CONSUMER_GROUPS.

    "together": one runner for all; "apart": one each; otherwise the groups named, and
    one more for every consumer named in none. A name that is no consumer's, or one
    named twice, is refused, so a typo does not quietly move a consumer.
    """
    if spec == "apart":
        return [[name] for name in names]
    groups = [] if spec == "together" else [group.split("+") for group in spec.split(",")]
    named = [name for group in groups for name in group]
    unknown = sorted(set(named) - set(names))
    if unknown:
        raise ValueError(f"CITYPASS_CONSUMER_GROUPS names no such consumer: {unknown} (of {sorted(names)})")
    twice = sorted({name for name in named if named.count(name) > 1})
    if twice:
        raise ValueError(f"CITYPASS_CONSUMER_GROUPS names a consumer twice: {twice}")
    rest = [name for name in names if name not in named]
    return groups + ([rest] if rest else [])


class Service(Protocol):
    """Something that runs in the background of a consumer-running process."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class Runtime:
    def __init__(
        self,
        settings: Settings,
        url: str,
        *,
        consumers: Sequence[Consumer] = (),
        timer_handlers: Mapping[str, TimerHandler] | None = None,
        with_consumers: bool = True,
        services: Sequence[Service] = (),
    ) -> None:
        self.settings = settings
        self.url = url
        self.schema = settings.database.schema
        self.consumers = {c.name: c for c in consumers}
        self.groups = plan_groups(settings.consumers.groups, list(self.consumers))  # refuses a bad plan now
        self.timer_handlers = dict(timer_handlers or {})
        self.with_consumers = with_consumers
        self.services = list(services)  # background services (the dispatcher), started once the pool is
        self.registry = CollectorRegistry()
        self.lag_metrics = LagMetrics(self.registry)
        self.mapper = make_mapper(personal=PersonalCipher(settings.privacy.data_keys))
        self._runners: list[ConsumerRunner] = []
        self._timers: TimerWorker | None = None

    @property
    def consumer_names(self) -> list[str]:
        return sorted(self.consumers)

    async def start(self) -> None:
        conn = await connect(self.url, self.schema)
        try:
            await migrate(conn, self.schema)
        finally:
            await conn.close()
        db = self.settings.database
        self.pool = await create_pool(self.url, self.schema, min_size=db.pool_min, max_size=db.pool_max)
        self.recorder = EventRecorder(
            self.url, self.schema, self.pool, max_batch=self.settings.store.max_batch
        )
        await self.recorder.start()
        self.aggregates = AggregateStore(
            self.recorder, self.mapper, snapshot_every=self.settings.store.snapshot_every
        )
        await self._bring_read_models_up_to_date()
        if self.with_consumers:
            self._start_consumers()
        for service in self.services:
            service.start()
        log.info("runtime started: schema %s, %d consumers", self.schema, len(self.consumers))

    async def _bring_read_models_up_to_date(self) -> None:
        """Install every consumer, and rebuild those whose served tables another release built.

        Done before serving, in every process, consumers or not: this process's
        queries expect the tables of its own code. A big store delays the start.
        """
        for consumer in self.consumers.values():
            generation = await bring_up_to_date(
                self.recorder,
                consumer,
                self.mapper.to_domain_event,
                batch_size=self.settings.consumers.batch_size,
            )
            if generation is not None:
                log.info("consumer %s rebuilt for this release: generation %d", consumer.name, generation)

    def _start_consumers(self) -> None:
        cfg = self.settings.consumers
        for group in self.groups:
            runner = ConsumerRunner(
                self.url,
                self.recorder,
                [self.consumers[name] for name in group],
                self.mapper.to_domain_event,
                batch_size=cfg.batch_size,
                poll_seconds=cfg.poll_seconds,
                coalesce_seconds=cfg.coalesce_seconds,
            )
            runner.start()
            self._runners.append(runner)
        self._timers = TimerWorker(
            self.pool, self.timer_handlers, utc_now, poll_seconds=cfg.timer_poll_seconds
        )
        self._timers.start()

    async def stop(self) -> None:
        await asyncio.gather(*(service.stop() for service in self.services))
        await asyncio.gather(*(runner.stop() for runner in self._runners))
        if self._timers is not None:
            await self._timers.stop()
        await self.recorder.close()
        await self.pool.close()
        log.info("runtime stopped")

    async def rebuild(self, name: str) -> int:
        """Rebuild one read model blue/green; return the position it reached."""
        await rebuild(
            self.recorder,
            self.consumers[name],
            self.mapper.to_domain_event,
            batch_size=self.settings.consumers.batch_size,
        )
        status = {s.name: s for s in await consumer_status(self.pool)}
        return status[name].position

    async def health(self) -> HealthReport:
        try:
            statuses = await asyncio.wait_for(consumer_status(self.pool, self.lag_metrics), timeout=5)
        except Exception as exc:  # the probe must answer "down", not fail
            log.warning("health probe failed: %s", exc)
            return HealthReport(status="down", database="unreachable", head_position=0, consumers=[])
        consumers = [
            ConsumerHealth(
                name=s.name,
                position=s.position,
                lag=s.lag,
                leader=s.has_leader,
                status="rebuilding"
                if s.building_generation
                else ("running" if s.has_leader else "no-leader"),
            )
            for s in statuses
        ]
        healthy = all(s.has_leader for s in statuses)
        head = statuses[0].head if statuses else int(await self.recorder.max_notification_id() or 0)
        return HealthReport(
            status="ok" if healthy else "degraded", database="ok", head_position=head, consumers=consumers
        )
