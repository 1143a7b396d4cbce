"""Bring the stored catalogue in line with the data file at start-up, idempotently.

New entries are published, changed ones revised, withdrawn ones that came back
reinstated, and entries that left the file are withdrawn (the region's
CatalogueListing remembers what the file listed last time). Unchanged entries get
no events, so a second start appends nothing. Everything that changed is saved in
one atomic append: the catalogue never shows half a load. When several processes
start together, the losers of the race see a version conflict, reload, and then
find the work done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from backend.catalogue.source import DEFAULT_CATALOGUE, CatalogueSource, read_catalogue
from backend.store.aggregates import AggregateStore
from backend.store.errors import AggregateNotFoundError, ConcurrencyError
from domain.catalogue import (
    Bundle,
    BundleSpec,
    CatalogueListing,
    ServiceItem,
    ServiceItemSpec,
    bundle_id,
    item_id,
    listing_id,
)

log = logging.getLogger(__name__)

WITHDRAWN_REASON = "已从事项清单移除"  # recorded on each entry withdrawn because the file dropped it


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What one load did, by 事项编码."""

    published: tuple[str, ...] = ()
    revised: tuple[str, ...] = ()
    reinstated: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.published or self.revised or self.reinstated or self.withdrawn)

    def __str__(self) -> str:
        return (
            f"{len(self.published)} published, {len(self.revised)} revised, "
            f"{len(self.reinstated)} reinstated, {len(self.withdrawn)} withdrawn, "
            f"{len(self.unchanged)} unchanged"
        )


_OUTCOMES = ("published", "revised", "reinstated", "withdrawn", "unchanged")


@dataclass
class _Plan:
    pending: list[Aggregate] = field(default_factory=list)
    outcome: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in _OUTCOMES})

    def note(self, what: str, code: str, aggregate: Aggregate | None = None) -> None:
        self.outcome[what].append(code)
        if aggregate is not None:
            self.pending.append(aggregate)

    def report(self) -> LoadReport:
        return LoadReport(**{k: tuple(v) for k, v in self.outcome.items()})


async def load_catalogue(
    store: AggregateStore, path: Path | str = DEFAULT_CATALOGUE, *, retries: int = 3
) -> LoadReport:
    """Publish, revise, reinstate and withdraw until the store matches the file; return what changed."""
    source = read_catalogue(path)  # a bad file fails here, before anything is written
    for attempt in range(retries + 1):
        plan = await _plan(store, source)
        try:
            if plan.pending:
                await store.save(*plan.pending)
        except ConcurrencyError:
            if attempt == retries:
                raise
            log.info("catalogue load raced another process; reloading (attempt %d)", attempt + 1)
            continue
        report = plan.report()
        log.info("catalogue %s (%s) loaded from %s: %s", source.region, source.city, path, report)
        return report
    raise AssertionError("unreachable")


async def _plan(store: AggregateStore, source: CatalogueSource) -> _Plan:
    plan = _Plan()
    items = await _get_all(store, [item_id(s.code) for s in source.items])
    for spec, item in zip(source.items, items, strict=True):
        _reconcile(plan, ServiceItem.publish, spec, item)
    bundles = await _get_all(store, [bundle_id(s.code) for s in source.bundles])
    for bundle_spec, bundle in zip(source.bundles, bundles, strict=True):
        _reconcile(plan, Bundle.publish, bundle_spec, bundle)
    item_codes = tuple(s.code for s in source.items)
    bundle_codes = tuple(s.code for s in source.bundles)
    [listing] = await _get_all(store, [listing_id(source.region)])
    if listing is None:
        plan.pending.append(CatalogueListing.record(source.region, item_codes, bundle_codes))
        return plan
    await _withdraw(plan, store, sorted(set(listing.bundles) - set(bundle_codes)), bundle_id)
    await _withdraw(plan, store, sorted(set(listing.items) - set(item_codes)), item_id)
    if listing.relist(item_codes, bundle_codes):
        plan.pending.append(listing)
    return plan


def _reconcile(
    plan: _Plan, publish: Callable[[Any], Aggregate], spec: ServiceItemSpec | BundleSpec, entry: Any
) -> None:
    if entry is None:
        plan.note("published", spec.code, publish(spec))
    elif entry.withdrawn:
        entry.reinstate(spec)
        plan.note("reinstated", spec.code, entry)
    elif entry.revise(spec):
        plan.note("revised", spec.code, entry)
    else:
        plan.note("unchanged", spec.code)


async def _withdraw(
    plan: _Plan, store: AggregateStore, codes: list[str], to_id: Callable[[str], UUID]
) -> None:
    for code, entry in zip(codes, await _get_all(store, [to_id(c) for c in codes]), strict=True):
        if entry is not None and entry.withdraw(WITHDRAWN_REASON):
            plan.note("withdrawn", code, entry)


async def _get_all(store: AggregateStore, ids: list[UUID]) -> list[Any]:
    """Load concurrently (the store coalesces the queries); None for an id never published."""

    async def get(aggregate_id: UUID) -> Any:
        try:
            return await store.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    return list(await asyncio.gather(*(get(i) for i in ids)))
