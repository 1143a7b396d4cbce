"""Case progress end to end on PostgreSQL: real case events through the store, projected, queried, rebuilt.

The cases straddle 2026 国庆 (10/1–10/7 off, 10/10 a make-up Saturday), so the
deadlines below only come out right with the real calendar.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.calendar_data import base_calendar
from backend.catalogue import DEFAULT_CATALOGUE, load_catalogue
from backend.consumers import ensure_installed, rebuild
from backend.consumers.batch import process_batch
from backend.consumers.generations import active_generation
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import generate_data_key, parse_data_keys
from backend.store.recorder import EventRecorder
from domain.case import (
    Actor,
    Agent,
    Applicant,
    Assignment,
    Case,
    Channel,
    Enterprise,
    MaterialIssue,
    NextAction,
    Person,
    ResultCode,
    Role,
    SuspensionKind,
    UploadedFile,
)
from domain.case.checks import BEIJING
from domain.personal import Address, CreditCode, IdNumber, PersonName, Phone
from projections.case_progress import CaseProgressProjection, CaseQueries, plain
from projections.case_secrets import QueryPasswords, applicant_key
from projections.catalogue import CatalogueProjection
from projections.work_queue import WorkQueueProjection

pytestmark = pytest.mark.integration

DOCTOR = "114301000061845686010900300000"  # 医师执业注册, WJW, 5 working days
FOOD = "11430100006182474N010100300000"  # 食品经营许可, SCJGJ, 3 working days
COMPANY = "11430100006182474N010100100000"  # 企业设立登记, SCJGJ, 1 working day
SOCIETY = "11430100006181738Q011000200000"  # 社会团体成立登记, MZJ, 20 working days

ZHANG = Person(
    name=PersonName("张三"),
    identity=IdNumber("430102199003071234"),
    phone=Phone("13812341234"),
    address=Address.parse("湖南省长沙市岳麓区麓山南路1号"),
)
LI = Person(
    name=PersonName("李四"),
    identity=IdNumber("430103198502025672"),
    phone=Phone("13998765432"),
    address=Address.parse("湖南省长沙市天心区人民路2号"),
)
STAR = Enterprise(
    name="长沙星城科技有限公司",
    identity=CreditCode("91430100MA4L0000X9"),
    phone=Phone("0731-88880000"),
    address=Address.parse("湖南省长沙市天心区"),
)
STAR_AGENT = Agent(
    name=PersonName("王五"), identity=IdNumber("430104197707079991"), phone=Phone("13700001111")
)
PLAINTEXT = [
    *(plain(p.identity) for p in (ZHANG, LI, STAR_AGENT)),
    *(plain(p.phone) for p in (ZHANG, LI, STAR, STAR_AGENT)),
    "张三",
    "李四",
    "王五",
]

CITIZEN_ZHANG = Actor(id="citizen-zhang", role=Role.CITIZEN, name="张三")
CITIZEN_LI = Actor(id="citizen-li", role=Role.CITIZEN, name="李四")
AGENT_WANG = Actor(id="agent-wang", role=Role.AGENT, name="王五")
CLERK = Actor(id="clerk-1", role=Role.CLERK, name="周七", hall="SMZJ")
MINI, WINDOW = Channel.MINIAPP, Channel.HALL_WINDOW
PASSWORDS = {"A": "731-A", "B": "731-B", "C": "731-C", "E": "731-E", "F": "731-F"}
QUERY_PASSWORDS = QueryPasswords(parse_data_keys(generate_data_key("progress")))
# What an earlier release stored for 查询密码 731731: such events are kept, so the lookup still opens them.
LEGACY_SCRYPT = "scrypt$16384$8$1$AAECAwQFBgcICQoLDA0ODw$BK-8Hfz6p3yqyxkLffVKydRue-_K6tdPUvLjrDLO63c"


def officer(department: str, n: int) -> Actor:
    return Actor(id=f"officer-{department}-{n}", role=Role.OFFICER, name="赵六", department=department)


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=BEIJING)


def fixed_clock(month: int, day: int, hour: int = 10) -> Callable[[], datetime]:
    return lambda: at(month, day, hour)


class World:
    """Five cases, their ids by letter."""

    def __init__(self) -> None:
        self.ids: dict[str, uuid.UUID] = {}
        self.numbers: dict[str, str] = {}


def _submit(
    world: World, letter: str, who: Actor, when: datetime, applicant: Applicant, item: str, **kw: Any
) -> Case:
    number = f"430100{when:%Y%m%d}{len(world.ids) + 1:06d}"
    case = Case.submit(
        who,
        MINI,
        when,
        case_id=uuid.uuid4(),
        number=number,
        applicant=applicant,
        item_code=item,
        catalogue_version="1",
        materials={"M01": UploadedFile(f"{len(world.ids) + 1:064x}")},
        **kw,
    )
    world.ids[letter], world.numbers[letter] = case.id, number
    return case


def _accept(case: Case, letter: str, when: datetime) -> None:
    secret = QUERY_PASSWORDS.hash(PASSWORDS[letter])
    case.accept(CLERK, WINDOW, when, receipt_number=f"SL-{letter}", query_password_hash=secret)


def _sign(case: Case, department: str, when: datetime, steps: int = 3) -> None:
    for n in range(steps):
        case.claim_task(officer(department, n), MINI, when, department=department)
        case.approve_task_step(officer(department, n), MINI, when, department=department, opinion="同意")


async def build_world(store: AggregateStore) -> World:
    world = World()
    # A: 张三, 医师执业注册: 补正, accepted 9/29, 现场勘查 9/30–10/9, approved, e-licence, one trip.
    a = _submit(world, "A", CITIZEN_ZHANG, at(9, 28), ZHANG, DOCTOR)
    a.request_materials(
        CLERK, WINDOW, at(9, 28, 15), issues=[MaterialIssue(material_id="M02", reason="缺体检证明")]
    )
    a.supplement_materials(CITIZEN_ZHANG, MINI, at(9, 29, 8), materials={"M02": UploadedFile("b" * 64)})
    _accept(a, "A", at(9, 29))
    a.route(CLERK, WINDOW, at(9, 29, 10), assignments=[Assignment(department="WJW", item_codes=(DOCTOR,))])
    _sign(a, "WJW", at(9, 30), steps=1)
    a.suspend(
        officer("WJW", 1),
        MINI,
        at(9, 30, 11),
        kind=SuspensionKind.SITE_SURVEY,
        reason="执业场所",
        expected_end=date(2026, 10, 9),
    )
    a.resume(officer("WJW", 1), MINI, at(10, 9))
    for n in (1, 2):
        a.claim_task(officer("WJW", n), MINI, at(10, 9, 10), department="WJW")
        a.approve_task_step(officer("WJW", n), MINI, at(10, 9, 10), department="WJW", opinion="同意")
    a.conclude(officer("WJW", 2), MINI, at(10, 9, 11), result=ResultCode.APPROVED)
    a.issue_e_licence(
        Actor(id="system", role=Role.SYSTEM), Channel.SYSTEM, at(10, 9, 12), licence_number="EL-1"
    )
    a.record_trip(CLERK, WINDOW, at(10, 12), purpose="领取纸质证书", hall="SMZJ")
    # B: 李四, 食品经营许可 accepted 9/29 → due 10/9; C: an enterprise, 企业设立登记 accepted 9/25 → due 9/28.
    b = _submit(world, "B", CITIZEN_LI, at(9, 28), LI, FOOD)
    _accept(b, "B", at(9, 29))
    b.route(CLERK, WINDOW, at(9, 29, 10), assignments=[Assignment(department="SCJGJ", item_codes=(FOOD,))])
    c = _submit(world, "C", AGENT_WANG, at(9, 25, 8), STAR, COMPANY, agent=STAR_AGENT)
    _accept(c, "C", at(9, 25))
    c.route(CLERK, WINDOW, at(9, 25, 10), assignments=[Assignment(department="SCJGJ", item_codes=(COMPANY,))])
    c.claim_task(officer("SCJGJ", 0), MINI, at(9, 25, 11), department="SCJGJ")
    # E: 张三 again, 食品经营许可 accepted 10/8 → due 10/12 (10/10 is a make-up Saturday).
    e = _submit(world, "E", CITIZEN_ZHANG, at(10, 8, 8), ZHANG, FOOD)
    _accept(e, "E", at(10, 8))
    e.route(CLERK, WINDOW, at(10, 8, 10), assignments=[Assignment(department="SCJGJ", item_codes=(FOOD,))])
    # F: 李四, 社会团体成立登记 accepted 12/28: 20 working days run into 2027, not yet published.
    f = _submit(world, "F", CITIZEN_LI, at(12, 28, 8), LI, SOCIETY)
    _accept(f, "F", at(12, 28))
    for case in (a, b, c, e, f):
        await store.save(case)
    return world


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
def store(recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> AggregateStore:
    return AggregateStore(recorder, mapper, snapshot_every=0)


async def catch_up(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], consumer: Any
) -> None:
    await ensure_installed(pool, consumer)
    async with pool.acquire() as conn:
        generation = await active_generation(conn, consumer.name)
        while True:
            async with conn.transaction():
                result = await process_batch(conn, consumer, mapper.to_domain_event, generation, 9)
            if result.caught_up:
                return


@pytest.fixture
async def world(
    store: AggregateStore, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> World:
    await load_catalogue(store)
    built = await build_world(store)
    for consumer in (CatalogueProjection(), CaseProgressProjection(), WorkQueueProjection()):
        await catch_up(pool, recorder, mapper, consumer)
    return built


def queries(pool: asyncpg.Pool, month: int = 10, day: int = 8) -> CaseQueries:
    return CaseQueries(lambda: pool, base_calendar, fixed_clock(month, day), passwords=QUERY_PASSWORDS)


async def test_timeline_status_and_deadline_across_national_day(world: World, pool: asyncpg.Pool) -> None:
    progress = await queries(pool).progress(world.numbers["A"])  # by 办件编号
    assert progress is not None
    assert [e.label for e in progress.timeline] == [
        "提交申请",
        "一次性告知补正材料",
        "补正材料（第1次）",
        "已受理",
        "转长沙市卫生健康委员会办理",
        "长沙市卫生健康委员会：承办签收",
        "长沙市卫生健康委员会：承办通过",
        "挂起：现场勘查",
        "恢复办理",
        "长沙市卫生健康委员会：审核签收",
        "长沙市卫生健康委员会：审核通过",
        "长沙市卫生健康委员会：批准签收",
        "长沙市卫生健康委员会：批准通过",
        "办结：出证办结",
        "电子证照已发放",
        "现场办理一次",
    ]
    assert [e.internal for e in progress.timeline].count(True) == 3  # the three claims
    summary = progress.case
    assert (summary.status, summary.status_label, summary.current_step) == (
        "delivered",
        "已送达",
        "现场办理一次",
    )
    assert (summary.applicant_name, progress.applicant_id, progress.applicant_phone) == (
        "张*",
        "430***********1234",
        "138****1234",
    )
    assert progress.submitter == "citizen-zhang" and progress.departments == ("WJW",)
    assert progress.timeline[3].actor_name == "周*" and progress.timeline[3].channel == "hall_window"
    # 9/29 + 5 working days, 9/30–10/8 suspended: 10/9, 10/10 (调休), 10/12, 10/13, 10/14.
    deadline = summary.deadline
    assert deadline is not None
    assert (deadline.due, deadline.provisional, deadline.light, deadline.working_days_left) == (
        date(2026, 10, 14),
        False,
        None,  # concluded: no light any more
        None,
    )
    assert [s.action for s in progress.next_steps] == [NextAction.RATE]
    same = await queries(pool).progress(str(world.ids["A"]))  # by case id
    assert same == progress


async def test_lights_follow_the_clock_and_provisional_years(world: World, pool: asyncpg.Pool) -> None:
    b_on = {}
    for day in (8, 9, 12):
        found = await queries(pool, 10, day).progress(world.numbers["B"])
        assert found is not None and found.case.deadline is not None
        b_on[day] = (
            found.case.deadline.due,
            found.case.deadline.working_days_left,
            found.case.deadline.light,
        )
    # 9/29 + 3 working days: 9/30, 10/8, 10/9.
    assert b_on == {
        8: (date(2026, 10, 9), 1, "yellow"),
        9: (date(2026, 10, 9), 0, "yellow"),
        12: (date(2026, 10, 9), -2, "red"),
    }
    f = await queries(pool, 12, 29).progress(world.numbers["F"])
    assert f is not None and f.case.deadline is not None
    assert (f.case.deadline.provisional, f.case.deadline.years_assumed) == (True, (2027,))
    assert f.case.status_label == "已受理" and f.case.deadline.light == "green"


async def test_my_cases_and_dossier(world: World, pool: asyncpg.Pool) -> None:
    q = queries(pool)
    mine = await q.my_cases("citizen-zhang")
    assert [c.number for c in mine] == [world.numbers["E"], world.numbers["A"]]  # newest first
    assert await q.my_cases("citizen-nobody") == []
    dossier = await q.dossier(applicant_key("resident_id", ZHANG.identity.number))
    assert [c.number for c in dossier] == [world.numbers["E"], world.numbers["A"]]
    company = await q.dossier(applicant_key("uscc", STAR.identity.code))
    assert [(c.number, c.applicant_name) for c in company] == [(world.numbers["C"], "长沙星城科技有限公司")]
    # C's last step is a claim, which the applicant does not see: the routing stays current.
    assert [(c.number, c.current_step) for c in await q.my_cases("agent-wang")] == [
        (world.numbers["C"], "转长沙市市场监督管理局办理")
    ]


async def test_anonymous_progress_needs_the_right_password(world: World, pool: asyncpg.Pool) -> None:
    q = queries(pool)
    found = await q.anonymous_progress("SL-B", PASSWORDS["B"])
    assert found is not None
    assert (found.number, found.status_label) == (world.numbers["B"], "办理中")
    assert [s.label for s in found.timeline] == ["提交申请", "已受理", "转长沙市市场监督管理局办理"]
    assert found.current_step == "转长沙市市场监督管理局办理"
    # Nothing about the applicant.
    assert "李" not in repr(found) and LI.identity.number[-4:] not in repr(found)
    assert not any("applicant" in field or "actor" in field for field in found.__struct_fields__)
    assert await q.anonymous_progress("SL-B", PASSWORDS["C"]) is None
    assert await q.anonymous_progress("SL-B", "") is None
    assert await q.anonymous_progress("SL-NOPE", PASSWORDS["B"]) is None
    # Another deployment's keys open nothing, though the receipt and the password are right.
    stranger = QueryPasswords(parse_data_keys(generate_data_key("progress")))
    elsewhere = CaseQueries(lambda: pool, base_calendar, fixed_clock(10, 8), passwords=stranger)
    assert await elsewhere.anonymous_progress("SL-B", PASSWORDS["B"]) is None


async def test_anonymous_progress_opens_a_hash_an_earlier_release_stored(
    world: World,
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
) -> None:
    g = _submit(world, "G", CITIZEN_LI, at(9, 28), LI, FOOD)
    g.accept(CLERK, WINDOW, at(9, 29), receipt_number="SL-G", query_password_hash=LEGACY_SCRYPT)
    await store.save(g)
    await catch_up(pool, recorder, mapper, CaseProgressProjection())
    found = await queries(pool).anonymous_progress("SL-G", "731731")
    assert found is not None and found.number == world.numbers["G"]
    assert await queries(pool).anonymous_progress("SL-G", "731732") is None


async def test_a_department_renamed_in_the_catalogue_reads_by_its_new_name(
    world: World,
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    tmp_path: Path,
) -> None:
    timeline = "SELECT row_to_json(t)::text FROM case_timeline t ORDER BY case_id, version"
    stored = [r[0] for r in await pool.fetch(timeline)]
    raw = json.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    for department in raw["departments"]:
        if department["code"] == "SCJGJ":
            department["name"] = "长沙市市场监督管理局（知识产权局）"
    renamed = tmp_path / "catalogue.json"
    renamed.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    assert (await load_catalogue(store, renamed)).revised  # every entry of SCJGJ, as events
    await catch_up(pool, recorder, mapper, CatalogueProjection())

    found = await queries(pool).progress(world.numbers["B"])
    assert found is not None
    assert found.timeline[-1].label == found.case.current_step == "转长沙市市场监督管理局（知识产权局）办理"
    # Only the catalogue moved: the case rows still mark the department by its code.
    assert [r[0] for r in await pool.fetch(timeline)] == stored


async def test_next_steps_while_materials_are_owed(
    world: World,  # for the catalogue the deadlines read
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
) -> None:
    case = _submit(world, "G", CITIZEN_LI, at(9, 1), LI, FOOD)
    case.request_materials(
        CLERK, WINDOW, at(9, 1, 10), issues=[MaterialIssue(material_id="M03", reason="缺平面图")]
    )
    await store.save(case)
    await catch_up(pool, recorder, mapper, CaseProgressProjection())
    found = await queries(pool).progress(world.numbers["G"])
    assert found is not None and found.case.status_label == "待补正" and found.case.deadline is None
    (step,) = found.next_steps
    assert step.action is NextAction.SUPPLEMENT_MATERIALS and step.materials[0].reason == "缺平面图"


async def test_no_plaintext_personal_data_and_rebuild_is_identical(
    world: World, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    tables = ("cases", "case_timeline", "work_queue", "work_queue_cases")

    async def dump() -> dict[str, list[str]]:
        # Every column of every row, as text: whatever a table holds, the scan sees it.
        return {
            t: [r[0] for r in await pool.fetch(f"SELECT row_to_json(x)::text FROM {t} x ORDER BY 1")]
            for t in tables
        }

    before = await dump()
    assert len(before["cases"]) == 5 and len(before["work_queue"]) == 4
    text = "\n".join(line for rows in before.values() for line in rows)
    for secret in [*PLAINTEXT, *PASSWORDS.values()]:
        assert secret not in text, secret
    for consumer in (CaseProgressProjection(), WorkQueueProjection()):
        assert await rebuild(recorder, consumer, mapper.to_domain_event, batch_size=4) == 2
    assert await dump() == before
