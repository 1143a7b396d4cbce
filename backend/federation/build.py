"""Cross-city messaging built from the settings: relay, applier, inbox, material files, admin view."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

import asyncpg

from backend.federation.admin import FederationAdmin
from backend.federation.applier import Applier, ApplierRules
from backend.federation.delivery import RelayRules
from backend.federation.directory import PartnerDirectory
from backend.federation.followups import follow_up_handlers
from backend.federation.handlers import DEV_NOTED, Handler, Handlers, dev_noted_handler
from backend.federation.handling import HANDOFF_REQUESTED, HandoffRequests
from backend.federation.inbox import Inbox
from backend.federation.material_files import HandoffFiles, MaterialFetcher
from backend.federation.relay import Relay
from backend.federation.replies import reply_handlers
from backend.federation.signing import SigningKey
from backend.materials import MaterialStore
from backend.settings import Settings
from backend.store.aggregates import AggregateStore
from projections.catalogue import CatalogueQueries
from projections.partners import PartnerQueries

PoolSource = Callable[[], asyncpg.Pool]
Clock = Callable[[], datetime]


def federation_handlers(
    settings: Settings,
    pool: PoolSource,
    aggregates: Callable[[], AggregateStore],
    clock: Clock,
    files: MaterialStore,
) -> Handlers:
    """Every message kind this deployment applies, by kind."""
    # 收件地: the handling city's replies to the cases we handed off (replies.py).
    handlers: dict[str, Handler] = {**reply_handlers(aggregates, pool, PartnerQueries(pool), clock)}
    # 办理地: a partner city's application opens a case here, with its files fetched, or is refused.
    fetcher = MaterialFetcher(
        PartnerQueries(pool), settings.cases.region, signing_key(settings), files,
        timeout_seconds=settings.federation.timeout_seconds,
    )  # fmt: skip
    handlers[HANDOFF_REQUESTED] = HandoffRequests(
        aggregates, pool, CatalogueQueries(pool), PartnerQueries(pool), region=settings.cases.region,
        clock=clock, number_pattern=settings.cases.number_pattern, files=fetcher,
    )  # fmt: skip
    handlers.update(follow_up_handlers(aggregates, clock, files=fetcher))  # the receiving city's later ones
    if settings.is_dev:
        handlers[DEV_NOTED] = dev_noted_handler(pool)
    return handlers


def relay_rules(settings: Settings) -> RelayRules:
    f = settings.federation
    return RelayRules(
        retry_min_seconds=f.retry_min_seconds,
        retry_max_seconds=max(f.retry_max_seconds, f.retry_min_seconds),
        timeout_seconds=f.timeout_seconds,
        poll_seconds=settings.consumers.poll_seconds,
    )


def signing_key(settings: Settings) -> SigningKey:
    kid, seed = settings.federation.keys[0]  # the first key signs; the others are only published
    return SigningKey.from_seed(kid, seed)


def build_relay(
    settings: Settings, url: str, pool: PoolSource, directory: PartnerDirectory, clock: Clock
) -> Relay:
    return Relay(
        pool,
        directory,
        settings.cases.region,
        signing_key(settings),
        relay_rules(settings),
        clock=clock,
        listen=(url, settings.database.schema),
    )


def build_applier(
    settings: Settings, url: str, pool: PoolSource, handlers: Handlers, clock: Clock
) -> Applier:
    f = settings.federation
    rules = ApplierRules(
        retry_min_seconds=f.retry_min_seconds,
        retry_max_seconds=max(f.retry_max_seconds, f.retry_min_seconds),
        poll_seconds=settings.consumers.poll_seconds,
    )
    return Applier(pool, url, settings.database.schema, handlers, rules, clock=clock)


def build_inbox(
    settings: Settings, pool: PoolSource, directory: PartnerDirectory, kinds: Collection[str], clock: Clock
) -> Inbox:
    return Inbox(pool, directory, kinds, freshness_seconds=settings.federation.freshness_seconds, clock=clock)


def build_handoff_files(
    settings: Settings,
    pool: PoolSource,
    aggregates: Callable[[], AggregateStore],
    directory: PartnerDirectory,
    files: MaterialStore,
    clock: Clock,
) -> HandoffFiles:
    freshness = settings.federation.freshness_seconds
    return HandoffFiles(pool, aggregates, directory, files, freshness_seconds=freshness, clock=clock)


def build_admin(pool: PoolSource) -> FederationAdmin:
    return FederationAdmin(pool)
