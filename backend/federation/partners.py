"""The partner registry's commands over the event store: register or reconfigure a partner, rotate its keys.

Each command loads the partner (its id follows from the region), runs the domain
command, and appends; on a version conflict it runs again on fresh state. The domain
checks a public key's form; here the cryptography library must also take it as an
Ed25519 key, so that a key the messaging side could not load is never recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from backend.federation.signing import parse_public_key
from backend.store.aggregates import AggregateStore
from backend.store.retries import retry_on_conflict
from domain.case import Actor
from domain.tongban import (
    Acceptance,
    InvalidPartnerError,
    InvalidPartnerKeyError,
    Partner,
    UnknownPartnerError,
    partner_id,
)
from domain.tongban.terms import check_kid, check_public_key, check_region

Keys = Sequence[tuple[str, str]]  # (key id, base64 public key)


class PartnerService:
    def __init__(
        self,
        aggregates: AggregateStore | Callable[[], AggregateStore],
        *,
        clock: Callable[[], datetime],
        own_region: str,
    ) -> None:
        self._aggregates, self.clock, self.own_region = aggregates, clock, own_region

    @property
    def aggregates(self) -> AggregateStore:
        a = self._aggregates
        return a if isinstance(a, AggregateStore) else a()

    async def configure(
        self,
        actor: Actor,
        region: str,
        *,
        name: str,
        base_url: str,
        accepts: Iterable[Acceptance],
        keys: Keys | None = None,
    ) -> tuple[Partner, bool]:
        """Register the partner (with `keys`), or record its new description; the bool: anything changed.

        Keys change only through add_key and retire_key. Keys given for a registered partner
        must be the ones it has, so that a retried registration answers as the first did.
        """
        region = check_region(region)
        if region == self.own_region:
            raise InvalidPartnerError(f"{region} is this deployment's own region, not a partner")
        accepts, given = tuple(accepts), _checked(keys or ())
        now = self.clock()

        async def run() -> tuple[Partner, bool]:
            partner = await self.aggregates.find(partner_id(region))
            if partner is None:
                partner = Partner.register(region, name, base_url, accepts, given, actor=actor, at=now)
                changed = True
            else:
                if keys is not None and dict(given) != partner.keys:
                    raise InvalidPartnerKeyError(
                        f"{region} is registered: its keys change through its keys, one at a time"
                    )
                changed = partner.reconfigure(name, base_url, accepts, actor=actor, at=now)
            await self.aggregates.save(partner)
            return partner, changed

        return await retry_on_conflict(run)

    async def add_key(self, actor: Actor, region: str, kid: str, public_key: str) -> tuple[Partner, bool]:
        """Make a new key valid beside the others (the first step of a rotation)."""
        ((kid, public_key),) = _checked([(kid, public_key)])
        return await self._on(region, lambda p: p.add_key(kid, public_key, actor=actor, at=self.clock()))

    async def retire_key(self, actor: Actor, region: str, kid: str) -> tuple[Partner, bool]:
        """Stop accepting a key (the last step of a rotation, once the partner signs with its new one)."""
        return await self._on(region, lambda p: p.retire_key(kid, actor=actor, at=self.clock()))

    async def partner(self, region: str) -> Partner:
        """As the event store has it now (the read model may lag a moment behind)."""
        found = await self.aggregates.find(partner_id(region))
        if not isinstance(found, Partner):
            raise UnknownPartnerError(f"no partner city {region} is registered")
        return found

    async def _on(self, region: str, command: Callable[[Partner], bool]) -> tuple[Partner, bool]:
        async def run() -> tuple[Partner, bool]:
            partner = await self.partner(region)
            changed = command(partner)
            await self.aggregates.save(partner)
            return partner, changed

        return await retry_on_conflict(run)


def _checked(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The keys in recorded form, each one loadable as an Ed25519 public key."""
    checked = []
    for kid, text in keys:
        canonical = check_public_key(text)
        try:
            parse_public_key(canonical)
        except ValueError as exc:
            raise InvalidPartnerKeyError(f"key {kid!r}: {exc}") from None
        checked.append((check_kid(kid), canonical))
    return checked
