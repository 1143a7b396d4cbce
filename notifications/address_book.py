"""Where a batch of notifications can reach its recipients, read in the dispatcher's claim transaction.

Nothing here keeps a copy of personal data. A phone number is read from the case's own
submission event, which the mapper opens (it is sealed at rest), and lives only in the
dispatcher's memory for the batch. It is opened only for a notification that may be
texted first (no WeChat grant, no push device) or whose last text had no clear answer;
the others open it only if their walk reaches SMS (`add_phones`). The per-phone history
of SMS is kept under a keyed digest of the number, never the number.

WeChat grants are reserved here, in the claim's transaction, so that two dispatchers
never spend one grant, and a notification tried again after a crash finds the grant it
had (reserved_by is its key) instead of taking a second one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import StoredEvent

from domain.case import Case
from notifications.intents import RecipientKind

Decode = Callable[[StoredEvent], object]

_DIGEST_INFO = b"citypass/phone-digest/v1"


@dataclass(frozen=True, slots=True)
class Grant:
    id: int
    openid: str


@dataclass(frozen=True, slots=True)
class Device:
    installation_id: str
    subject: str


@dataclass(frozen=True, slots=True)
class Wanted:
    """What one claimed notification may need: who it is for and whether WeChat is worth a grant."""

    key: str
    purpose: str
    kind: RecipientKind
    address: str  # account subject or department code
    case_id: UUID | None
    wechat_template: str | None  # None: WeChat is not to be tried for it (no template, tried, muted)
    unsettled: bool = False  # a provider must be asked about its last text before anything else


@dataclass
class AddressBook:
    grants: dict[str, Grant] = field(default_factory=dict)  # by notification key
    devices_by_subject: dict[str, list[Device]] = field(default_factory=dict)
    devices_by_department: dict[str, list[Device]] = field(default_factory=dict)
    phones: dict[UUID, str] = field(default_factory=dict)  # case -> E.164, mobiles only
    phones_read: set[UUID] = field(default_factory=set)  # cases looked up, with a mobile or not
    muted: set[tuple[str, str, str]] = field(default_factory=set)  # (subject, purpose, channel)
    # SMS sent to each phone (by digest) within the longest limit's window, as (when, notification key).
    sms_history: dict[str, set[tuple[datetime, str]]] = field(default_factory=lambda: defaultdict(set))

    def devices(self, kind: RecipientKind, address: str) -> list[Device]:
        if kind is RecipientKind.CITIZEN:
            return self.devices_by_subject.get(address, [])
        return self.devices_by_department.get(address, [])


class PhoneDigest:
    """A keyed digest of a phone number: counts sends per number without storing the number."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_data_key(cls, data_key: bytes) -> PhoneDigest:
        """Under a key derived (HKDF) from a data key, for this use alone.

        A new first data key starts the per-number counts afresh: at worst a few more
        messages to a number within the limits' window, once.
        """
        return cls(HKDF(algorithm=SHA256(), length=32, salt=None, info=_DIGEST_INFO).derive(data_key))

    def __call__(self, phone: str) -> str:
        return hmac.new(self._key, phone.encode(), hashlib.sha256).hexdigest()


# Reserve one open grant per wanted notification, grants of one (subject, template) in id
# order. Only as many grants as are wanted are locked (SKIP LOCKED), per (subject, template):
# locking every open grant of the pair, as this did, cost a claim a row lock per grant a user
# ever left open, and left another dispatcher claiming the same user's notifications at that
# moment none to reserve. FOR UPDATE cannot sit beside a window function, so the grants are
# locked in a subquery and numbered outside it.
_RESERVE = """
WITH wanted AS (
    SELECT key, subject, template_id,
           row_number() OVER (PARTITION BY subject, template_id ORDER BY key) AS n
    FROM unnest($1::text[], $2::text[], $3::text[]) AS w(key, subject, template_id)
),
needs AS (
    SELECT subject, template_id, count(*) AS needed FROM wanted GROUP BY subject, template_id
),
free AS (
    SELECT f.id, needs.subject, needs.template_id,
           row_number() OVER (PARTITION BY needs.subject, needs.template_id ORDER BY f.id) AS n
    FROM needs CROSS JOIN LATERAL (
        SELECT g.id FROM wechat_grants g
        WHERE g.subject = needs.subject AND g.template_id = needs.template_id
          AND g.spent_at IS NULL AND g.reserved_by IS NULL
        ORDER BY g.id
        LIMIT needs.needed
        FOR UPDATE OF g SKIP LOCKED
    ) AS f
),
pick AS (
    SELECT w.key, f.id FROM wanted w JOIN free f USING (subject, template_id, n)
)
UPDATE wechat_grants g SET reserved_by = pick.key FROM pick WHERE g.id = pick.id
RETURNING pick.key, g.id, g.openid
"""


