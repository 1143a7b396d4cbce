"""The relay: delivers the outbox to partner cities, signed, at least once, retrying with backoff.

A round claims the due messages (see outbox_leases.py), each into a slot of its own,
POSTs each to `<partner base URL>/federation/v1/messages` signed with our first key,
and records the outcome (see delivery.py for what an answer means). Messages go out in
any order and perhaps more than once: the receiver orders them by seq and drops repeats
by message id.

Rounds run when something is enqueued (LISTEN on `<schema>_federation_out`), when a
delivery ends, when a retry or a lease falls due, and otherwise every poll interval.
Any number of relays may run, in as many processes: leases keep them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import asyncpg
import httpx

from backend.federation.delivery import RelayRules, Verdict, classify, messages_url
from backend.federation.directory import PartnerDirectory
from backend.federation.outbox import OUTBOX_CHANNEL_SUFFIX
from backend.federation.outbox_leases import Claim, Outcome, claim, next_due, record, release
from backend.federation.signing import SigningKey
from backend.federation.wakeup import Wakeup

log = logging.getLogger(__name__)

PoolSource = Callable[[], asyncpg.Pool]
Clock = Callable[[], datetime]

MIN_WAIT = 0.02  # between rounds when something is due that another relay holds a moment
ERROR_SNIPPET = 200  # characters of a refusing partner's answer kept as the error


class Relay:
    def __init__(
        self,
        pool: PoolSource,
        directory: PartnerDirectory,
        region: str,  # ours: the sender's region every partner verifies us by
        key: SigningKey,
        rules: RelayRules,
        *,
        clock: Clock,
        listen: tuple[str, str] | None = None,  # (database URL, schema): wake on the outbox's NOTIFY
        rng: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,  # signatures carry real Unix time, whatever `clock` says
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._pool, self._directory, self._region, self._key = pool, directory, region, key
        self.rules, self._clock, self._rng, self._wall = rules, clock, rng, wall_clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._flying: dict[asyncio.Task[None], Claim] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._listen = listen
        self._wakeup: Wakeup | None = None

    def start(self) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, transport=self._transport)
        if self._listen is not None:
            url, schema = self._listen
            self._wakeup = Wakeup(url, schema, OUTBOX_CHANNEL_SUFFIX, self._wake, "federation relay")
            self._wakeup.start()
        self._task = asyncio.create_task(self._run(), name="federation-relay")

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Let the deliveries in flight finish and be recorded; after the grace, give their leases back."""
        self._stopping.set()
        self._wake.set()
        if self._wakeup is not None:
            await self._wakeup.stop()
        if self._task is not None:
            await self._task
        flying = dict(self._flying)
        if flying:
            grace = self.rules.timeout_seconds + 5 if grace_seconds is None else grace_seconds
            _, pending = await asyncio.wait(flying, timeout=grace)
            if pending:
                log.warning(
                    "federation relay: %d deliveries in flight; giving their leases back", len(pending)
                )
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending)
                try:
                    await release(self._pool(), [flying[t] for t in pending])
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning(
                        "federation relay: leases not given back (%s); they run out by themselves", exc
                    )
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # before claiming, so whatever happens meanwhile wakes the next round
            wait = await self._round()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _round(self) -> float:
        """Fill the free slots with due messages; return how long to wait for the next round."""
        poll = self.rules.poll_seconds
        try:
            room = min(self.rules.in_flight - len(self._flying), self.rules.batch)
            if room > 0:
                for c in await claim(self._pool(), self._clock(), self.rules.lease, room):
                    task = asyncio.create_task(self._deliver(c), name=f"federation-relay:{c.message_id}")
                    self._flying[task] = c
                    task.add_done_callback(self._landed)
            if len(self._flying) >= self.rules.in_flight:
                return poll  # a landing wakes us
            due = await next_due(self._pool(), self._clock())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("federation relay: cannot claim (%s); trying again in %.1f s", exc, poll)
            return poll
        except Exception:
            log.exception("federation relay: a round failed; trying again in %.1f s", poll)
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
        except Exception as exc:  # the partner could not be looked up: a failed try like any other
            log.exception("federation relay: message %s to %s could not be sent", c.message_id, c.partner)
            outcome = Outcome(
                self._clock(), Verdict.RETRY, error=f"not sent: {type(exc).__name__}", sent=False
            )
        try:
            kept = await record(self._pool(), c, outcome, self.rules, self._rng())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning(
                "federation relay: message %s: outcome not recorded (%s); sent again", c.message_id, exc
            )
            return
        if not kept:
            log.warning("federation relay: message %s: lease lost; outcome dropped", c.message_id)
        elif outcome.verdict is not Verdict.DELIVERED:
            log.info(
                "federation relay: message %s (%s #%d) to %s not delivered: %s",
                c.message_id, c.kind, c.seq, c.partner, outcome.error,
            )  # fmt: skip

    async def _attempt(self, c: Claim) -> Outcome:
        partner = await self._directory.find(c.partner)
        if partner is None:
            unknown = f"no partner city {c.partner} is configured"
            return Outcome(self._clock(), Verdict.REFUSED, error=unknown, sent=False)
        url = messages_url(partner.base_url)
        path = urlsplit(url).path
        headers = self._key.headers(self._region, "POST", path, c.body, str(c.message_id), int(self._wall()))
        headers["Content-Type"] = "application/json"
        status, error = await self._post(url, headers, c.body)
        return Outcome(self._clock(), classify(status), status, error)

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int | None, str | None]:
        """The answer's status, and the error unless it was a 2xx."""
        assert self._client is not None, "start() the relay first"
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
