"""The case service on PostgreSQL: idempotent and racing submissions, scope refusals, a 企业开办 bundle."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.cases.access import (
    Caller,
    CaseNotFoundError,
    NotYourCaseError,
    UnknownMaterialError,
    UnknownServiceItemError,
)
from backend.cases.passwords import QueryPasswords
from backend.cases.service import CaseService
from backend.catalogue import load_catalogue, read_catalogue
from backend.consumers import ensure_installed
from backend.consumers.batch import process_batch
from backend.consumers.generations import active_generation
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import generate_data_key, parse_data_keys
from backend.store.recorder import EventRecorder
from domain.case import (
    Agent,
    Case,
    CaseStatus,
    Enterprise,
    IllegalTransitionError,
    InvalidCommandError,
    MaterialsMissingError,
    NotAuthorisedActorError,
    Person,
    ResultCode,
    Role,
    UploadedFile,
)
from domain.case.checks import BEIJING
from domain.personal import Address, CreditCode, IdNumber, PersonName, Phone
from projections.catalogue import CatalogueProjection, CatalogueQueries

pytestmark = pytest.mark.integration

SOURCE = read_catalogue()
START_UP = next(b for b in SOURCE.bundles if b.name == "企业开办一件事")
FOOD = "11430100006182474N010100300000"  # 食品经营许可, SCJGJ
NOW = datetime(2026, 9, 29, 10, tzinfo=BEIJING)  # a Tuesday
FILES = {f"{n:064x}" for n in range(1, 10)}
SHA = sorted(FILES)
PASSWORDS = QueryPasswords(parse_data_keys(generate_data_key("2026-q")))

ZHANG = Person(
    name=PersonName("张三"),
    identity=IdNumber("430102199003071234"),
    phone=Phone("13812341234"),
    address=Address.parse("湖南省长沙市岳麓区麓山南路1号"),
)
STAR = Enterprise(
    name="长沙星城科技有限公司",
    identity=CreditCode("91430100MA4L0000X9"),
    phone=Phone("0731-88880000"),
    address=Address.parse("湖南省长沙市天心区"),
)
WANG = Agent(name=PersonName("王五"), identity=IdNumber("430104197707079991"), phone=Phone("13700001111"))
CITIZEN = Caller(subject="citizen-zhang", role=Role.CITIZEN, name="张三")
OTHER_CITIZEN = Caller(subject="citizen-li", role=Role.CITIZEN, name="李四")
AGENT = Caller(subject="agent-wang", role=Role.AGENT, name="王五")
CLERK = Caller(subject="clerk-1", role=Role.CLERK, name="周七", hall="SMZJ")
OTHER_HALL = Caller(subject="clerk-2", role=Role.CLERK, name="吴八", hall="YLQ")


def officer(department: str, n: int = 1) -> Caller:
    return Caller(subject=f"officer-{department}-{n}", role=Role.OFFICER, department=department)


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
async def service(pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> CaseService:
    store = AggregateStore(recorder, mapper, snapshot_every=0)
    await load_catalogue(store)
    projection = CatalogueProjection()
    await ensure_installed(pool, projection)
    async with pool.acquire() as conn:
        generation = await active_generation(conn, projection.name)
        while True:
            async with conn.transaction():
                done = await process_batch(conn, projection, mapper.to_domain_event, generation, 100)
            if done.caught_up:
                break
    return CaseService(
        store,
        pool,
        CatalogueQueries(pool),
        region="430100",
        clock=lambda: NOW,
        materials_exist=FILES.__contains__,
        password_hasher=PASSWORDS.hash,
    )


async def head(recorder: EventRecorder) -> int:
    return int(await recorder.max_notification_id() or 0)


async def submit_food(service: CaseService, request: str = "req-1") -> uuid.UUID:
    done = await service.submit(
        CITIZEN,
        item_code=FOOD,
        client_request_id=request,
        applicant=ZHANG,
        materials={"M01": UploadedFile(SHA[0])},
    )
    return done.case_id


async def test_the_same_client_request_id_makes_one_case(
    service: CaseService, recorder: EventRecorder
) -> None:
    first = await service.submit(CITIZEN, item_code=FOOD, client_request_id="same", applicant=ZHANG)
    again = await service.submit(CITIZEN, item_code=FOOD, client_request_id="same", applicant=ZHANG)
    assert again == first and first.status is CaseStatus.SUBMITTED and first.version == 1
    assert first.number.startswith("43010020260929")
    racing = await asyncio.gather(
        *(
            service.submit(CITIZEN, item_code=FOOD, client_request_id="race", applicant=ZHANG)
            for _ in range(20)
        )
    )
    assert len({r.case_id for r in racing}) == 1 and len({r.number for r in racing}) == 1
    assert await head(recorder) == 2 + len(SOURCE.items) + len(SOURCE.bundles) + 1  # + the listing
    # Another account with the same client request id is another case.
    other = await service.submit(OTHER_CITIZEN, item_code=FOOD, client_request_id="same", applicant=ZHANG)
    assert other.case_id != first.case_id


async def test_200_concurrent_submissions_get_unique_numbers(service: CaseService) -> None:
    done = await asyncio.gather(
        *(
            service.submit(CITIZEN, item_code=FOOD, client_request_id=f"many-{i}", applicant=ZHANG)
            for i in range(200)
        )
    )
    assert len({d.case_id for d in done}) == 200
    assert len({d.number for d in done}) == 200


async def test_refusals_append_nothing(service: CaseService, recorder: EventRecorder) -> None:
    case_id = await submit_food(service)
    accepted = await service.accept(CLERK, case_id)
    before = await head(recorder)
    refusals = [
        (
            UnknownServiceItemError,
            service.submit(CITIZEN, item_code="NOPE", client_request_id="x", applicant=ZHANG),
        ),
        (
            UnknownMaterialError,
            service.submit(
                CITIZEN,
                item_code=FOOD,
                client_request_id="y",
                applicant=ZHANG,
                materials={"M01": UploadedFile("f" * 64)},
            ),
        ),
        (NotYourCaseError, service.withdraw(OTHER_CITIZEN, case_id)),
        (NotYourCaseError, service.route(OTHER_HALL, case_id)),  # accepted at SMZJ
        (NotYourCaseError, service.route(officer("GAJ"), case_id)),  # not the item's department
        (NotAuthorisedActorError, service.route(CITIZEN, case_id)),
        (NotAuthorisedActorError, service.accept(OTHER_CITIZEN, case_id)),
        (IllegalTransitionError, service.accept(CLERK, case_id)),  # accepted already
        (CaseNotFoundError, service.route(CLERK, uuid.uuid4())),
        (CaseNotFoundError, service.withdraw(CITIZEN, uuid.uuid4())),
    ]
    for error, attempt in refusals:
        with pytest.raises(error):
            await attempt
    routed = await service.route(CLERK, case_id)
    with pytest.raises(NotYourCaseError):
        await service.claim_task(officer("GAJ"), case_id, department="SCJGJ")
    assert routed.version == accepted.version + 1
    assert await head(recorder) == before + 1  # only the routing


async def test_acceptance_returns_the_password_once(service: CaseService) -> None:
    case_id = await submit_food(service)
    accepted = await service.accept(CLERK, case_id, request_id="acc-1")
    assert accepted.query_password is not None and len(accepted.query_password) == 6
    assert accepted.receipt_number == f"SL{accepted.number}"
    case = await service.aggregates.get(case_id)
    assert isinstance(case, Case) and case.acceptance is not None
    stored = case.acceptance.query_password_hash
    assert stored.startswith("hmac-sha256$2026-q$") and accepted.query_password not in stored
    assert PASSWORDS.verify(accepted.query_password, stored)
    replay = await service.accept(CLERK, case_id, request_id="acc-1")  # the client retried
    assert replay.query_password is None and replay.version == accepted.version


async def test_company_start_up_bundle(service: CaseService, recorder: EventRecorder) -> None:
    files = {m: UploadedFile(sha) for m, sha in zip(("M01", "M02", "M03"), SHA, strict=False)}
    submitted = await service.submit(
        AGENT,
        item_code=START_UP.code,
        client_request_id="company",
        applicant=STAR,
        agent=WANG,
        materials=files,
    )
    case_id = submitted.case_id
    with pytest.raises(InvalidCommandError):  # the 承诺时限 of 1 working day ends on 9/30
        await service.accept_with_missing_materials(
            CLERK, case_id, missing=["M04"], commitment_sha256=SHA[5], supplement_due=date(2026, 10, 9)
        )
    accepted = await service.accept_with_missing_materials(
        CLERK, case_id, missing=["M04"], commitment_sha256=SHA[5]
    )
    assert accepted.query_password is not None
    case = await service.aggregates.get(case_id)
    assert case.acceptance.supplement_due == date(2026, 9, 30) and case.missing_minor == {"M04"}

    routed = await service.route(CLERK, case_id)
    assert routed.status is CaseStatus.IN_HANDLING
    case = await service.aggregates.get(case_id)
    departments = sorted(case.tasks)
    assert len(departments) == 5 and "SCJGJ" in departments
    for department in departments:
        for _step in ("承办", "审核", "批准"):
            await service.claim_task(officer(department), case_id, department=department)
            await service.approve_task_step(
                officer(department), case_id, department=department, opinion="同意"
            )
    with pytest.raises(MaterialsMissingError, match="M04"):  # 容缺 material still owed
        await service.conclude(CLERK, case_id, result=ResultCode.APPROVED)
    with pytest.raises(NotYourCaseError):
        await service.supplement_materials(CITIZEN, case_id, materials={"M04": UploadedFile(SHA[6])})
    await service.supplement_materials(AGENT, case_id, materials={"M04": UploadedFile(SHA[6])})
    concluded = await service.conclude(CLERK, case_id, result=ResultCode.APPROVED)
    assert concluded.status is CaseStatus.CONCLUDED
    for n, child in enumerate(START_UP.children):
        delivered = await service.issue_e_licence(CLERK, case_id, licence_number=f"EL-{n}", item_code=child)
    assert delivered.status is CaseStatus.DELIVERED
    trip = await service.record_trip(OTHER_HALL, case_id, purpose="领取纸质执照")
    case = await service.aggregates.get(case_id)
    assert trip.version == case.version and case.trip_log[0].hall == "YLQ"
    assert [d.reference for d in case.deliveries] == [f"EL-{n}" for n in range(5)]


async def test_an_approval_on_a_commitment_can_be_revoked_by_its_department_only(
    service: CaseService, recorder: EventRecorder
) -> None:
    case_id = await submit_food(service, "food-commitment")
    await service.accept_on_commitment(CLERK, case_id, commitment_sha256=SHA[4], replaced_proofs=["M02"])
    await service.route(CLERK, case_id)
    for _step in ("承办", "审核", "批准"):
        await service.claim_task(officer("SCJGJ"), case_id, department="SCJGJ")
        await service.approve_task_step(officer("SCJGJ"), case_id, department="SCJGJ", opinion="同意")
    await service.conclude(CLERK, case_id, result=ResultCode.APPROVED)
    before = await head(recorder)
    with pytest.raises(NotYourCaseError):  # another department's officer
        await service.revoke_commitment_approval(officer("ZJJ"), case_id, reason="核查不实")
    with pytest.raises(NotAuthorisedActorError):  # a clerk may not revoke
        await service.revoke_commitment_approval(CLERK, case_id, reason="核查不实")
    assert await head(recorder) == before

    revoked = await service.revoke_commitment_approval(
        officer("SCJGJ"), case_id, reason="现场核查：经营场所与承诺不符", request_id="rev-1"
    )
    assert revoked.status is CaseStatus.REVOKED
    again = await service.revoke_commitment_approval(
        officer("SCJGJ"), case_id, reason="现场核查：经营场所与承诺不符", request_id="rev-1"
    )
    assert again.version == revoked.version  # the retried request appends nothing


async def test_only_an_approval_given_on_a_commitment_can_be_revoked(
    service: CaseService, recorder: EventRecorder
) -> None:
    case_id = await submit_food(service, "food-standard")
    await service.accept(CLERK, case_id)
    before = await head(recorder)
    with pytest.raises(IllegalTransitionError):
        await service.revoke_commitment_approval(officer("SCJGJ"), case_id, reason="核查不实")
    assert await head(recorder) == before
