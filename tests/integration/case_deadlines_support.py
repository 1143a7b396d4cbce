"""Fixtures of the case timer tests: store, catalogue, deadlines consumer, a timer worker on a set clock.

Holds no tests; test_case_deadlines*.py and test_calendar_publish*.py import from here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.calendars import CalendarService
from backend.cases.deadline_handlers import deadline_handlers
from backend.cases.deadlines import CaseDeadlines, catalogue_times
from backend.catalogue import load_catalogue
from backend.consumers import ensure_installed
from backend.consumers.batch import process_batch
from backend.consumers.generations import active_generation
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import generate_data_key, parse_data_keys
from backend.store.recorder import EventRecorder
from backend.timers import TimerWorker
from domain.case import Actor, Case, Channel, Person, Role, UploadedFile
from domain.case.checks import BEIJING
from domain.personal import Address, IdNumber, PersonName, Phone
from projections.case_secrets import QueryPasswords
from projections.catalogue import CatalogueProjection, CatalogueQueries

FOOD = "11430100006182474N010100300000"  # 食品经营许可, 3 working days
SOCIETY = "11430100006181738Q011000200000"  # 社会团体成立登记, 20 working days

CITIZEN = Actor(id="citizen-zhang", role=Role.CITIZEN, name="张三")
CLERK = Actor(id="clerk-1", role=Role.CLERK, name="周七", hall="SMZJ")
OFFICER = Actor(id="officer-1", role=Role.OFFICER, name="赵六", department="SCJGJ")
MINI, WINDOW = Channel.MINIAPP, Channel.HALL_WINDOW
ZHANG = Person(
    name=PersonName("张三"),
    identity=IdNumber("430102199003071234"),
    phone=Phone("13812341234"),
    address=Address.parse("湖南省长沙市岳麓区麓山南路1号"),
)
PASSWORDS = QueryPasswords(parse_data_keys(generate_data_key("timers")))


def at(year: int, month: int, day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


class Clock:
    """The one clock the timer worker and its commands read; tests move it."""

    def __init__(self) -> None:
        self.now = at(2026, 1, 1)

    def __call__(self) -> datetime:
        return self.now


def submitted(when: datetime, item: str = FOOD) -> Case:
    n = uuid.uuid4().int % 10**6
    return Case.submit(
        CITIZEN,
        MINI,
        when,
        case_id=uuid.uuid4(),
        number=f"430100{when:%Y%m%d}{n:06d}",
        applicant=ZHANG,
        item_code=item,
        catalogue_version="1",
        materials={"M01": UploadedFile("a" * 64)},
    )


def accepted(when: datetime, item: str = FOOD) -> Case:
    case = submitted(when.replace(hour=8), item)
    secret = PASSWORDS.hash("731731")
    case.accept(CLERK, WINDOW, when, receipt_number=f"SL{case.number}", query_password_hash=secret)
    return case


def with_missing_materials(case: Case) -> Case:
    """容缺受理 on 5/6 with M03 owed by 5/8."""
    case.accept_with_missing_materials(
        CLERK,
        WINDOW,
        at(2026, 5, 6),
        receipt_number=f"SL{case.number}",
        query_password_hash=PASSWORDS.hash("731731"),
        missing=["M03"],
        minor=["M03"],
        commitment_sha256="c" * 64,
        supplement_due=date(2026, 5, 8),
        on_credit_blacklist=False,
    )
    return case


class Harness:
    def __init__(
        self, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], store: AggregateStore
    ) -> None:
        self.pool, self.recorder, self.mapper, self.store = pool, recorder, mapper, store
        self.clock = Clock()
        self.calendars = CalendarService(store, "430100")
        self.catalogue = CatalogueQueries(pool)
        self.consumer = CaseDeadlines(self.calendars.current, catalogue_times(self.catalogue))
        handlers = deadline_handlers(store, self.clock, self.calendars.current, PASSWORDS, self.catalogue)
        self.worker = TimerWorker(pool, handlers, self.clock)

    async def catch_up(self, consumer: Any = None, *, batch_size: int = 50) -> None:
        consumer = consumer or self.consumer
        await ensure_installed(self.pool, consumer)
        async with self.pool.acquire() as conn:
            generation = await active_generation(conn, consumer.name)
            while True:
                async with conn.transaction():
                    result = await process_batch(
                        conn, consumer, self.mapper.to_domain_event, generation, batch_size
                    )
                if result.caught_up:
                    return

    async def save(self, *cases: Case) -> None:
        await self.store.save(*cases)
        await self.catch_up()

    async def fire_at(self, when: datetime) -> int:
        """Fire every timer due by `when`, then let the consumer see what the commands recorded."""
        self.clock.now = when
        fired = 0
        while (n := await self.worker.fire_due()) > 0:
            fired += n
        await self.catch_up()
        return fired

    async def case(self, case_id: uuid.UUID) -> Case:
        found: Case = await self.store.get(case_id)
        return found

    async def timers(self, case_id: uuid.UUID) -> dict[str, tuple[datetime, bool]]:
        """Timers of one case by kind and deadline: when due, and whether fired."""
        rows = await self.pool.fetch(
            "SELECT key, due_at, fired_at FROM due_timers WHERE key LIKE $1", f"%:{case_id}%"
        )
        return {r["key"].replace(f":{case_id}", ""): (r["due_at"], r["fired_at"] is not None) for r in rows}


def beijing(d: date, hour: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=BEIJING)


@pytest.fixture(name="harness")
async def harness_fixture(db_url: str, schema: str, pool: asyncpg.Pool) -> AsyncIterator[Harness]:
    recorder = EventRecorder(db_url, schema, pool)
    await recorder.start()
    mapper = make_mapper()
    store = AggregateStore(recorder, mapper, snapshot_every=0)
    await load_catalogue(store)
    h = Harness(pool, recorder, mapper, store)
    await h.catch_up(CatalogueProjection())
    yield h
    await recorder.close()
