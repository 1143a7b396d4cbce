"""The webhook worker: delivers each active subscription's stream in signed batches, at least once, in order.

A round claims the subscriptions that are due and have something to read (see
webhook_leases.py), each into a slot of its own: it reads the next page of the
subscription's scope after its cursor, posts it, and records the outcome. The cursor
moves only on a 2xx, so a batch is repeated until acknowledged; receivers drop
repeats by event id. A failure schedules the next try with backoff, and enough of them
in a row pause the subscription.

Rounds run when the stream announces new events (LISTEN on `<schema>_stream`), when a
delivery ends, when a retry or a lease falls due, and otherwise every poll interval.
Any number of workers may run, in as many processes: leases keep them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import httpx
import msgspec

from backend.database import DatabaseUnavailableError, connect
from backend.streams.signing import DELIVERY_HEADER, SIGNATURE_HEADER, SUBSCRIPTION_HEADER, sign
from backend.streams.webhook_leases import Backoff, Claim, Outcome, claim, next_due, record, release
from backend.streams.webhook_secrets import SecretBox
from projections.event_stream import STREAM_CHANNEL_SUFFIX
from projections.event_stream_reads import StreamQueries, StreamScope

log = logging.getLogger(__name__)

PoolSource = Callable[[], asyncpg.Pool]
Clock = Callable[[], datetime]

MIN_WAIT = 0.02  # between rounds when something is due that another worker holds a moment
LISTEN_RETRY_SECONDS = 5.0
ERROR_SNIPPET = 200  # characters of a refusing receiver's answer kept as the error


@dataclass(frozen=True, slots=True)
class DeliveryRules:
    backoff: Backoff
    batch: int = 100
    timeout_seconds: float = 10.0  # the whole request, connecting to reading the answer
    poll_seconds: float = 1.0
    in_flight: int = 16  # subscriptions one worker delivers to at once (each has one batch in flight)

    @property
    def lease(self) -> timedelta:
        """Outlasts any one delivery: a request is cut off at the timeout, reading and recording are quick."""
        return timedelta(seconds=self.timeout_seconds + 60)


class _Position(msgspec.Struct):
    position: int


_POSITION = msgspec.json.Decoder(_Position)


def delivery_body(subscription: uuid.UUID, delivery: uuid.UUID, cursor: int, events: list[bytes]) -> bytes:
    """The JSON body of a delivery; the events go in as stored, never re-encoded."""
    head = f'{{"subscriptionId":"{subscription}","deliveryId":"{delivery}","cursor":{cursor},"events":['
    return head.encode() + b",".join(events) + b"]}"


class WebhookWorker:
    def __init__(
        self,
        pool: PoolSource,
        stream: StreamQueries,
        box: SecretBox,
        rules: DeliveryRules,
        *,
        clock: Clock,
        listen: tuple[str, str] | None = None,  # (database URL, schema): wake on the stream's NOTIFY
        rng: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,  # signatures carry real Unix time, whatever `clock` says
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._pool, self._stream, self._box, self.rules = pool, stream, box, rules
        self._clock, self._listen_to, self._rng, self._wall = clock, listen, rng, wall_clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._flying: dict[asyncio.Task[None], Claim] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._unlisten = asyncio.Event()  # a lost LISTEN connection, or stopping

    def start(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, transport=self._transport)
        self._task = asyncio.create_task(self._run(), name="webhooks")

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Let the batches in flight finish and be recorded; after the grace, give their leases back."""
        self._stopping.set()
        self._unlisten.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        flying = dict(self._flying)
        if flying:
            grace = self.rules.timeout_seconds + 5 if grace_seconds is None else grace_seconds
            _, pending = await asyncio.wait(flying, timeout=grace)
            if pending:
                log.warning("webhooks: %d deliveries still in flight; giving their leases back", len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
                try:
                    await release(self._pool(), [flying[t] for t in pending])
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("webhooks: leases not given back (%s); they run out by themselves", exc)
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        listener = asyncio.create_task(self._listen(), name="webhooks:listen") if self._listen_to else None
        try:
            while not self._stopping.is_set():
                self._wake.clear()  # before claiming, so whatever happens meanwhile wakes the next round
                wait = await self._round()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            if listener is not None:
                self._unlisten.set()
                await asyncio.gather(listener, return_exceptions=True)

    async def _round(self) -> float:
        """Fill the free slots with due subscriptions; return how long to wait for the next round."""
        poll = self.rules.poll_seconds
        try:
            head = await self._stream.head()
            room = self.rules.in_flight - len(self._flying)
            if room > 0:
                for c in await claim(self._pool(), self._clock(), head, self.rules.lease, room):
                    task = asyncio.create_task(self._deliver(c), name=f"webhook:{c.id}")
                    self._flying[task] = c
                    task.add_done_callback(self._landed)
            if len(self._flying) >= self.rules.in_flight:
                return poll  # a landing wakes us
            due = await next_due(self._pool(), head)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("webhooks: cannot claim (%s); trying again in %.1f s", exc, poll)
            return poll
        except Exception:
            log.exception("webhooks: a round failed; trying again in %.1f s", poll)
            return poll
        if due is None:
            return poll
        return min(max((due - self._clock()).total_seconds(), MIN_WAIT), poll)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._flying.pop(task, None)
        self._wake.set()

    async def _deliver(self, c: Claim) -> None:
        try:
            outcome = await self._attempt(c)
        except Exception as exc:  # the page, or the secret, could not be read: a failed try like any other
            log.exception(
                "webhooks: subscription %s: the batch after %d could not be prepared", c.id, c.cursor
            )
            # The status page shows the kind only: the details (SQL, keys) stay in the log.
            error = f"not sent: {type(exc).__name__}"
            outcome = Outcome(uuid.uuid4(), self._clock(), 0, c.cursor, c.cursor, error=error)
        try:
            kept = await record(self._pool(), c, outcome, self.rules.backoff, self._rng())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning(
                "webhooks: subscription %s: outcome not recorded (%s); it will be sent again", c.id, exc
            )
            return
        if not kept:
            log.warning(
                "webhooks: subscription %s: lease lost (or subscription deleted); outcome dropped", c.id
            )
        elif not outcome.ok:
            log.info("webhooks: subscription %s: delivery failed: %s", c.id, outcome.error)

    async def _attempt(self, c: Claim) -> Outcome:
        scope = StreamScope(department=c.department, personal=c.personal)
        page = await self._stream.page(scope, c.cursor, self.rules.batch)
        delivery, at = uuid.uuid4(), self._clock()
        if not page.events:
            return Outcome(delivery, at, 0, c.cursor, page.next_cursor)
        last = _POSITION.decode(page.events[-1]).position
        secret = self._box.open(c.id, c.secret_key_id, c.secret_sealed)
        body = delivery_body(c.id, delivery, last, page.events)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(self._wall())),
            DELIVERY_HEADER: str(delivery),
            SUBSCRIPTION_HEADER: str(c.id),
        }
        started = time.monotonic()
        status, error = await self._post(c.url, headers, body)
        duration = int((time.monotonic() - started) * 1000)
        return Outcome(delivery, at, len(page.events), last, page.next_cursor, status, error, duration)

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int | None, str | None]:
        """The answer's status, and the error unless it was a 2xx."""
        assert self._client is not None, "start() the worker first"
        try:
            async with asyncio.timeout(self.rules.timeout_seconds):
                async with self._client.stream("POST", url, content=body, headers=headers) as response:
                    if 200 <= response.status_code < 300:
                        return response.status_code, None
                    said = b""
                    async for chunk in response.aiter_bytes():
                        said += chunk
                        if len(said) >= ERROR_SNIPPET:
                            break
        except TimeoutError:
            return None, f"no answer within {self.rules.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        snippet = said[:ERROR_SNIPPET].decode("utf-8", "replace").strip()
        return response.status_code, f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")

    async def _listen(self) -> None:
        """Wake a round whenever the stream publishes; reconnect when the connection is lost."""
        assert self._listen_to is not None
        url, schema = self._listen_to
        while not self._stopping.is_set():
            self._unlisten.clear()
            if self._stopping.is_set():
                break
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(url, schema)
                conn.add_termination_listener(lambda _conn: self._unlisten.set())
                await conn.add_listener(schema + STREAM_CHANNEL_SUFFIX, lambda *_: self._wake.set())
                self._wake.set()  # whatever was published before we listened
                await self._unlisten.wait()
            except (OSError, asyncpg.PostgresError, DatabaseUnavailableError) as exc:
                log.warning("webhooks: cannot LISTEN (%s); polling meanwhile", exc)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), LISTEN_RETRY_SECONDS)
