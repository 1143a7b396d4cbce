"""What the audit tests share: a store with real cases walked through the case service, and the audit service.

Personal values are sealed at rest with a real keyring, so an unmasked answer proves
the audit opened them; the clock is moved by hand, so times and versions line up.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from eventsourcing.persistence import Mapper

from backend.audit.service import AuditService
from backend.calendar_data import base_calendar
from backend.cases.access import Caller
from backend.cases.passwords import QueryPasswords
from backend.cases.service import CaseService
from backend.catalogue import load_catalogue
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import PersonalCipher, generate_data_key, parse_data_keys
from backend.store.recorder import EventRecorder
from domain.audit import AuditAccess, Via
from domain.case import Actor, Person, ResultCode, Role, UploadedFile
from domain.case.checks import BEIJING
from domain.personal import Address, IdNumber, PersonName, Phone
from projections.case_progress import CaseProgressProjection, CaseQueries
from projections.catalogue import CatalogueProjection, CatalogueQueries
from tests.integration.store_support import Clock, catch_up

FOOD = "11430100006182474N010100300000"  # 食品经营许可, handled by SCJGJ
SHA = f"{1:064x}"
KEY_TEXT = generate_data_key("2026-a")  # as CITYPASS_DATA_KEYS gives it
KEYS = parse_data_keys(KEY_TEXT)
T0 = datetime(2026, 9, 29, 10, tzinfo=BEIJING)  # a Tuesday

ZHANG = Person(
    name=PersonName("张三"),
    identity=IdNumber("430102199003071234"),
    phone=Phone("13812341234"),
    address=Address.parse("湖南省长沙市岳麓区麓山南路1号"),
)
CITIZEN = Caller(subject="citizen-zhang", role=Role.CITIZEN)
CLERK = Caller(subject="clerk-1", role=Role.CLERK, name="周七", hall="SMZJ")
OFFICER = Caller(subject="officer-scjgj-1", role=Role.OFFICER, name="审批人", department="SCJGJ")
AUDITOR = Actor(id="auditor-1", role=Role.AUDITOR, name="审计员甲")
ACCESS_TOPIC = "domain.audit.access:AuditAccess.Recorded"


@dataclass
class World:
    pool: asyncpg.Pool
    store: AggregateStore
    mapper: Mapper[uuid.UUID]
    clock: Clock
    cases: CaseService
    audit: AuditService

    async def walk(self, request: str, *, start: datetime, steps: int = 6) -> uuid.UUID:
        """A 食品经营许可 case, one command an hour from `start`: submitted, accepted, routed, claimed,
        rejected, concluded as denied; `steps` stops it early (1: only submitted)."""
        self.clock.now = start
        done = await self.cases.submit(
            CITIZEN,
            item_code=FOOD,
            client_request_id=request,
            applicant=ZHANG,
            materials={"M01": UploadedFile(SHA)},
        )
        case_id = done.case_id
        commands = [
            lambda: self.cases.accept(CLERK, case_id),
            lambda: self.cases.route(CLERK, case_id),
            lambda: self.cases.claim_task(OFFICER, case_id, department="SCJGJ"),
            lambda: self.cases.reject_task(OFFICER, case_id, department="SCJGJ", reason="场所不符合要求"),
            lambda: self.cases.conclude(CLERK, case_id, result=ResultCode.DENIED, reason="场所不符合要求"),
        ]
        for n, command in enumerate(commands[: steps - 1], 1):
            self.clock.now = start + timedelta(hours=n)
            await command()
        return case_id

    async def project(self) -> None:
        """Bring the case index (the progress read model) up to the head of the log."""
        await catch_up(self.pool, self.mapper, CaseProgressProjection())

    async def accesses(self) -> list[AuditAccess]:
        ids = await self.pool.fetch(
            "SELECT originator_id FROM stored_events WHERE topic = $1 ORDER BY notification_id", ACCESS_TOPIC
        )
        return [await self.store.get(r[0]) for r in ids]

    async def head(self) -> int:
        return int(await self.pool.fetchval("SELECT coalesce(max(notification_id), 0) FROM stored_events"))


async def make_world(pool: asyncpg.Pool, recorder: EventRecorder, *, snapshot_every: int = 0) -> World:
    mapper = make_mapper(personal=PersonalCipher(KEYS))
    store = AggregateStore(recorder, mapper, snapshot_every=snapshot_every)
    await load_catalogue(store)
    await catch_up(pool, mapper, CatalogueProjection())
    clock = Clock(T0)
    queries = CaseQueries(pool, base_calendar, clock)
    cases = CaseService(
        store,
        pool,
        CatalogueQueries(pool),
        region="430100",
        clock=clock,
        materials_exist=lambda sha: sha == SHA,
        password_hasher=QueryPasswords(KEYS).hash,
    )
    audit = AuditService(store, pool, queries, clock=clock, via=Via.API)
    return World(pool, store, mapper, clock, cases, audit)
