"""Personal fields of a case at rest: sealed in stored_events and snapshots, typed again on load, masked in
the progress read model. Everything runs through the runtime build_runtime makes, keys and consumers included.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from backend.bootstrap import build_runtime
from backend.cases.access import Caller
from backend.cases.service import CaseService
from backend.catalogue import load_catalogue
from backend.runtime import Runtime, utc_now
from backend.settings import load_settings
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import PersonalCipher, generate_data_key, parse_data_keys
from domain.case import Agent, Case, Enterprise, Person, Role, UploadedFile
from domain.personal import Address, CreditCode, DocumentKind, IdDocument, IdNumber, PersonName, Phone
from projections.case_secrets import applicant_key
from projections.catalogue import CatalogueQueries

pytestmark = pytest.mark.integration

FOOD = "11430100006182474N010100300000"  # 食品经营许可
COMPANY = "11430100006182474N010100100000"  # 企业设立登记
SHA = "e" * 64

OUYANG = Person(
    name=PersonName("欧阳娜娜"),
    identity=IdNumber("430102199003071234"),
    phone=Phone("13812341234"),
    address=Address.parse("湖南省长沙市岳麓区麓山南路932号"),
)
STAR = Enterprise(
    name="长沙星城科技有限公司",
    identity=CreditCode("91430100MA4L0000X9"),
    phone=Phone("0731-84561234"),
    address=Address.parse("湖南省长沙市天心区芙蓉中路三段569号"),
)
SIMA = Agent(
    name=PersonName("司马光明"),
    identity=IdDocument(DocumentKind.PASSPORT, "EJ7654321"),
    phone=Phone("13700001111"),
)
# What must never be readable at rest: the values whole, and the parts their masks drop.
SECRETS = [
    "欧阳娜娜",
    "430102199003071234",
    "19900307",
    "13812341234",
    "麓山南路932号",
    "0731-84561234",
    "84561234",
    "芙蓉中路三段569号",
    "司马光明",
    "EJ7654321",
    "13700001111",
]
CLERK = Caller(subject="clerk-at-rest", role=Role.CLERK, name="周七", hall="SMZJ")

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, within: float = 20) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def runtime(db_url: str, schema: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = load_settings(
        {
            "CITYPASS_DB_SCHEMA": schema,
            "CITYPASS_DATA_KEYS": generate_data_key("at-rest"),  # a fresh key, not the public dev key
            "CITYPASS_SNAPSHOT_EVERY": "1",  # every save snapshots: snapshots hold the applicant too
            "CITYPASS_CONSUMER_POLL_SECONDS": "0.05",
            "CITYPASS_TIMER_POLL_SECONDS": "0.05",
            "CITYPASS_DATA_DIR": str(tmp_path),
        }
    )
    started = build_runtime(settings, db_url, with_consumers=True)
    await started.start()
    try:
        await load_catalogue(started.aggregates)
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def service(runtime: Runtime) -> CaseService:
    catalogue = CatalogueQueries(lambda: runtime.pool)

    async def both_items_listed() -> bool | None:
        return True if await catalogue.service(FOOD) and await catalogue.service(COMPANY) else None

    await eventually(both_items_listed, "the catalogue projected")
    return CaseService(
        runtime.aggregates,
        runtime.pool,
        catalogue,
        region="430100",
        clock=utc_now,
        materials_exist={SHA}.__contains__,
    )


async def submit_both(service: CaseService) -> tuple[uuid.UUID, uuid.UUID]:
    """At the window: a person's case, and an enterprise's through its 经办人."""
    materials = {"M01": UploadedFile(SHA)}
    person = await service.submit(
        CLERK, item_code=FOOD, client_request_id="p", applicant=OUYANG, materials=materials
    )
    company = await service.submit(
        CLERK, item_code=COMPANY, client_request_id="e", applicant=STAR, agent=SIMA, materials=materials
    )
    return person.case_id, company.case_id


async def stored_rows(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT originator_id, originator_version, topic, state FROM stored_events "
            "WHERE originator_id = ANY($1) ORDER BY originator_id, originator_version",
            ids,
        )
    )


async def test_personal_fields_are_sealed_at_rest_and_typed_again_on_load(
    runtime: Runtime, service: CaseService
) -> None:
    person_id, company_id = await submit_both(service)
    events = await stored_rows(runtime.pool, [person_id, company_id])
    snapshots = await runtime.pool.fetch(
        "SELECT state FROM snapshots WHERE originator_id = ANY($1)", [person_id, company_id]
    )
    assert len(events) == 2 and len(snapshots) == 2
    every_byte = b"\n".join([*(r["state"] for r in events), *(r["state"] for r in snapshots)])
    for secret in SECRETS:
        assert secret.encode() not in every_byte, secret
    # Sealed as typed envelopes; what is public stays readable for psql and auditors.
    for kind in ("PersonName", "IdNumber", "IdDocument", "Phone", "Address"):
        assert f'"domain.personal:{kind}"'.encode() in every_byte, kind
    assert "长沙星城科技有限公司".encode() in every_byte and b"91430100MA4L0000X9" in every_byte

    person = await runtime.aggregates.get(person_id)  # from its snapshot
    company = await runtime.aggregates.get(company_id)
    assert isinstance(person, Case) and isinstance(company, Case)
    assert (person.applicant, person.agent) == (OUYANG, None)
    assert (company.applicant, company.agent) == (STAR, SIMA)
    submitted = runtime.mapper.to_domain_event(StoredEvent(**dict(events[0])))  # from the event itself
    assert isinstance(submitted, Case.Submitted) and submitted.applicant in (OUYANG, STAR)

    # Without the key that sealed them, the events do not load at all.
    stranger = make_mapper(personal=PersonalCipher(parse_data_keys(generate_data_key("at-rest"))))
    with pytest.raises(MapperDeserialisationError):
        stranger.to_domain_event(StoredEvent(**dict(events[0])))


async def test_the_progress_read_model_holds_masked_values_only(
    runtime: Runtime, service: CaseService
) -> None:
    person_id, company_id = await submit_both(service)

    async def projected() -> list[asyncpg.Record] | None:
        rows = await runtime.pool.fetch(
            "SELECT case_id, applicant_kind, applicant_key, applicant_name, applicant_id, applicant_phone "
            "FROM cases ORDER BY applicant_kind DESC"
        )
        return list(rows) if len(rows) == 2 else None

    person, company = await eventually(projected, "both cases in the progress read model")
    assert person["case_id"] == person_id and company["case_id"] == company_id
    assert dict(person) | {"case_id": None} == {
        "case_id": None,
        "applicant_kind": "person",
        "applicant_key": applicant_key("resident_id", "430102199003071234"),
        "applicant_name": "欧***",
        "applicant_id": "430***********1234",
        "applicant_phone": "138****1234",
    }
    # An enterprise's name and 统一社会信用代码 are public; its contact's phone is not.
    assert (company["applicant_name"], company["applicant_id"], company["applicant_phone"]) == (
        "长沙星城科技有限公司",
        "91430100MA4L0000X9",
        "0731-****1234",
    )
    assert company["applicant_key"] == applicant_key("uscc", "91430100MA4L0000X9")
    rows = await runtime.pool.fetch(
        "SELECT row_to_json(c)::text FROM cases c UNION ALL SELECT row_to_json(t)::text FROM case_timeline t"
    )
    text = "\n".join(r[0] for r in rows)
    assert "周*" in text  # the timeline's actor, masked too
    for secret in SECRETS:
        assert secret not in text, secret


async def test_a_citizen_s_own_account_name_is_not_stored(runtime: Runtime, service: CaseService) -> None:
    herself = Caller(subject="citizen-ouyang", role=Role.CITIZEN, name="欧阳娜娜")
    done = await service.submit(
        herself,
        item_code=FOOD,
        client_request_id="self",
        applicant=OUYANG,
        materials={"M01": UploadedFile(SHA)},
    )
    (row,) = await stored_rows(runtime.pool, [done.case_id])
    assert "欧阳娜娜".encode() not in row["state"]
