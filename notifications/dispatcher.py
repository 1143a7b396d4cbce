"""The dispatcher: drains the outbox through the channels, at least once, and records every attempt.

Each of a few lanes keeps up to `batch` rows in flight, each on its own:
1. claim: whenever half a batch or less is in flight, one transaction leases due rows to
   fill it (SKIP LOCKED, a fresh claim id, next_attempt_at pushed out by the lease) and
   reads how to reach their recipients, reserving WeChat grants, then commits;
2. deliver: each row walks the failover order (WeChat, push, SMS by default), skipping
   channels the recipient muted, has no address on, or that must wait (quiet hours for
   non-urgent push and SMS, per-phone limits), and stops at the first DONE or RETRY;
3. record: rows are recorded as they finish, a few together: one transaction writes
   their attempts, then each row's new state, where the row still carries the claim id
   it was claimed with.
A slow provider so holds back only the rows waiting on it: the others are recorded, and
their slots filled again, meanwhile. A row's lease is renewed until it is recorded.

A dispatcher killed between 2 and 3 leaves its rows leased; when the lease runs out
another dispatcher sends them again, with the same key. That is the only way a
recipient can get a message twice, and then both carry one key. An SMS whose fate is
unclear (a timeout after sending) is not sent again before the provider has been asked
whether it has a send with that key.

Where no external channel can reach a recipient (no grant, no device, no mobile, or
each of them unreachable), the notification ends delivered on "inbox": the in-app inbox
(for officers, their work queue) holds every notification anyway. A notification that
keeps failing (RETRY, or every channel failing over) ends in the dead letter after
`max_attempts` attempts since it was last re-driven.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from notifications.address_book import (
    AddressBook,
    Decode,
    Device,
    Grant,
    PhoneDigest,
    Wanted,
    add_phones,
    history_window,
    read_book,
)
from notifications.channels.base import Channel, Delivery, Message, Outcome, Reconciling
from notifications.delivery_rules import QuietHours, RateLimit, backoff, free_at
from notifications.intents import Intent, OfficerRole, Purpose, Recipient, RecipientKind
from notifications.templates import TEMPLATES, TemplateError, render

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PoolSource = Callable[[], asyncpg.Pool]

WECHAT, PUSH, SMS, INBOX = "wechat", "push", "sms", "inbox"
EXTERNAL = (WECHAT, PUSH, SMS)
_WAITS_FOR_QUIET = (PUSH, SMS)
_PUSH_RANK = {Outcome.DONE: 0, Outcome.RETRY: 1, Outcome.FAIL_OVER: 2, Outcome.DROP: 3}

# Finished rows wait up to FLUSH_SECONDS, or until FLUSH_ROWS have finished, to be recorded
# together: a transaction per row would cost more than its sends, and an outcome is still
# on record within a few tens of milliseconds.
FLUSH_SECONDS = 0.025
FLUSH_ROWS = 16


@dataclass(frozen=True, slots=True)
class DispatchRules:
    order: tuple[str, ...] = EXTERNAL  # failover order of the external channels
    quiet: QuietHours | None = None
    sms_limits: tuple[RateLimit, ...] = ()
    max_attempts: int = 10
    backoff_base: float = 5.0  # seconds
    backoff_cap: float = 3600.0
    batch: int = 100
    lanes: int = 2  # each keeps up to `batch` rows in flight
    lease: timedelta = timedelta(minutes=5)  # renewed every third of it until a row is recorded
    poll_seconds: float = 1.0
    in_flight: int = 32  # calls one channel (or SMS provider) may have under way at once, per dispatcher
    # After an unclear SMS send, how long "not on the provider's record" is not yet proof: Tencent
    # lists a send only once the carrier has reported on it. Until then the dispatcher asks again.
    settle_after: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if not self.order or len(set(self.order)) != len(self.order) or set(self.order) - set(EXTERNAL):
            raise ValueError(f"the failover order names each of {EXTERNAL} at most once, not {self.order}")


@dataclass(frozen=True, slots=True)
class Channels:
    """The configured channels; a channel left None is never tried."""

    wechat: Channel | None = None
    push: Channel | None = None
    sms: Sequence[Channel] = ()  # providers in failover order

    def has(self, channel: str) -> bool:
        return bool(self.sms) if channel == SMS else getattr(self, channel) is not None


@dataclass
class _Row:
    """A claimed notification and what the dispatcher did with it this time."""

    intent: Intent
    claim: uuid.UUID  # the claim it was leased under: it is recorded only while it still carries it
    attempts: int
    attempt_base: int
    dropped: list[str]  # channels that cannot reach the recipient for this notification
    unsettled: list[str]  # SMS providers whose last send has no clear answer
    unsettled_since: datetime | None
    grant: Grant | None = None  # the WeChat grant reserved for it in its claim
    tries: list[tuple[Any, ...]] = field(default_factory=list)  # attempt rows to write
    # set by the outcome
    state: str = "pending"
    channel: str | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    deferred: str | None = None
    grant_use: str | None = None  # sent | refused | keep; None releases a reserved grant
    dead_devices: list[str] = field(default_factory=list)
    sms_sent: list[tuple[str, datetime]] = field(default_factory=list)  # (phone digest, time)

    @property
    def key(self) -> str:
        return self.intent.key


@dataclass(frozen=True, slots=True)
class _Claim:
    """Rows leased in one transaction, and what that transaction read about reaching them."""

    rows: list[_Row]
    book: AddressBook
    at: datetime  # the claim's now: quiet hours, limits and backoff of its rows count from it


_CLAIM = """
UPDATE notification_outbox o SET next_attempt_at = $3, claim = $4
FROM (
    SELECT key FROM notification_outbox WHERE state = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED
) AS due
WHERE o.key = due.key
RETURNING o.key, o.purpose, o.recipient_kind, o.recipient, o.recipient_role, o.case_id, o.variables,
          o.urgent, o.occurred_at, o.tried_channels, o.attempts, o.attempt_base, o.unsettled,
          o.unsettled_since
