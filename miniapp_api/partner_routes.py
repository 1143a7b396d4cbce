"""通办 partner registry (admins) and our published public keys (anyone, partners' admins above all).

A command answers with the partner as the event store has it after the command, so the
admin sees the change at once; the lists come from the read model, a moment behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from litestar import Response, Router, delete, get, post, put
from litestar.datastructures import CacheControlHeader
from litestar.params import FromPath, JSONBody

from domain.case import Actor
from domain.case import Role as DomainRole
from domain.tongban import (
    Acceptance,
    InvalidPartnerError,
    InvalidPartnerKeyError,
    LastPartnerKeyError,
    NotPartnerAdministratorError,
    Partner,
    PartnerKeyConflictError,
    UnknownPartnerError,
    UnknownPartnerKeyError,
)
from miniapp_api.auth import EXCLUDE_FROM_AUTH, CurrentPrincipal, require_roles
from miniapp_api.partner_schemas import (
    PartnerChangeOut,
    PartnerIn,
    PartnerOut,
    PublicKeyIn,
    PublishedKey,
    PublishedKeysOut,
    partner_out,
)
from miniapp_api.principal import Principal, Role, domain_actor
from miniapp_api.problems import ProblemMap
from projections.partners import PartnerInfo, PartnerQueries

_TAGS = ["通办"]
_ADMINS = require_roles(Role.ADMIN)
# The API's admins act as 政务服务管理, the office that makes 通办 agreements with other cities.
_ROLES = {Role.ADMIN: DomainRole.SUPERVISOR}
_PRIVATE = CacheControlHeader(private=True, no_store=True)


class PartnerCommands(Protocol):
    """What the routes ask of the registry (backend.federation.partners.PartnerService is the adapter)."""

    async def configure(
        self,
        actor: Actor,
        region: str,
        *,
        name: str,
        base_url: str,
        accepts: Sequence[Acceptance],
        keys: Sequence[tuple[str, str]] | None = None,
    ) -> tuple[Partner, bool]: ...
    async def add_key(self, actor: Actor, region: str, kid: str, public_key: str) -> tuple[Partner, bool]: ...
    async def retire_key(self, actor: Actor, region: str, kid: str) -> tuple[Partner, bool]: ...


def _change(partner: Partner, changed: bool) -> PartnerChangeOut:
    info = PartnerInfo(
        region=partner.region,
        name=partner.name,
        base_url=partner.base_url,
        keys=dict(partner.keys),
        accepts=partner.accepts,
        version=partner.version,
        updated_at=partner.modified_on,
    )
    return PartnerChangeOut(changed=changed, partner=partner_out(info))


def _actor(principal: Principal) -> Actor:
    return domain_actor(principal, _ROLES, "通办 partner registry")


def partner_router(service: PartnerCommands, queries: PartnerQueries) -> Router:
    @put("/{region:str}", summary="Register a partner city (with its first keys), or change its description")
    async def configure(
        region: FromPath[str], data: JSONBody[PartnerIn], principal: CurrentPrincipal
    ) -> PartnerChangeOut:
        partner, changed = await service.configure(
            _actor(principal), region, name=data.name, base_url=data.base_url,
            accepts=data.domain_accepts(), keys=data.domain_keys(),
        )  # fmt: skip
        return _change(partner, changed)

    @get("/", cache_control=_PRIVATE, summary="Every partner city, with its valid keys")
    async def partners() -> list[PartnerOut]:
        return [partner_out(p) for p in await queries.all()]

    @get("/{region:str}", cache_control=_PRIVATE, summary="One partner city")
    async def one(region: FromPath[str]) -> PartnerOut:
        found = await queries.find(region)
        if found is None:
            raise UnknownPartnerError(f"no partner city {region} is registered")
        return partner_out(found)

    @post("/{region:str}/keys", summary="Add a key beside the partner's others (a rotation's first step)")
    async def add_key(
        region: FromPath[str], data: JSONBody[PublicKeyIn], principal: CurrentPrincipal
    ) -> Response[PartnerChangeOut]:
        partner, changed = await service.add_key(_actor(principal), region, data.kid, data.public_key)
        # 200, not 201, when the key was already valid: a retried request created nothing.
        return Response(_change(partner, changed), status_code=201 if changed else 200)

    @delete(
        "/{region:str}/keys/{kid:str}",
        status_code=200,
        summary="Retire a key (the last step of a rotation); the last valid key cannot be retired",
    )
    async def retire_key(
        region: FromPath[str], kid: FromPath[str], principal: CurrentPrincipal
    ) -> PartnerChangeOut:
        partner, changed = await service.retire_key(_actor(principal), region, kid)
        return _change(partner, changed)

    return Router(
        path="/api/v1/admin/partners",
        route_handlers=[configure, partners, one, add_key, retire_key],
        guards=[_ADMINS],
        tags=_TAGS,
    )


def federation_keys_router(region: str, keys: Sequence[PublishedKey]) -> Router:
    """Our public keys, as SigningKey.public_text() gives them; the first is the one we sign with."""
    published = PublishedKeysOut(region=region, keys=list(keys))

    @get(
        "/keys",
        opt={EXCLUDE_FROM_AUTH: True},
        security=[{}],
        cache_control=CacheControlHeader(public=True, max_age=60),  # short: a rotation shows within a minute
        summary="This city's public keys, for a partner's registry",
    )
    async def our_keys() -> PublishedKeysOut:
        return published

    return Router(path="/federation/v1", route_handlers=[our_keys], tags=_TAGS)


def register_partner_problems(problems: ProblemMap) -> ProblemMap:
    """The registry's refusals: each a stable type an admin page can switch on."""
    problems.register(InvalidPartnerError, 422, "partner-invalid", "The partner's description is invalid")
    problems.register(InvalidPartnerKeyError, 422, "partner-key-invalid", "Not a valid partner key")
    problems.register(PartnerKeyConflictError, 409, "partner-key-conflict", "Key id or key already in use")
    problems.register(LastPartnerKeyError, 409, "partner-last-key", "A partner keeps at least one valid key")
    problems.register(UnknownPartnerError, 404, "partner-not-found", "No such partner city")
    problems.register(UnknownPartnerKeyError, 404, "partner-key-not-found", "The partner has no such key")
    problems.register(NotPartnerAdministratorError, 403, "partner-forbidden", "May not configure partners")
    return problems