async def read_book(
    conn: asyncpg.Connection,
    wanted: Sequence[Wanted],
    decode: Decode,
    digest: PhoneDigest,
    history_since: datetime,
) -> AddressBook:
    book = AddressBook()
    citizens = sorted({w.address for w in wanted if w.kind is RecipientKind.CITIZEN})
    departments = sorted({w.address for w in wanted if w.kind is RecipientKind.DEPARTMENT})
    for r in await conn.fetch(
        "SELECT installation_id, subject, department, role FROM push_devices "
        "WHERE subject = ANY($1::text[]) OR (role = 'officer' AND department = ANY($2::text[]))",
        citizens,
        departments,
    ):
        device = Device(r["installation_id"], r["subject"])
        if r["subject"] in citizens:
            book.devices_by_subject.setdefault(r["subject"], []).append(device)
        if r["role"] == "officer" and r["department"] in departments:
            book.devices_by_department.setdefault(r["department"], []).append(device)
    subjects = sorted(set(citizens) | {d.subject for ds in book.devices_by_department.values() for d in ds})
    book.muted = {
        (r["subject"], r["purpose"], r["channel"])
        for r in await conn.fetch(
            "SELECT subject, purpose, channel FROM notification_preferences "
            "WHERE subject = ANY($1::text[]) AND NOT enabled",
            subjects,
        )
    }
    book.grants = await _reserve(
        conn,
        [
            w
            for w in wanted
            if w.wechat_template is not None and (w.address, w.purpose, "wechat") not in book.muted
        ],
    )
    texted_first = {
        w.case_id
        for w in wanted
        if w.case_id is not None
        and w.kind is RecipientKind.CITIZEN
        and (w.unsettled or (w.key not in book.grants and not book.devices(w.kind, w.address)))
    }
    await add_phones(conn, book, texted_first, decode, digest, history_since)
    return book


async def add_phones(
    conn: asyncpg.Connection,
    book: AddressBook,
    case_ids: Collection[UUID],
    decode: Decode,
    digest: PhoneDigest,
    history_since: datetime,
) -> None:
    """Open the phones of `case_ids` into the book, with the SMS sent to them since `history_since`."""
    wanted = set(case_ids) - book.phones_read
    if not wanted:
        return
    found = await _phones(conn, wanted, decode)
    book.phones.update(found)
    book.phones_read |= wanted
    digests = {digest(p) for p in found.values()}
    if digests:
        for r in await conn.fetch(
            "SELECT phone_digest, sent_at, key FROM sms_sends "
            "WHERE phone_digest = ANY($1::text[]) AND sent_at > $2",
            sorted(digests),
            history_since,
        ):
            book.sms_history[r["phone_digest"]].add((r["sent_at"], r["key"]))


async def _phones(conn: asyncpg.Connection, case_ids: Collection[UUID], decode: Decode) -> dict[UUID, str]:
    """The number each case was filed with: the agent's if an agent filed it, else the applicant's.

    Only mobiles: a landline takes no SMS.
    """
    if not case_ids:
        return {}
    rows = await conn.fetch(
        "SELECT originator_id, originator_version, topic, state FROM stored_events "
        "WHERE originator_id = ANY($1::uuid[]) AND originator_version = 1",
        list(case_ids),
    )
    phones: dict[UUID, str] = {}
    for r in rows:
        event = decode(StoredEvent(r["originator_id"], r["originator_version"], r["topic"], r["state"]))
        if not isinstance(event, Case.Submitted):
            continue
        number = (event.agent.phone if event.agent is not None else event.applicant.phone).number
        if number.startswith("1"):
            phones[r["originator_id"]] = "+86" + number
    return phones


# Grants the claimed notifications reserved before: an index probe per key (wechat_grants_reserved).
RESERVED_BEFORE = """
SELECT id, openid, reserved_by FROM wechat_grants WHERE reserved_by = ANY($1::text[]) AND spent_at IS NULL
"""


async def _reserve(conn: asyncpg.Connection, wanted: Sequence[Wanted]) -> dict[str, Grant]:
    if not wanted:
        return {}
    keys = [w.key for w in wanted]
    # A grant this notification reserved before (a retry, or a dispatcher that died) is its own.
    grants = {r["reserved_by"]: Grant(r["id"], r["openid"]) for r in await conn.fetch(RESERVED_BEFORE, keys)}
    rest = [w for w in wanted if w.key not in grants]
    if rest:
        for r in await conn.fetch(
            _RESERVE,
            [w.key for w in rest],
            [w.address for w in rest],
            [w.wechat_template for w in rest],
        ):
            grants[r["key"]] = Grant(r["id"], r["openid"])
    return grants


def history_window(limits: Sequence[timedelta]) -> timedelta:
    """How far back the SMS history must reach for the longest limit."""
    return max(limits, default=timedelta(0))
