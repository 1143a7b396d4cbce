"""Realistic case histories for bench/api.py, built with the domain's own commands and appended in bulk.

Every case is a single-item application for a 长沙 catalogue item, filed between
2025-01 and 2026-10 and carried to its end: submission, sometimes a 补正 round,
预审, 受理, routing, 承办 → 审核 → 批准, 办结 and an e-licence (12–15 events). Ended
cases leave no timers behind, so the server's timer worker has nothing to fire
once the consumers have caught up. Numbers are dated in the past, so they never
meet the numbers the server draws for today.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Mapper, StoredEvent

from backend.store.recorder import EventRecorder
from domain.case import (
    Actor,
    Applicant,
    Assignment,
    Case,
    Channel,
    MaterialIssue,
    Person,
    ResultCode,
    Role,
    UploadedFile,
    format_case_number,
)
from domain.case.checks import BEIJING
from domain.personal import Address, IdNumber, PersonName, Phone, id_check_char

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "backend" / "catalogue" / "changsha_430100.json"
REGION = "430100"
# One 查询密码 for every filled case: the reads never need another.
FILL_PASSWORD = "000000"

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建红文辉鹏宇浩然欣怡子涵梓轩雨桐思远"
_DISTRICTS = {
    "430102": "芙蓉区",
    "430103": "天心区",
    "430104": "岳麓区",
    "430105": "开福区",
    "430111": "雨花区",
}
_STREETS = ["五一大道", "芙蓉中路", "韶山北路", "麓山南路", "人民东路", "劳动西路", "岳麓大道", "湘江中路"]
_OPINIONS = ["同意", "材料齐全，同意办理", "经审核符合条件", "同意，按规定办结"]
_HALLS = ["SMZJ", "YLQ-ZWZX", "TXQ-ZWZX"]


def applicant(name: str, id_number: str, phone: str, address: str) -> Applicant:
    """The one place the bench builds an Applicant: a natural person with a 居民身份证."""
    return Person(
        name=PersonName(name),
        identity=IdNumber(id_number),
        phone=Phone(phone),
        address=Address.parse(address),
    )


@dataclass(frozen=True, slots=True)
class Item:
    code: str
    department: str
    materials: tuple[str, ...]


def person_items() -> list[Item]:
    """The catalogue's single items open to natural persons, with their materials."""
    data = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return [
        Item(i["code"], i["department"], tuple(m["id"] for m in i["materials"]))
        for i in data["items"]
        if "person" in i.get("audience", ["person"])
    ]


def id_number(rng: random.Random) -> str:
    """A valid 居民身份证号码 (GB 11643 check character) from a 长沙 district."""
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
    first17 = f"{rng.choice(list(_DISTRICTS))}{born:%Y%m%d}{rng.randrange(1000):03d}"
    return first17 + id_check_char(first17)


def person_fields(rng: random.Random) -> dict[str, str]:
    """A natural person's name, 身份证号, mobile and 长沙 address, as text (the API's applicant fields)."""
    district = rng.choice(list(_DISTRICTS.values()))
    return {
        "name": rng.choice(_SURNAMES) + "".join(rng.choices(_GIVEN, k=rng.choice((1, 2)))),
        "idNumber": id_number(rng),
        "phone": f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}",
        "address": f"湖南省长沙市{district}{rng.choice(_STREETS)}{rng.randrange(1, 999)}号",
    }


def random_applicant(rng: random.Random) -> Applicant:
    f = person_fields(rng)
    return applicant(f["name"], f["idNumber"], f["phone"], f["address"])


def sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


Clock = Callable[[float], datetime]  # given the usual hours since the last step, when the next happens
Step = Callable[[Any], Case]  # a command on the case (None for the submission), returning the case


