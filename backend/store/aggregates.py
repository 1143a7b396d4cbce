"""Load and save eventsourcing aggregates through the recorder, with snapshots and retries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import Mapper, StoredEvent, Tracking
from eventsourcing.utils import resolve_topic

from backend.store.errors import AggregateNotFoundError, ConcurrencyError
from backend.store.recorder import EventRecorder

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")


class AggregateStore:
    def __init__(self, recorder: EventRecorder, mapper: Mapper[UUID], *, snapshot_every: int = 100) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.snapshot_every = snapshot_every

    async def get(self, aggregate_id: UUID, *, version: int | None = None) -> Any:
        """Rebuild an aggregate from its latest snapshot (if any) and the events after it."""
        aggregate: Any = None
        snapshot: StoredEvent | None = None
        if self.snapshot_every and version is None:  # the common case: one query for both
            loaded = await self.recorder.load_latest(aggregate_id)
            snapshot, stored = loaded.snapshot, loaded.events
        else:
            if self.snapshot_every:
                snapshot = await self.recorder.latest_snapshot(aggregate_id, lte=version)
            after = None if snapshot is None else snapshot.originator_version
            stored = await self.recorder.select_events(aggregate_id, gt=after, lte=version)
        if snapshot is not None:
            aggregate = self._restore(snapshot)
            if aggregate is None:  # taken by older code: every event from the first, instead
                stored = await self.recorder.select_events(aggregate_id, lte=version)
        for record in stored:
            aggregate = self.mapper.to_domain_event(record).mutate(aggregate)  # type: ignore[attr-defined]
        if aggregate is None:
            raise AggregateNotFoundError(f"no aggregate {aggregate_id}")
        return aggregate

    async def find(self, aggregate_id: UUID) -> Any:
        """The aggregate, or None if it has no events yet."""
        try:
            return await self.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _restore(self, snapshot: StoredEvent) -> Any:
        """The aggregate a snapshot holds, or None if its class has changed shape since it was taken.

        A snapshot is only a cache of the events: rather than guess what an older
        shape did not record (as an upcast would have to), its aggregate is rebuilt
        from the events, and the next snapshot is taken in the current shape.
        """
        taken: Any = self.mapper.to_domain_event(snapshot)
        current = getattr(resolve_topic(taken.topic), "class_version", 1)
        if taken.state.get("class_version", 1) < current:
            return None
        return taken.mutate(None)

    async def save(self, *aggregates: Aggregate, tracking: Tracking | None = None) -> list[int]:
        """Append every pending event of the aggregates in one atomic append."""
        pending = [(aggregate, aggregate.collect_events()) for aggregate in aggregates]
        ids = await self.recorder.append(
            [self.mapper.to_stored_event(e) for _, events in pending for e in events], tracking=tracking
        )
        if self.snapshot_every:
            for aggregate, events in pending:
                await self._maybe_snapshot(aggregate, len(events))
        return ids

    async def execute(self, aggregate_id: UUID, command: Callable[[Any], R], *, retries: int = 5) -> R:
        """Load, run the command, save; on a version conflict reload and run it again."""
        for attempt in range(retries + 1):
            aggregate = await self.get(aggregate_id)
            result = command(aggregate)
            try:
                await self.save(aggregate)
            except ConcurrencyError:
                if attempt == retries:
                    raise
                log.debug("conflict on %s, retrying (attempt %d)", aggregate_id, attempt + 1)
                continue
            return result
        raise AssertionError("unreachable")

    async def _maybe_snapshot(self, aggregate: Aggregate, appended: int) -> None:
        # Snapshot when this save crossed a multiple of snapshot_every.
        version = aggregate.version
        if version // self.snapshot_every == max(version - appended, 0) // self.snapshot_every:
            return
        try:
            snapshot = Snapshot.take(aggregate)
            await self.recorder.insert_snapshot(self.mapper.to_stored_event(snapshot))
        except Exception:  # a missing snapshot only costs speed; never fail the command for it
            log.exception("could not snapshot %s at version %d", aggregate.id, version)