"""

_ATTEMPTS = """
INSERT INTO notification_attempts (key, attempt, channel, provider, outcome, detail, provider_id, at)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                     $8::timestamptz[])
ON CONFLICT (key, attempt) DO NOTHING
"""

# Lists travel as comma-joined text: unnest cannot take ragged arrays. Rows of several claims
# may be recorded together: each is written only where it still carries its own claim.
_RECORD = """
UPDATE notification_outbox o SET
    state = u.state, channel = u.channel, attempts = u.attempts,
    tried_channels = string_to_array(u.dropped, ','), unsettled = string_to_array(u.unsettled, ','),
    next_attempt_at = coalesce(u.next_attempt_at, o.next_attempt_at),
    last_error = coalesce(u.last_error, o.last_error), delivered_at = u.delivered_at,
    deferred = u.deferred, unsettled_since = u.unsettled_since, claim = NULL
FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[],
            $8::timestamptz[], $9::text[], $10::timestamptz[], $11::text[], $12::timestamptz[])
     AS u(key, claim, state, channel, attempts, dropped, unsettled, next_attempt_at, last_error,
          delivered_at, deferred, unsettled_since)
WHERE o.key = u.key AND o.claim = u.claim
RETURNING o.key
"""

# Renews the leases of rows still held. A row locked now is being recorded (or re-driven):
# it is skipped rather than waited for, so a renewal and a recording never wait on each
# other's rows (nor deadlock), and a recorded row, its claim cleared, is never pushed out.
_RENEW = """
UPDATE notification_outbox o SET next_attempt_at = $3
FROM (
    SELECT o.key FROM notification_outbox o
    JOIN unnest($1::text[], $2::uuid[]) AS held(key, claim) ON o.key = held.key AND o.claim = held.claim
    WHERE o.state = 'pending'
    FOR UPDATE OF o SKIP LOCKED
) AS still
WHERE o.key = still.key
"""


class Dispatcher:
    """Delivers pending notifications; several processes may run one each (they share by SKIP LOCKED)."""

    def __init__(
        self,
        pool: PoolSource,
        channels: Channels,
        rules: DispatchRules,
        *,
        decode: Decode,
        phone_digest: PhoneDigest,
        clock: Clock,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._pool, self.channels, self.rules = pool, channels, rules
        self.decode, self.digest, self.clock, self.rng = decode, phone_digest, clock, rng
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._claims = 0
        self._slots: dict[str, asyncio.Semaphore] = {}
        # How far back the per-phone SMS history must reach: the longest limit's window.
        self._history = history_window([limit.window for limit in rules.sms_limits])
        # The SMS this process sent (or is sending) lately, by phone digest. A claim's address book
        # holds what was recorded when it was read; every lane's sends since, recorded or not yet,
        # are here, so two claims in flight at once cannot both take a phone's last slot. A send
        # is kept for one lease (no claim's rows live longer unrecorded; any book read after its
        # recording has it from the database) or the window, whichever is shorter.
        self._sms_taken: dict[str, set[tuple[datetime, str]]] = {}
        self._sms_kept = min(self._history, rules.lease)

    # Running.

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(_Lane(self).run(), name=f"dispatcher:{n}") for n in range(self.rules.lanes)
        ]

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the rows in flight finish and be recorded, then return; cancel after grace_seconds."""
        self._stopping.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
        if pending:
            log.warning("dispatcher did not stop within %.1fs; cancelling it", grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.wait(pending)
        for channel in self._all_channels():
            with contextlib.suppress(Exception):
                close = getattr(channel, "aclose", None)
                if close is not None:
                    await close()

    def _all_channels(self) -> list[Channel]:
        found = [c for c in (self.channels.wechat, self.channels.push) if c is not None]
        return found + list(self.channels.sms)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool()

    # The pieces of a lane, and a whole pass made of them.

    async def dispatch_once(self) -> int:
        """Claim a batch, deliver all of it, then record it in one transaction; how many rows it held.

        A lane does the same, but records and refills row by row; a pass at a time lets tests
        step the dispatcher.
        """
        claim = await self._claim(self.rules.batch)
        if claim is None:
            return 0
        rows = claim.rows
        holding = asyncio.create_task(self._hold(lambda: rows), name="dispatcher:lease")
        try:
            await asyncio.gather(*(self._deliver(row, claim.book, claim.at) for row in rows))
            await self._record(rows)
        finally:
            holding.cancel()
        return len(rows)

    async def _claim(self, limit: int) -> _Claim | None:
        """Lease up to `limit` due rows and read how to reach them in one transaction; None if none is due."""
        now = self.clock()
        claim = uuid.uuid4()
        async with self.pool.acquire() as conn, conn.transaction():
            records = await conn.fetch(_CLAIM, now, limit, now + self.rules.lease, claim)
            if not records:
                return None
            rows = [_row(r, claim) for r in records]
            wanted = [self._wanted(row) for row in rows]
            book = await read_book(conn, wanted, self.decode, self.digest, now - self._history)
        for row in rows:
            row.grant = book.grants.get(row.key)
        self._claims += 1
        if self._claims % 100 == 1:
            await self._prune(now - self._history)
            self._forget_sms_before(now - self._sms_kept)
        return _Claim(rows, book, now)

    async def _hold(self, held: Callable[[], Sequence[_Row]]) -> None:
        """Renew the lease of the rows held (claimed, not yet recorded) every third of it.

        A row takes as long as its slowest sends (each channel has its own timeout, and a
        recipient's devices are pushed one after another): without renewal a lane could
        take it back mid-send and send it again. A dispatcher that dies renews nothing, so
        its rows come free one lease after its last renewal.
        """
        every = self.rules.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            rows = held()
            if not rows:
                continue
            try:
                await self.pool.execute(
                    _RENEW, [r.key for r in rows], [r.claim for r in rows], self.clock() + self.rules.lease
                )
            except Exception:  # the next renewal may get through; the lease is three times this long
                log.warning("dispatcher: renewing a lease failed", exc_info=True)

    def _wanted(self, row: _Row) -> Wanted:
        intent = row.intent
        template = TEMPLATES.get((intent.purpose, WECHAT))
        wechat = (
            template.template_id
            if template is not None
            and self.channels.wechat is not None
            and WECHAT in self.rules.order
            and WECHAT not in row.dropped
            and intent.recipient.kind is RecipientKind.CITIZEN
            else None
        )
        to = intent.recipient
        unsettled = bool(row.unsettled)
        return Wanted(
            intent.key, intent.purpose.value, to.kind, to.address, intent.case_id, wechat, unsettled
        )

    async def _deliver(self, row: _Row, book: AddressBook, now: datetime) -> None:
        try:
            await self._walk(row, book, now)
        except Exception as exc:  # a bug of ours, not a provider's answer: keep the row, try later
            log.exception("dispatching %s failed", row.key)
            self._retry(row, now, f"{type(exc).__name__}: {exc}")

    async def _walk(self, row: _Row, book: AddressBook, now: datetime) -> None:
        intent = row.intent
        phone = book.phones.get(intent.case_id) if intent.case_id is not None else None
        if row.unsettled and not await self._settle(row, phone, now):
            return
        wait_until: datetime | None = None
        waits: set[str] = set()
        failed_over: str | None = None
        for channel in self.rules.order:
            if channel == SMS and phone is None and self._may_text(row, book):
                # The claim expected an earlier channel to reach the recipient: open the phone now.
                phone = await self._phone(row, book, now)
            if channel in row.dropped or not self._may_use(row, book, channel, phone):
                continue
            if channel in _WAITS_FOR_QUIET and not intent.urgent and self.rules.quiet is not None:
                quiet_end = self.rules.quiet.ends_at(now)
                if quiet_end is not None:
                    wait_until = min(wait_until or quiet_end, quiet_end)
                    waits.add("quiet_hours")
                    continue
            if channel == WECHAT:
                delivery = await self._wechat(row)
            elif channel == PUSH:
                delivery = await self._push(row, book)
            else:
                assert phone is not None
                digest = self.digest(phone)
                taken = self._sms_taken.get(digest, set())
                sent = [at for at, _ in book.sms_history[digest] | taken]
                free = free_at(sent, self.rules.sms_limits, now)
                if free is not None:
                    wait_until = min(wait_until or free, free)
                    waits.add("rate_limit")
                    continue
                slot = (now, row.key)
                if self.rules.sms_limits:  # before sending: every lane's later sends to this phone see it
                    self._sms_taken.setdefault(digest, set()).add(slot)
                delivery = await self._sms(row, phone, digest, now)
                if not row.sms_sent:
                    self._sms_taken.get(digest, set()).discard(slot)  # nothing went out: the slot is free
            if delivery.outcome is Outcome.DONE:
                row.state, row.channel, row.delivered_at = "delivered", channel, self.clock()
                return
            if delivery.outcome is Outcome.RETRY:
                self._retry(row, now, f"{channel}: {delivery.detail}")
                return
            if delivery.outcome is Outcome.DROP:
                row.dropped.append(channel)
            else:
                failed_over = f"{channel}: {delivery.detail}"
        if wait_until is not None:
            row.next_attempt_at, row.deferred = wait_until, ",".join(sorted(waits))
        elif failed_over is not None:
            self._retry(row, now, failed_over)
        else:
            row.state, row.channel, row.delivered_at = "delivered", INBOX, self.clock()

    def _may_use(self, row: _Row, book: AddressBook, channel: str, phone: str | None) -> bool:
        """Configured, templated, wanted, and with an address to send to."""
        intent = row.intent
        if not self.channels.has(channel) or (intent.purpose, channel) not in TEMPLATES:
            return False
        if channel == PUSH:
            return bool(self._devices(row, book))
        if intent.recipient.kind is RecipientKind.DEPARTMENT:
            return False  # officers are reached on their devices (and in their work queue)
        if (intent.recipient.address, intent.purpose.value, channel) in book.muted:
            return False
        return row.grant is not None if channel == WECHAT else phone is not None

    def _may_text(self, row: _Row, book: AddressBook) -> bool:
        """Whether SMS could be tried for the row, given a mobile: worth opening the phone for."""
        return (
            row.intent.case_id is not None
            and SMS not in row.dropped
            and self._may_use(row, book, SMS, phone="")
        )

    async def _phone(self, row: _Row, book: AddressBook, now: datetime) -> str | None:
        """The mobile the row's case was filed with, opened into the book now if its claim did not."""
        case_id = row.intent.case_id
        assert case_id is not None
        if case_id not in book.phones_read:
            async with self.pool.acquire() as conn:
                await add_phones(conn, book, [case_id], self.decode, self.digest, now - self._history)
        return book.phones.get(case_id)

    def _devices(self, row: _Row, book: AddressBook) -> list[Device]:
        """The recipient's devices whose owners did not mute this purpose on push."""
        intent = row.intent
        return [
            d
            for d in book.devices(intent.recipient.kind, intent.recipient.address)
            if (d.subject, intent.purpose.value, PUSH) not in book.muted
        ]

    def _retry(self, row: _Row, now: datetime, error: str) -> None:
        row.last_error = error
        if row.attempts - row.attempt_base >= self.rules.max_attempts:
            row.state = "dead"
            log.warning("notification %s is dead after %d attempts: %s", row.key, row.attempts, error)
            return
        since = max(row.attempts - row.attempt_base, 1)
        row.next_attempt_at = now + backoff(since, self.rules.backoff_base, self.rules.backoff_cap, self.rng)

    def _attempt(self, row: _Row, channel: str, delivery: Delivery, outcome: str | None = None) -> None:
        row.attempts += 1
        row.tries.append(
            (
                row.key,
                row.attempts,
                channel,
                delivery.provider,
                outcome or delivery.outcome.value,
                delivery.detail[:1000],
                delivery.provider_id,
                self.clock(),
            )
        )

    # The channels.

    async def _wechat(self, row: _Row) -> Delivery:
        grant = row.grant
        assert grant is not None and self.channels.wechat is not None
        shown = self._render(row, WECHAT)
        if shown is None:
            return Delivery(Outcome.FAIL_OVER, self.channels.wechat.name, "template does not render")
        message = Message(row.key, grant.openid, shown.provider_template, shown.variables, page=shown.page)
        delivery = await self._send(self.channels.wechat, message)
        self._attempt(row, WECHAT, delivery)
        if delivery.outcome is Outcome.DONE:
            row.grant_use = "sent"
        elif delivery.outcome is Outcome.DROP:
            row.grant_use = "refused"  # WeChat holds no subscription for it: the grant is void
        elif delivery.outcome is Outcome.RETRY:
            row.grant_use = "keep"
        return delivery

    async def _push(self, row: _Row, book: AddressBook) -> Delivery:
        intent = row.intent
        devices = self._devices(row, book)
        assert self.channels.push is not None
        shown = self._render(row, PUSH)
        if shown is None:
            return Delivery(Outcome.FAIL_OVER, self.channels.push.name, "template does not render")
        data = {"purpose": intent.purpose.value}
        if intent.case_id is not None:
            data["case"] = str(intent.case_id)
        results = []
        for device in devices:
            message = Message(row.key, device.installation_id, "", {}, shown.title, shown.body, data)
            delivery = await self._send(self.channels.push, message)
            self._attempt(row, PUSH, delivery)
            if delivery.outcome is Outcome.DROP:
                row.dead_devices.append(device.installation_id)
            results.append(delivery)
        # One device reached is enough; else a retry beats a fail-over; DROP only if every device is gone.
        return min(results, key=lambda delivery: _PUSH_RANK[delivery.outcome])

    async def _sms(self, row: _Row, phone: str, digest: str, now: datetime) -> Delivery:
        """Each provider in turn, until one sends; a send of unclear fate stops here (asked next time)."""
        last: Delivery | None = None
        retry: Delivery | None = None
        for provider in self.channels.sms:
            name = provider.name.removesuffix("-sms")
            try:
                shown = render(row.intent, SMS, name)
            except TemplateError as exc:
                log.warning("notification %s: %s", row.key, exc)
                last = Delivery(Outcome.FAIL_OVER, provider.name, str(exc))
                continue
            message = Message(row.key, phone, shown.provider_template, shown.variables)
            delivery = await self._send(provider, message)
            self._attempt(row, SMS, delivery)
            if delivery.outcome is Outcome.DONE or delivery.ambiguous:
                row.sms_sent.append((digest, now))
            if delivery.outcome is Outcome.DONE or delivery.outcome is Outcome.DROP:
                return delivery
            if delivery.ambiguous:
                # Another provider now could make two messages: ask this one first, next time.
                row.unsettled.append(provider.name)
                row.unsettled_since = row.unsettled_since or now
                return Delivery(Outcome.RETRY, provider.name, delivery.detail, ambiguous=True)
            if delivery.outcome is Outcome.RETRY:
                retry = delivery
            last = delivery
        if retry is not None:
            return retry
        assert last is not None
        return last

    async def _settle(self, row: _Row, phone: str | None, now: datetime) -> bool:
        """Ask the providers whose last send was unclear; False when the row's pass ends here."""
        by_name = {p.name: p for p in self.channels.sms}
        for name in list(row.unsettled):
            provider = by_name.get(name)
            if provider is None or phone is None or not isinstance(provider, Reconciling):
                row.unsettled.remove(name)  # nobody left to ask: send again
                continue
            async with self._slot(provider.name):
                found = await provider.was_sent(row.key, phone, row.intent.occurred_at - timedelta(minutes=1))
            if found is None:
                self._attempt(row, SMS, Delivery(Outcome.RETRY, name, "could not ask whether it was sent"))
                self._retry(row, now, f"sms: {name} could not say whether it sent")
                return False
            if not found and row.unsettled_since and now < row.unsettled_since + self.rules.settle_after:
                # Not listed yet is no proof yet: ask again once reports have had time to come in.
                row.next_attempt_at = row.unsettled_since + self.rules.settle_after
                row.deferred = "settling"
                return False
            row.unsettled.remove(name)
            if found:
                found_it = Delivery(Outcome.DONE, name, "on the provider's record after an unclear answer")
                self._attempt(row, SMS, found_it)
                row.state, row.channel, row.delivered_at = "delivered", SMS, self.clock()
                return False
            self._attempt(row, SMS, Delivery(Outcome.DONE, name, "not on the provider's record"), "checked")
        return True

    def _render(self, row: _Row, channel: str) -> Any:
        try:
            return render(row.intent, channel)
        except TemplateError as exc:
            log.warning("notification %s: %s", row.key, exc)
            return None

    def _slot(self, provider: str) -> asyncio.Semaphore:
        if provider not in self._slots:
            self._slots[provider] = asyncio.Semaphore(self.rules.in_flight)
        return self._slots[provider]

    async def _send(self, channel: Channel, message: Message) -> Delivery:
        """One call, once the channel has room for it.

        Every lane's rows share the cap, so a burst waits here, not inside the provider's
        client: a channel's own timeout then measures the provider's answer, never a queue
        of our making, and a send is not taken for unclear (and looked up, or retried and
        dead-lettered though delivered) only because the dispatcher itself was too busy.
        """
        async with self._slot(channel.name):
            return await channel.send(message)

    # Recording.

    async def _record(self, rows: Sequence[_Row]) -> None:
        """Write finished rows, of one claim or several, in one transaction."""
        tries = [t for row in rows for t in row.tries]
        async with self.pool.acquire() as conn, conn.transaction():
            if tries:
                await conn.execute(_ATTEMPTS, *map(list, zip(*tries, strict=True)))
            recorded = await conn.fetch(
                _RECORD,
                [r.key for r in rows],
                [r.claim for r in rows],
                [r.state for r in rows],
                [r.channel for r in rows],
                [r.attempts for r in rows],
                [",".join(r.dropped) for r in rows],
                [",".join(r.unsettled) for r in rows],
                [r.next_attempt_at for r in rows],
                [r.last_error for r in rows],
                [r.delivered_at for r in rows],
                [r.deferred for r in rows],
                [r.unsettled_since if r.unsettled else None for r in rows],
            )
            if len(recorded) < len(rows):
                mine = {r["key"] for r in recorded}
                log.warning(
                    "dispatcher: %d notifications were taken over before they were recorded: %s",
                    len(rows) - len(mine),
                    [r.key for r in rows if r.key not in mine][:10],
                )
            await self._record_grants(conn, rows)
            dead = sorted({d for r in rows for d in r.dead_devices})
            if dead:
                # Only if not registered again since: a fresh registration is a live device.
                await conn.execute(
                    "DELETE FROM push_devices WHERE installation_id = ANY($1::text[]) AND last_seen_at <= $2",
                    dead,
                    self.clock(),
                )
            sent = [(digest, at, r.key) for r in rows for digest, at in r.sms_sent]
            if sent:
                await conn.executemany(
                    "INSERT INTO sms_sends (phone_digest, sent_at, key) VALUES ($1, $2, $3)", sent
                )

    async def _record_grants(self, conn: asyncpg.Connection, rows: Sequence[_Row]) -> None:
        spent: dict[str, list[int]] = {"sent": [], "refused": []}
        released: list[int] = []
        for row in rows:
            grant = row.grant
            if grant is None:
                continue
            if row.grant_use in spent:
                spent[row.grant_use].append(grant.id)
            elif row.grant_use != "keep" or row.state != "pending":
                released.append(grant.id)
        for how, ids in spent.items():
            if ids:
                await conn.execute(
                    "UPDATE wechat_grants SET spent_at = $2, spent_how = $3 WHERE id = ANY($1::bigint[])",
                    ids,
                    self.clock(),
                    how,
                )
        if released:
            await conn.execute(
                "UPDATE wechat_grants SET reserved_by = NULL "
                "WHERE id = ANY($1::bigint[]) AND spent_at IS NULL",
                released,
            )

    def _forget_sms_before(self, before: datetime) -> None:
        for digest, slots in list(self._sms_taken.items()):
            slots.difference_update([slot for slot in slots if slot[0] < before])  # in place: walks hold it
            if not slots:
                del self._sms_taken[digest]

    async def _prune(self, before: datetime) -> None:
        with contextlib.suppress(Exception):
            await self.pool.execute("DELETE FROM sms_sends WHERE sent_at < $1", before)


class _Lane:
    """Up to `batch` rows in flight, each recorded soon after it finishes, whatever the others do.

    A lane claims more whenever half the batch or fewer are in flight, so a slow provider
    ties up the slots of its own rows only. Finished rows are recorded together, every
    FLUSH_SECONDS or FLUSH_ROWS rows, so recording costs a transaction per group, not per row.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._half = dispatcher.rules.batch // 2
        self._delivering: dict[asyncio.Task[None], _Row] = {}
        self._finished: list[_Row] = []  # delivered, waiting to be recorded
        self._room = asyncio.Event()  # half the batch or fewer in flight
        self._finished_some = asyncio.Event()
        self._finished_enough = asyncio.Event()  # FLUSH_ROWS, or the last row in flight
        self._closing = False

    async def run(self) -> None:
        d = self._dispatcher
        recording = asyncio.create_task(self._record_as_they_finish(), name="dispatcher:record")
        holding = asyncio.create_task(d._hold(self._held), name="dispatcher:lease")
        try:
            while not d._stopping.is_set():
                await self._fill()
            # Stopping: claim nothing more; the rows in flight finish and are recorded.
            if self._delivering:
                await asyncio.wait(list(self._delivering))
            self._closing = True
            self._finished_some.set()
            self._finished_enough.set()
            await recording
        finally:
            # Cancelled past stop()'s grace: rows not recorded come free when their lease runs out.
            for task in [recording, holding, *self._delivering]:
                task.cancel()

    async def _fill(self) -> None:
        """Claim up to the batch when half of it or less is in flight; else wait until it is."""
        d = self._dispatcher
        if len(self._delivering) > self._half:
            self._room.clear()
            await self._until(self._room)
            return
        wanted = d.rules.batch - len(self._delivering)
        try:
            claim = await d._claim(wanted)
        except Exception:
            log.exception("dispatcher: claiming failed; trying again in %.1fs", d.rules.poll_seconds)
            claim = None
        if claim is not None:
            self._start(claim)
        if claim is None or len(claim.rows) < wanted:  # nothing more is due: look again later
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(d._stopping.wait(), d.rules.poll_seconds)

    def _start(self, claim: _Claim) -> None:
        for row in claim.rows:
            task = asyncio.create_task(self._dispatcher._deliver(row, claim.book, claim.at))
            self._delivering[task] = row
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        row = self._delivering.pop(task)
        if len(self._delivering) <= self._half:
            self._room.set()
        if task.cancelled():
            return
        self._finished.append(row)
        self._finished_some.set()
        if len(self._finished) >= FLUSH_ROWS or not self._delivering:
            self._finished_enough.set()

    async def _record_as_they_finish(self) -> None:
        while True:
            await self._finished_some.wait()
            with contextlib.suppress(TimeoutError):  # rows finishing meanwhile share the transaction
                await asyncio.wait_for(self._finished_enough.wait(), FLUSH_SECONDS)
            rows, self._finished = self._finished, []
            self._finished_some.clear()
            self._finished_enough.clear()
            if rows:
                try:
                    await self._dispatcher._record(rows)
                except Exception:
                    log.exception(
                        "dispatcher: recording %d notifications failed; their leases will run out", len(rows)
                    )
            if self._closing and not self._finished:
                return

    def _held(self) -> list[_Row]:
        """Rows claimed and not yet recorded (nor being recorded): the leases to renew."""
        return [*self._delivering.values(), *self._finished]

    async def _until(self, event: asyncio.Event) -> None:
        """Wait for `event`, or for the dispatcher to stop."""
        waits = [asyncio.create_task(event.wait()), asyncio.create_task(self._dispatcher._stopping.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()


def _row(r: Mapping[str, Any], claim: uuid.UUID) -> _Row:
    kind = RecipientKind(r["recipient_kind"])
    role = OfficerRole(r["recipient_role"]) if r["recipient_role"] is not None else None
    intent = Intent(
        key=r["key"],
        purpose=Purpose(r["purpose"]),
        recipient=Recipient(kind, r["recipient"], role),
        variables=msgspec.json.decode(r["variables"]),
        urgent=r["urgent"],
        occurred_at=r["occurred_at"],
        case_id=r["case_id"],
    )
    return _Row(
        intent,
        claim,
        r["attempts"],
        r["attempt_base"],
        list(r["tried_channels"]),
        list(r["unsettled"]),
        r["unsettled_since"],
    )