def story(rng: random.Random, item: Item, number: str, password_hash: str, clock: Clock) -> list[Step]:
    """One case's commands, each appending one event: 申请, sometimes a 补正 round, 预审, 受理, 转办,
    承办 → 审核 → 批准, 办结 and an e-licence, sometimes a visit to collect the paper copy."""
    citizen = Actor(id=f"citizen-{rng.randrange(10**7):07d}", role=Role.CITIZEN)
    hall = rng.choice(_HALLS)
    clerk = Actor(id=f"clerk-{hall}-{rng.randrange(20)}", role=Role.CLERK, name="窗口人员", hall=hall)
    officers = [
        Actor(
            id=f"officer-{item.department}-{n}",
            role=Role.OFFICER,
            name="审批人员",
            department=item.department,
        )
        for n in rng.sample(range(30), 3)
    ]
    system = Actor(id="system", role=Role.SYSTEM)
    window, mini, by_system = Channel.HALL_WINDOW, Channel.MINIAPP, Channel.SYSTEM
    department, case_id = item.department, UUID(int=rng.getrandbits(128), version=4)
    materials = {m: UploadedFile(sha(rng)) for m in item.materials}
    person = random_applicant(rng)
    steps: list[Step] = [
        lambda _: Case.submit(
            citizen,
            mini,
            clock(0),
            case_id=case_id,
            number=number,
            applicant=person,
            item_code=item.code,
            catalogue_version="1",
            form={"备注": "无", "联系人": "本人"},
            materials=materials,
            request_id=f"bench-{case_id.hex[:16]}",
        )
    ]

    def then(command: Callable[[Case], object]) -> None:
        steps.append(lambda case: (command(case), case)[1])

    if rng.random() < 0.15:
        wanted, again = item.materials[-1], UploadedFile(sha(rng))
        issue = MaterialIssue(material_id=wanted, reason="扫描件不清晰")
        then(lambda c: c.request_materials(clerk, window, clock(3), issues=[issue]))
        then(lambda c: c.supplement_materials(citizen, mini, clock(20), materials={wanted: again}))
    then(lambda c: c.pass_pre_review(clerk, window, clock(2)))
    then(
        lambda c: c.accept(
            clerk, window, clock(1), receipt_number=f"SL{c.number}", query_password_hash=password_hash
        )
    )
    routing = [Assignment(department=department, item_codes=(item.code,))]
    then(lambda c: c.route(clerk, window, clock(1), assignments=routing))

    def sign(officer: Actor, opinion: str) -> None:  # 承办, 审核 or 批准: claim the step, then sign it
        then(lambda c: c.claim_task(officer, by_system, clock(6), department=department))
        then(
            lambda c: c.approve_task_step(
                officer, by_system, clock(4), department=department, opinion=opinion
            )
        )

    for officer in officers:
        sign(officer, rng.choice(_OPINIONS))
    then(lambda c: c.conclude(officers[-1], by_system, clock(2), result=ResultCode.APPROVED))
    then(lambda c: c.issue_e_licence(system, by_system, clock(1), licence_number=f"DZZZ-{c.number}"))
    if rng.random() < 0.1:
        then(lambda c: c.record_trip(citizen, window, clock(30), purpose="领取纸质证照", hall=hall))
    return steps


def past_clock(rng: random.Random, start: datetime) -> Clock:
    """Each step some hours after the last, at random around the usual."""
    at = [start]

    def clock(hours: float) -> datetime:
        at[0] += timedelta(hours=hours * (0.5 + rng.random()))
        return at[0]

    return clock


class CaseHistories:
    """Ended cases filed in 2025–2026, one after another; each is the list of its domain events."""

    def __init__(self, rng: random.Random, password_hash: str) -> None:
        self.rng = rng
        self.password_hash = password_hash
        self.items = person_items()
        self.sequence: dict[date, int] = {}

    def __iter__(self) -> Iterator[list[object]]:
        while True:
            yield self.one()

    def one(self) -> list[object]:
        rng = self.rng
        day = date(2025, 1, 2) + timedelta(days=rng.randrange(660))  # 2025-01-02 .. 2026-10-24
        seq = self.sequence[day] = self.sequence.get(day, 0) + 1
        start = datetime(
            day.year, day.month, day.day, rng.randrange(8, 18), rng.randrange(60), tzinfo=BEIJING
        )
        steps = story(
            rng,
            rng.choice(self.items),
            format_case_number(REGION, day, seq),
            self.password_hash,
            past_clock(rng, start),
        )
        case = steps[0](None)
        for step in steps[1:]:
            step(case)
        return list(case.collect_events())


