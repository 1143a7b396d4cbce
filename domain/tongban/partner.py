"""A partner city (通办), as our administration configured it: where it listens, what it takes, its keys.

Each city runs its own deployment; the registry says which of them we exchange signed
messages with. A key id stays bound to its key for good, retired or not, so a message
that names a key id can only ever have been checked against one key. A partner always
keeps a valid key: rotation adds the new key (both are valid), lets the partner sign
with it, and only then retires the old one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.case import Actor, Role
from domain.case.checks import beijing_time
from domain.tongban.errors import (
    InvalidPartnerKeyError,
    LastPartnerKeyError,
    NotPartnerAdministratorError,
    PartnerKeyConflictError,
    UnknownPartnerKeyError,
)
from domain.tongban.terms import (
    MAX_KEYS,
    Acceptance,
    check_accepts,
    check_base_url,
    check_kid,
    check_name,
    check_public_key,
    check_region,
)

# Fixed forever: every partner's id is derived from it and its region.
PARTNER_NAMESPACE = UUID("a51d145a-9e0e-4ee0-b822-4c6f9fbf8b3b")


def partner_id(region: str) -> UUID:
    return uuid5(PARTNER_NAMESPACE, f"partner:{region}")


def _administrator(actor: Actor) -> Actor:
    # The API's admins act as 政务服务管理 (Role.SUPERVISOR): partner agreements are theirs.
    if actor.role is not Role.SUPERVISOR:
        raise NotPartnerAdministratorError(f"a {actor.role} does not configure partner cities")
    return actor


class Partner(Aggregate):
    """One partner city's deployment, keyed by its region (区划代码)."""

    class Registered(Aggregate.Created):
        region: str
        name: str
        base_url: str
        accepts: tuple[Acceptance, ...]
        actor: Actor

    class Reconfigured(Aggregate.Event):
        name: str
        base_url: str
        accepts: tuple[Acceptance, ...]
        actor: Actor

        def apply(self, partner: Partner) -> None:
            partner.name, partner.base_url, partner.accepts = self.name, self.base_url, self.accepts

    class KeyAdded(Aggregate.Event):
        kid: str
        public_key: str  # base64 of the 32 raw bytes of an Ed25519 public key
        actor: Actor

        def apply(self, partner: Partner) -> None:
            partner.keys = {**partner.keys, self.kid: self.public_key}
            partner.retired = {k: v for k, v in partner.retired.items() if k != self.kid}

    class KeyRetired(Aggregate.Event):
        kid: str
        actor: Actor

        def apply(self, partner: Partner) -> None:
            partner.retired = {**partner.retired, self.kid: partner.keys[self.kid]}
            partner.keys = {k: v for k, v in partner.keys.items() if k != self.kid}

    @staticmethod
    def create_id(region: str) -> UUID:
        return partner_id(region)

    @classmethod
    def register(
        cls,
        region: str,
        name: str,
        base_url: str,
        accepts: Iterable[Acceptance],
        keys: Iterable[tuple[str, str]],
        *,
        actor: Actor,
        at: datetime,
    ) -> Partner:
        """Register a partner with its first keys (at least one): (key id, base64 public key) pairs."""
        _administrator(actor)
        given = [(check_kid(kid), check_public_key(key)) for kid, key in keys]
        if not given:
            raise InvalidPartnerKeyError("a partner is registered with at least one public key")
        partner = cls._create(
            cls.Registered,
            region=check_region(region),
            name=check_name(name),
            base_url=check_base_url(base_url),
            accepts=check_accepts(accepts),
            actor=actor,
            timestamp=beijing_time(at),
        )
        for kid, key in given:
            partner.add_key(kid, key, actor=actor, at=at)
        return partner

    def __init__(
        self, region: str, name: str, base_url: str, accepts: tuple[Acceptance, ...], actor: Actor
    ) -> None:
        self.region, self.name, self.base_url, self.accepts = region, name, base_url, accepts
        self.keys: dict[str, str] = {}  # valid now: key id -> public key
        self.retired: dict[str, str] = {}  # no longer valid, but their ids stay bound to them

    def reconfigure(
        self, name: str, base_url: str, accepts: Iterable[Acceptance], *, actor: Actor, at: datetime
    ) -> bool:
        """Record the new description; False (and no event) when nothing changed."""
        _administrator(actor)
        name, base_url, checked = check_name(name), check_base_url(base_url), check_accepts(accepts)
        if (name, base_url, checked) == (self.name, self.base_url, self.accepts):
            return False
        self.trigger_event(
            self.Reconfigured,
            name=name,
            base_url=base_url,
            accepts=checked,
            actor=actor,
            timestamp=beijing_time(at),
        )
        return True

    def add_key(self, kid: str, public_key: str, *, actor: Actor, at: datetime) -> bool:
        """Make a key valid; False when it already is. A retired key may be added again, as itself."""
        _administrator(actor)
        kid, public_key = check_kid(kid), check_public_key(public_key)
        known = self.keys.get(kid, self.retired.get(kid))
        if known is not None and known != public_key:
            raise PartnerKeyConflictError(f"key id {kid!r} already stands for another key of {self.region}")
        if kid in self.keys:
            return False
        every = (*self.keys.items(), *self.retired.items())
        if other := next((k for k, v in every if v == public_key and k != kid), None):
            raise PartnerKeyConflictError(f"this public key is already {self.region}'s key {other!r}")
        if len(self.keys) >= MAX_KEYS:
            raise InvalidPartnerKeyError(f"at most {MAX_KEYS} keys are valid at once: retire one first")
        self.trigger_event(
            self.KeyAdded, kid=kid, public_key=public_key, actor=actor, timestamp=beijing_time(at)
        )
        return True

    def retire_key(self, kid: str, *, actor: Actor, at: datetime) -> bool:
        """Stop accepting messages signed with a key; False when it is already retired."""
        _administrator(actor)
        if kid in self.retired:
            return False
        if kid not in self.keys:
            raise UnknownPartnerKeyError(f"{self.region} has no key {kid!r}")
        if len(self.keys) == 1:
            raise LastPartnerKeyError(
                f"{kid!r} is {self.region}'s last valid key: add its new key before retiring this one"
            )
        self.trigger_event(self.KeyRetired, kid=kid, actor=actor, timestamp=beijing_time(at))
        return True
