"""Webhook subscriptions and their worker, built from the stream settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from backend.settings import Settings
from backend.streams.webhook_leases import Backoff
from backend.streams.webhook_secrets import SecretBox
from backend.streams.webhook_store import WebhookSubscriptions
from backend.streams.webhook_worker import DeliveryRules, WebhookWorker
from projections.event_stream_reads import Decode, StreamQueries


def delivery_rules(settings: Settings) -> DeliveryRules:
    s = settings.streams
    return DeliveryRules(
        backoff=Backoff(
            minimum=s.webhook_retry_min_seconds,
            maximum=max(s.webhook_retry_max_seconds, s.webhook_retry_min_seconds),
            pause_after=s.webhook_pause_after,
        ),
        batch=min(s.webhook_batch, s.page_limit),
        timeout_seconds=s.webhook_timeout_seconds,
        poll_seconds=settings.consumers.poll_seconds,
    )


def build_webhook_subscriptions(
    settings: Settings, pool: Callable[[], asyncpg.Pool], decode: Decode, clock: Callable[[], datetime]
) -> WebhookSubscriptions:
    return WebhookSubscriptions(
        pool,
        StreamQueries(pool, decode),
        SecretBox(settings.privacy.data_keys),
        clock,
        allow_http=settings.streams.webhook_allow_http,
    )


def build_webhook_worker(
    settings: Settings,
    url: str,
    pool: Callable[[], asyncpg.Pool],
    decode: Decode,
    clock: Callable[[], datetime],
) -> WebhookWorker:
    return WebhookWorker(
        pool,
        StreamQueries(pool, decode),
        SecretBox(settings.privacy.data_keys),
        delivery_rules(settings),
        clock=clock,
        listen=(url, settings.database.schema),
    )