class HallTicket(Aggregate):
    """取号: a hall queue ticket. Not part of the product yet; it stands for the log's other traffic.

    Only the event_counts consumer reads these; the case consumers skip them by topic.
    The server decodes them by importing this module, as it would any aggregate's.
    """

    @event("Issued")
    def __init__(self, hall: str, number: str, item_code: str) -> None:
        self.hall, self.number, self.item_code = hall, number, item_code
        self.window: str | None = None

    @event("Called")
    def call(self, window: str) -> None:
        self.window = window

    @event("Served")
    def serve(self, minutes: int, rating: int) -> None:
        self.minutes, self.rating = minutes, rating


def tickets(rng: random.Random, items: list[Item], mapper: Mapper[UUID]) -> Iterator[list[StoredEvent]]:
    """Three stored events a ticket: issued, called to a window, served and rated.

    Building and encoding a million domain events would take minutes of the bench's CPU,
    and their content matters to no measured path: 256 different tickets are encoded
    once, and each ticket reuses one of them under a fresh id.
    """
    templates = []
    for _ in range(256):
        code = rng.choice(items).code
        ticket = HallTicket(hall=rng.choice(_HALLS), number=f"A{rng.randrange(1000):03d}", item_code=code)
        ticket.call(window=f"{rng.randrange(1, 40)}号窗口")
        ticket.serve(minutes=rng.randrange(3, 40), rating=rng.choice((5, 5, 5, 4, 3)))
        templates.append([mapper.to_stored_event(e) for e in ticket.collect_events()])
    while True:
        ticket_id = UUID(int=rng.getrandbits(128), version=4)
        yield [StoredEvent(ticket_id, e.originator_version, e.topic, e.state) for e in rng.choice(templates)]


@dataclass(frozen=True, slots=True)
class Filled:
    events: int
    case_events: int
    case_ids: list[UUID]
    seconds: float

    @property
    def per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def fill_store(
    recorder: EventRecorder,
    mapper: Mapper[UUID],
    total: int,
    case_events: int,
    password_hash: str,
    *,
    seed: int = 2026,
) -> Filled:
    """Append `total` events, about `case_events` of them whole case histories and the rest tickets,
    interleaved as a real log would be; about 1,000 events per append, 4 appends in flight."""
    rng = random.Random(seed)
    cases = iter(CaseHistories(rng, password_hash))
    filler = tickets(rng, person_items(), mapper)
    in_flight: set[asyncio.Task[list[int]]] = set()
    case_ids: list[UUID] = []
    made = made_cases = 0
    started = time.perf_counter()
    while made < total:
        # Keep the cases' share of the log even from start to end.
        of_cases = made_cases < case_events and made_cases * total <= made * case_events
        batch: list[StoredEvent] = []
        while len(batch) < 1_000 and made + len(batch) < total:
            if of_cases:
                events = next(cases)
                case_ids.append(events[0].originator_id)  # type: ignore[attr-defined]
                batch.extend(mapper.to_stored_event(e) for e in events)  # type: ignore[arg-type]
            else:
                batch.extend(next(filler))
        made += len(batch)
        made_cases += len(batch) if of_cases else 0
        if len(in_flight) >= 4:
            finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                task.result()
        in_flight.add(asyncio.create_task(recorder.append(batch)))
    await asyncio.gather(*in_flight)
    return Filled(made, made_cases, case_ids, time.perf_counter() - started)
