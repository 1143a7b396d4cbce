"""The skeleton every case command shares: look up the caller's scope, load, authorise, run, append."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from backend.calendar_data import base_calendar
from backend.cases.access import CaseNotFoundError, Identity, UnknownMaterialError, actor_of, channel_of
from backend.cases.partner_items import PartnerRegistry
from backend.cases.scope import Reach, authorise, load, look_up
from backend.cases.terms import Catalogue, ItemTerms, item_terms
from backend.store.aggregates import AggregateStore
from backend.store.errors import AggregateNotFoundError
from domain.calendar import WorkingCalendar
from domain.case import (
    DEFAULT_PATTERN,
    Actor,
    Applicant,
    Case,
    CaseStatus,
    Channel,
    MaterialSource,
    UploadedFile,
)

Command = Callable[[Case, Actor, Channel, datetime], object]


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    case_id: UUID
    number: str
    status: CaseStatus
    version: int


def outcome(case: Case) -> CaseOutcome:
    return CaseOutcome(case_id=case.id, number=case.number, status=case.status, version=case.version)


def _cannot_hash(password: str) -> str:
    raise RuntimeError("this case service was built without a password_hasher, so it cannot accept cases")


class CaseServiceBase:
    def __init__(
        self,
        aggregates: AggregateStore | Callable[[], AggregateStore],
        pool: asyncpg.Pool | Callable[[], asyncpg.Pool],
        catalogue: Catalogue,
        *,
        region: str,
        clock: Callable[[], datetime],
        materials_exist: Callable[[str], bool],
        password_hasher: Callable[[str], str] | None = None,
        calendar: Callable[[], WorkingCalendar] = base_calendar,
        number_pattern: str = DEFAULT_PATTERN,
        on_credit_blacklist: Callable[[Applicant], bool] = lambda _: False,
        partners: PartnerRegistry | None = None,
    ) -> None:
        """`aggregates` and `pool` may be callables: the runtime creates both only at start-up.

        `password_hasher` (QueryPasswords.hash, keyed by the data keys) is needed only to accept.
        `partners` (the partner registry) is needed only for partner cities' items (跨城通办).
        """
        self._aggregates = aggregates
        self._pool = pool
        self.catalogue = catalogue
        self.region = region
        self.clock = clock
        self.materials_exist = materials_exist
        self.password_hasher = password_hasher or _cannot_hash
        self.calendar = calendar
        self.number_pattern = number_pattern
        self.on_credit_blacklist = on_credit_blacklist
        self.partners = partners

    @property
    def aggregates(self) -> AggregateStore:
        a = self._aggregates
        return a if isinstance(a, AggregateStore) else a()

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool if isinstance(self._pool, asyncpg.Pool) else self._pool()

    async def run(
        self,
        caller: Identity,
        case_id: UUID,
        command: Command,
        *,
        reach: Reach = Reach.STAFF,
        department: str | None = None,
    ) -> Case:
        """Run `command` on the case under the caller's scope; reloaded and rerun on a conflict."""
        scope = await look_up(self.catalogue, caller)
        actor, channel, at = actor_of(caller), channel_of(caller), self.clock()

        def act(case: Case) -> Case:
            authorise(case, caller, reach, scope, department)
            command(case, actor, channel, at)
            return case

        try:
            return await self.aggregates.execute(case_id, act)
        except AggregateNotFoundError:
            raise CaseNotFoundError(f"no case {case_id}") from None

    async def act(self, caller: Identity, case_id: UUID, command: Command, **how: Any) -> CaseOutcome:
        return outcome(await self.run(caller, case_id, command, **how))

    def check_uploaded(self, materials: Mapping[str, MaterialSource]) -> None:
        for material_id, source in materials.items():
            if isinstance(source, UploadedFile) and not self.materials_exist(source.sha256):
                raise UnknownMaterialError(f"material {material_id}: no uploaded file {source.sha256}")

    async def terms_of(self, case_id: UUID) -> ItemTerms:
        return await item_terms(self.catalogue, (await load(self.aggregates, case_id)).item_code)
