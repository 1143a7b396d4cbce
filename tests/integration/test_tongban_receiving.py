"""收件地 of 跨城通办 on PostgreSQL: a partner's item filed and handed off, sent once, the replies applied.

株洲 (430200) is registered through the partner registry and its read model; the case
service, the TongbanHandoffs consumer and the reply handlers are the real ones, over
an event store that seals personal fields at rest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import msgspec
import pytest
from eventsourcing.persistence import Mapper

from backend.calendar_data import base_calendar
from backend.cases.access import Caller, UnknownServiceItemError
from backend.cases.handoffs import handoff_id
from backend.cases.partner_items import HandoffNotAcceptedError
from backend.cases.passwords import QueryPasswords
from backend.cases.service import CaseService
from backend.catalogue import load_catalogue
from backend.consumers import rebuild
from backend.federation.handlers import AppliedMessage, Handler
from backend.federation.kinds import HandoffRequested, Material, decode_payload
from backend.federation.messages import ENVELOPE
from backend.federation.outbox import message_id_for
from backend.federation.partners import PartnerService
from backend.federation.receiving import TongbanHandoffs, UnknownHandoffError
from backend.federation.replies import reply_handlers
from backend.federation.signing import SigningKey
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.personal_cipher import PersonalCipher, generate_data_key, parse_data_keys
from backend.store.recorder import EventRecorder
from domain.case import Actor, Case, CaseError, CaseStatus, Channel, Person, Role, UploadedFile
from domain.case.checks import BEIJING
from domain.personal import Address, IdNumber, PersonName, Phone
from domain.tongban import Acceptance
from notifications.case_notices import catalogue_items
from projections.case_progress import CaseProgressProjection, CaseQueries
from projections.catalogue import CatalogueProjection, CatalogueQueries
from projections.partners import PartnerProjection, PartnerQueries
from tests.integration.store_support import Clock, catch_up

pytestmark = pytest.mark.integration

CHANGSHA, ZHUZHOU, XIANGTAN = "430100", "430200", "430300"
ITEM = "11430200006182474N010100300000"  # 株洲's 食品经营许可: taken from us at a window or online
ONLINE_ONLY = "11430200006182474N010100400000"  # taken only as 全程网办
FOOD = "11430100006182474N010100300000"  # our own 食品经营许可
JOINT = "11430200006182474N010100500000"  # taken by 株洲 and 湘潭 as 多地联办
ACCEPTS = (
    Acceptance(item_code=ITEM, modes=("remote_collect", "full_online"), name="食品经营许可（株洲）"),
    Acceptance(item_code=ONLINE_ONLY, modes=("full_online",)),
    Acceptance(item_code=JOINT, modes=("multi_city",)),
)
ADMIN = Actor(id="admin-1", role=Role.SUPERVISOR, name="政务服务管理")
CLERK = Caller(subject="clerk-1", role=Role.CLERK, name="周七", hall="SMZJ")
CITIZEN = Caller(subject="citizen-zhang", role=Role.CITIZEN, name="张三")
CITIZEN_AT_WINDOW = CLERK  # the applicant withdraws through the window that filed the case
ZHANG = Person(
    name=PersonName("张三"),
    identity=IdNumber("430102199003071234"),
    phone=Phone("13812341234"),
    address=Address.parse("湖南省长沙市岳麓区麓山南路1号"),
)
FILES = {f"{n:064x}" for n in range(1, 5)}
SHA = sorted(FILES)
APPROVED_THERE = "株洲市市场监督管理局：批准通过"
PASSWORDS = QueryPasswords(parse_data_keys(generate_data_key("2026-q")))


@dataclass
class World:
    pool: asyncpg.Pool
    mapper: Mapper[uuid.UUID]
    store: AggregateStore
    clock: Clock
    service: CaseService
    handlers: dict[str, Handler]

    async def send(self) -> None:
        await catch_up(self.pool, self.mapper, TongbanHandoffs(self.store))

    async def case(self, case_id: uuid.UUID) -> Case:
        case: Case = await self.store.get(case_id)
        return case

    async def handed_off(self, request: str) -> tuple[uuid.UUID, uuid.UUID]:
        """A case of 株洲's item, filed and accepted at our window, handed off and sent: (case, handoff)."""
        case_id = (await submit(self.service, CLERK, ITEM, request)).id
        await self.service.accept(CLERK, case_id)
        done = await self.service.hand_off(CLERK, case_id, partner=ZHUZHOU, mode="remote_collect")
        await self.send()
        return case_id, done.handoff

    async def apply(
        self, kind: str, handoff: uuid.UUID, seq: int, partner: str = ZHUZHOU, **payload: object
    ) -> None:
        self.clock.now += timedelta(minutes=5)
        now, message_id = self.clock.now, message_id_for(CHANGSHA, handoff, seq)  # as the partner derives it
        message = AppliedMessage(
            partner=partner, message_id=message_id, handoff=handoff, seq=seq, kind=kind,
            payload=msgspec.json.encode(payload), sent_at=now, received_at=now,
        )  # fmt: skip
        await self.handlers[kind](message)


async def submit(service: CaseService, caller: Caller, item: str, request: str) -> Case:
    done = await service.submit(
        caller, item_code=item, client_request_id=request, applicant=ZHANG,
        form={"经营场所": "株洲市天元区长江北路1号"}, materials={"M01": UploadedFile(SHA[0])},
    )  # fmt: skip
    return await service.aggregates.get(done.case_id)  # type: ignore[no-any-return]


@pytest.fixture
async def world(pool: asyncpg.Pool, recorder: EventRecorder) -> World:
    mapper = make_mapper(personal=PersonalCipher(parse_data_keys(generate_data_key("tongban"))))
    store = AggregateStore(recorder, mapper, snapshot_every=0)
    clock = Clock(datetime(2026, 9, 29, 10, tzinfo=BEIJING))
    await load_catalogue(store)
    key = SigningKey.from_seed("zz-2026", b"\x07" * 32)
    await PartnerService(store, clock=clock, own_region=CHANGSHA).configure(
        ADMIN, ZHUZHOU, name="株洲市", base_url="https://zwfw.zhuzhou.example", accepts=ACCEPTS,
        keys=[(key.kid, key.public_text())],
    )  # fmt: skip
    xt = SigningKey.from_seed("xt-2026", b"\x08" * 32)
    await PartnerService(store, clock=clock, own_region=CHANGSHA).configure(
        ADMIN, XIANGTAN, name="湘潭市", base_url="https://zwfw.xiangtan.example",
        accepts=(Acceptance(item_code=JOINT, modes=("multi_city",)),), keys=[(xt.kid, xt.public_text())],
    )  # fmt: skip
    await catch_up(pool, mapper, CatalogueProjection(), PartnerProjection())
    partners = PartnerQueries(pool)
    service = CaseService(
        store, pool, CatalogueQueries(pool), region=CHANGSHA, clock=clock, materials_exist=FILES.__contains__,
        password_hasher=PASSWORDS.hash, partners=partners,
    )  # fmt: skip
    handlers = reply_handlers(lambda: store, lambda: pool, partners, clock)
    return World(pool, mapper, store, clock, service, handlers)


async def outbox(pool: asyncpg.Pool, *handoffs: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT message_id, partner, handoff, seq, kind, body FROM federation_outbox "
            "WHERE handoff = ANY($1::uuid[]) ORDER BY created_at, seq",
            list(handoffs),
        )
    )


async def test_a_partner_item_is_filed_under_the_partner_and_only_in_the_modes_it_takes(world: World) -> None:
    at_window = await submit(world.service, CLERK, ITEM, "window")
    assert (at_window.catalogue_version, at_window.children) == (f"partner:{ZHUZHOU}", ())
    ours = await submit(world.service, CLERK, FOOD, "ours")
    assert ours.catalogue_version.isdigit()  # our own catalogue first, as before
    # 全程网办 only: a citizen online may file it, a window may not.
    online = await submit(world.service, CITIZEN, ONLINE_ONLY, "online")
    assert online.catalogue_version == f"partner:{ZHUZHOU}"
    with pytest.raises(UnknownServiceItemError):
        await submit(world.service, CLERK, ONLINE_ONLY, "window-online-only")
    with pytest.raises(UnknownServiceItemError, match="no active service item"):
        await submit(world.service, CLERK, "11430200000000000X000000000000", "nobody-takes-it")


async def test_a_handed_off_case_goes_out_once_with_the_applicant_in_the_clear(world: World) -> None:
    case = await submit(world.service, CLERK, ITEM, "handoff")
    accepted = await world.service.accept(CLERK, case.id)
    # Refused before anything is recorded: a city we do not know, a mode the partner does not take.
    for partner, mode in (
        (XIANGTAN, "remote_collect"),
        (ZHUZHOU, "multi_city"),
        ("430400", "remote_collect"),
    ):
        with pytest.raises(HandoffNotAcceptedError):
            await world.service.hand_off(CLERK, case.id, partner=partner, mode=mode)
    assert (await world.case(case.id)).version == accepted.version
    done = await world.service.hand_off(
        CLERK, case.id, partner=ZHUZHOU, mode="remote_collect", request_id="k1"
    )
    again = await world.service.hand_off(
        CLERK, case.id, partner=ZHUZHOU, mode="remote_collect", request_id="k1"
    )
    assert again == done and done.status is CaseStatus.IN_HANDLING and done.version == accepted.version + 1
    assert done.handoff == handoff_id(CHANGSHA, case.id, accepted.version)

    consumer = TongbanHandoffs(world.store)
    await world.send()
    await world.send()
    await rebuild(world.store.recorder, consumer, world.mapper.to_domain_event)  # from 0: sends nothing again
    [row] = await outbox(world.pool, done.handoff)
    assert (row["partner"], row["seq"], row["kind"]) == (ZHUZHOU, 1, "handoff.requested")
    assert row["message_id"] == message_id_for(ZHUZHOU, done.handoff, 1)
    envelope = ENVELOPE.decode(row["body"])
    request = decode_payload(envelope.kind, bytes(envelope.payload))
    assert isinstance(request, HandoffRequested)
    handed = await world.case(case.id)
    assert handed.acceptance is not None
    assert (request.mode, request.item_code, request.origin_case_id, request.origin_number) == (
        "remote_collect", ITEM, case.id, case.number,
    )  # fmt: skip
    assert request.accepted_at == handed.acceptance.accepted_at
    applicant = request.applicant
    assert (applicant.kind, applicant.name, applicant.id_type, applicant.id_number, applicant.phone) == (
        "person", "张三", "resident_id", "430102199003071234", "13812341234",
    )  # fmt: skip
    assert applicant.address == "湖南省长沙市岳麓区麓山南路1号" and request.agent is None
    assert request.form == {"经营场所": "株洲市天元区长江北路1号"}
    assert request.materials == [Material(material_id="M01", sha256=SHA[0])]
    # The consumer's own table says which case the handoff is: the replies find it there.
    assert (
        await world.pool.fetchval(
            "SELECT case_id FROM tongban_sent_handoffs WHERE handoff = $1", done.handoff
        )
        == case.id
    )


async def test_the_partner_replies_carry_the_case_to_its_decision_each_once(world: World) -> None:
    case_id, handoff = await world.handed_off("decided")
    await world.apply("handoff.accepted", handoff, 1, caseNumber="430200202609290000017")
    await world.apply("status.reported", handoff, 2, step="task.claimed", label="承办人已签收",
                      occurredAt="2026-09-29T11:00:00+08:00", internal=True)  # fmt: skip
    await world.apply("status.reported", handoff, 3, step="task.approved", label=APPROVED_THERE,
                      occurredAt="2026-09-29T15:00:00+08:00")  # fmt: skip
    await world.apply("decision.reported", handoff, 4, result="approved")
    decided = await world.case(case_id)
    assert decided.status is CaseStatus.CONCLUDED and decided.approved
    assert decided.handoff is not None and decided.handoff.partner_number == "430200202609290000017"
    assert decided.conclusion is not None and decided.conclusion.concluded_by == ZHUZHOU
    # Applied again (a crash between a handler and its mark): the request ids make them no-ops.
    await world.apply("handoff.accepted", handoff, 1, caseNumber="430200202609290000017")
    await world.apply("decision.reported", handoff, 4, result="approved")
    assert (await world.case(case_id)).version == decided.version

    stored = await world.store.recorder.select_events(case_id)
    events = [world.mapper.to_domain_event(e) for e in stored]
    assert [type(e).__name__ for e in events][-4:] == [
        "HandedOff",
        "HandoffAccepted",
        "PartnerProgressed",
        "Concluded",
    ]
    zhuzhou = Actor(id=ZHUZHOU, role=Role.PARTNER, name="株洲市")
    for event in events[-3:]:
        assert (event.actor, event.channel) == (zhuzhou, Channel.PARTNER_CITY)  # type: ignore[attr-defined]
    assert events[-1].request_id == str(message_id_for(CHANGSHA, handoff, 4))  # type: ignore[attr-defined]

    await catch_up(world.pool, world.mapper, CaseProgressProjection())
    progress = await CaseQueries(
        lambda: world.pool, base_calendar, world.clock, passwords=PASSWORDS
    ).progress(case_id)
    assert progress is not None
    labels = [e.label for e in progress.timeline]
    assert labels[-4:-1] == [
        "转办理地（430200）办理（跨城通办）", "办理地已受理（430200202609290000017）",
        "办理地：株洲市市场监督管理局：批准通过",
    ]  # fmt: skip
    assert "承办人已签收" not in "".join(labels)  # the partner's staff-only step stays there
    assert progress.case.status == CaseStatus.CONCLUDED


async def test_messages_for_a_handoff_we_never_sent_raise_and_change_nothing(world: World) -> None:
    case_id, handoff = await world.handed_off("strangers")
    version = (await world.case(case_id)).version
    with pytest.raises(UnknownHandoffError):
        await world.apply("handoff.accepted", uuid.uuid4(), 1, caseNumber="N1")
    with pytest.raises(UnknownHandoffError):  # our handoff, but 湘潭 was never sent it
        await world.apply("handoff.accepted", handoff, 1, partner=XIANGTAN, caseNumber="N1")
    with pytest.raises(UnknownHandoffError):  # even a step it keeps to itself
        await world.apply("status.reported", uuid.uuid4(), 1, step="x", label="x",
                          occurredAt="2026-09-29T11:00:00+08:00", internal=True)  # fmt: skip
    assert (await world.case(case_id)).version == version


async def test_a_refused_handoff_is_back_with_the_window_and_goes_again_under_a_new_id(world: World) -> None:
    case_id, first = await world.handed_off("refused")
    await world.apply("handoff.refused", first, 1, reason="本市暂不受理该事项的异地代收")
    back = await world.case(case_id)
    assert back.status is CaseStatus.ACCEPTED and not back.with_partner
    again = await world.service.hand_off(CLERK, case_id, partner=ZHUZHOU, mode="remote_collect")
    assert again.handoff != first and again.handoff == handoff_id(CHANGSHA, case_id, back.version)
    await world.send()
    rows = await outbox(world.pool, first, again.handoff)
    assert [(r["handoff"], r["seq"], r["kind"]) for r in rows] == [
        (first, 1, "handoff.requested"), (again.handoff, 1, "handoff.requested"),
    ]  # fmt: skip
    # The refused handoff is over: a stray message on it is not taken for the new one ...
    with pytest.raises(UnknownHandoffError, match="is over"):
        await world.apply("handoff.accepted", first, 2, caseNumber="N-stale")
    # ... though its refusal, applied again, is still a no-op.
    await world.apply("handoff.refused", first, 1, reason="本市暂不受理该事项的异地代收")
    await world.apply("handoff.accepted", again.handoff, 1, caseNumber="430200202609290000018")
    taken = await world.case(case_id)
    assert taken.handoff is not None and taken.handoff.partner_number == "430200202609290000018"
    assert taken.version == back.version + 2


async def test_an_online_application_goes_straight_to_the_partner_and_its_refusal_ends_it(
    world: World,
) -> None:
    case = await submit(world.service, CITIZEN, ITEM, "online-at-home")
    assert case.status is CaseStatus.IN_HANDLING and case.acceptance is None
    assert case.handoff is not None and (case.handoff.partner, case.handoff.mode) == (ZHUZHOU, "full_online")
    again = await submit(world.service, CITIZEN, ITEM, "online-at-home")  # the app's retry: the same case
    assert (again.id, again.version) == (case.id, case.version)
    await world.send()
    [row] = await outbox(world.pool, case.handoff.handoff)
    envelope = ENVELOPE.decode(row["body"])
    request = decode_payload(envelope.kind, bytes(envelope.payload))
    assert isinstance(request, HandoffRequested)
    assert (request.mode, request.accepted_at) == ("full_online", None)  # 株洲 accepts it itself
    # Our window cannot accept it meanwhile: the handling city does.
    with pytest.raises(CaseError):
        await world.service.accept(CLERK, case.id)
    await world.apply("handoff.accepted", case.handoff.handoff, 1, caseNumber="430200202609290000031")
    await world.apply("handoff.refused", case.handoff.handoff, 2, reason="申请人不在本市参保",
                      pathForward="请向参保地人社部门申请")  # fmt: skip
    ended = await world.case(case.id)
    assert ended.status is CaseStatus.NOT_ACCEPTED and not ended.with_partner
    assert ended.refusal is not None and ended.refusal.path_forward == "请向参保地人社部门申请"


async def test_paper_and_a_withdrawal_follow_the_handoff_numbered_on(world: World) -> None:
    case_id, handoff = await world.handed_off("paper-then-withdrawn")
    await world.apply("handoff.accepted", handoff, 1, caseNumber="430200202609290000041")
    await world.service.post_paper_materials(CLERK, case_id, waybill_number="EMS1001", request_id="p1")
    await world.service.post_paper_materials(CLERK, case_id, waybill_number="EMS1001", request_id="p1")
    await world.send()
    await world.service.withdraw(CITIZEN_AT_WINDOW, case_id, reason="不再需要")
    await world.send()
    await rebuild(world.store.recorder, TongbanHandoffs(world.store), world.mapper.to_domain_event)
    rows = await outbox(world.pool, handoff)
    assert [(r["seq"], r["kind"]) for r in rows] == [
        (1, "handoff.requested"), (2, "materials.posted"), (3, "handoff.withdrawn"),
    ]  # fmt: skip
    posted = ENVELOPE.decode(rows[1]["body"])
    assert msgspec.json.decode(posted.payload) == {"waybillNumber": "EMS1001", "carrier": "EMS"}
    withdrawn = ENVELOPE.decode(rows[2]["body"])
    assert msgspec.json.decode(withdrawn.payload) == {"reason": "不再需要"}
    # What 株洲 reports after (its own withdrawal, a step that crossed ours) changes nothing here.
    version = (await world.case(case_id)).version
    await world.apply("status.reported", handoff, 2, step="case.concluded", label="办结：撤回",
                      occurredAt="2026-09-29T16:00:00+08:00")  # fmt: skip
    await world.apply("decision.reported", handoff, 3, result="approved")
    after = await world.case(case_id)
    assert after.status is CaseStatus.WITHDRAWN and after.version == version


async def test_a_refused_handoff_is_not_told_of_a_later_withdrawal(world: World) -> None:
    case_id, handoff = await world.handed_off("refused-then-withdrawn")
    await world.apply("handoff.refused", handoff, 1, reason="本市暂不受理该事项的异地代收")
    await world.service.withdraw(CITIZEN_AT_WINDOW, case_id)
    await world.send()
    assert [r["kind"] for r in await outbox(world.pool, handoff)] == ["handoff.requested"]


async def test_the_partner_sends_the_result_and_archives_the_paper(world: World) -> None:
    case_id, handoff = await world.handed_off("mailed")
    await world.apply("handoff.accepted", handoff, 1, caseNumber="430200202609290000051")
    await world.service.post_paper_materials(CLERK, case_id, waybill_number="EMS2001")
    await world.apply("decision.reported", handoff, 2, result="approved")
    await world.apply("result.delivered", handoff, 3, method="mail", reference="EMS3001", carrier="EMS",
                      deliveredAt="2026-09-30T10:00:00+08:00")  # fmt: skip
    await world.apply("materials.archived", handoff, 4, archivedAt="2026-10-08T10:00:00+08:00")
    await world.apply("materials.archived", handoff, 4, archivedAt="2026-10-08T10:00:00+08:00")
    done = await world.case(case_id)
    assert done.status is CaseStatus.DELIVERED and done.deliveries[-1].reference == "EMS3001"
    assert done.paper is not None and done.paper.archived_at is not None
    await catch_up(world.pool, world.mapper, CaseProgressProjection())
    progress = await CaseQueries(
        lambda: world.pool, base_calendar, world.clock, passwords=PASSWORDS
    ).progress(case_id)
    assert progress is not None
    assert [e.label for e in progress.timeline][-4:] == [
        "纸质材料已寄往办理地归档（EMS EMS2001）", "办结：出证办结", "结果已寄出（EMS）", "纸质材料已归档",
    ]  # fmt: skip
    assert progress.case.status == CaseStatus.DELIVERED


async def test_a_joint_case_goes_to_each_city_and_concludes_when_all_have_decided(world: World) -> None:
    case_id = (await submit(world.service, CLERK, JOINT, "joint")).id
    await world.service.accept(CLERK, case_id)
    with pytest.raises(HandoffNotAcceptedError):  # one city not registered: nothing goes to any
        await world.service.hand_off_jointly(CLERK, case_id, partners=[ZHUZHOU, "430400"])
    assert (await world.case(case_id)).status is CaseStatus.ACCEPTED
    done = await world.service.hand_off_jointly(CLERK, case_id, partners=[ZHUZHOU, XIANGTAN], request_id="j1")
    again = await world.service.hand_off_jointly(
        CLERK, case_id, partners=[ZHUZHOU, XIANGTAN], request_id="j1"
    )
    assert again == done and [p for p, _ in done.parts] == [ZHUZHOU, XIANGTAN]
    zz, xt = (h for _, h in done.parts)
    assert zz != xt and done.status is CaseStatus.IN_HANDLING
    await world.send()
    rows = await outbox(world.pool, zz, xt)
    assert sorted((r["partner"], r["seq"], r["kind"]) for r in rows) == [
        (ZHUZHOU, 1, "handoff.requested"), (XIANGTAN, 1, "handoff.requested"),
    ]  # fmt: skip
    for row in rows:
        request = decode_payload("handoff.requested", bytes(ENVELOPE.decode(row["body"]).payload))
        assert isinstance(request, HandoffRequested) and request.mode == "multi_city"

    await world.apply("handoff.accepted", zz, 1, caseNumber="ZZ-0001")
    await world.apply("handoff.accepted", xt, 1, partner=XIANGTAN, caseNumber="XT-0001")
    await world.apply("decision.reported", zz, 2, result="approved")
    assert (await world.case(case_id)).status is CaseStatus.IN_HANDLING  # 湘潭 is still deciding
    with pytest.raises(UnknownHandoffError):  # 湘潭 speaking for 株洲's part
        await world.apply("decision.reported", zz, 2, partner=XIANGTAN, result="approved")
    await world.apply("decision.reported", xt, 2, partner=XIANGTAN, result="denied", reason="不在本市缴存")
    ended = await world.case(case_id)
    assert ended.status is CaseStatus.CONCLUDED and ended.conclusion is not None
    assert ended.conclusion.reason == f"{XIANGTAN}：不在本市缴存"


async def test_a_withdrawal_of_a_joint_case_goes_to_every_city_still_on_it(world: World) -> None:
    case_id = (await submit(world.service, CLERK, JOINT, "joint-withdrawn")).id
    await world.service.accept(CLERK, case_id)
    done = await world.service.hand_off_jointly(CLERK, case_id, partners=[ZHUZHOU, XIANGTAN])
    zz, xt = (h for _, h in done.parts)
    await world.send()
    await world.apply("handoff.refused", xt, 1, partner=XIANGTAN, reason="本市暂不办理")
    assert (await world.case(case_id)).status is CaseStatus.IN_HANDLING  # 株洲 goes on
    await world.service.withdraw(CITIZEN_AT_WINDOW, case_id, reason="不再需要")
    await world.send()
    rows = await outbox(world.pool, zz, xt)
    assert sorted((r["partner"], r["seq"], r["kind"]) for r in rows) == [
        (ZHUZHOU, 1, "handoff.requested"), (ZHUZHOU, 2, "handoff.withdrawn"),
        (XIANGTAN, 1, "handoff.requested"),
    ]  # fmt: skip


async def test_the_partners_notice_is_answered_here_and_the_supplement_goes_to_it(world: World) -> None:
    case = await submit(world.service, CITIZEN, ITEM, "online-notice")
    assert case.handoff is not None
    handoff = case.handoff.handoff
    await world.send()
    await world.apply("handoff.accepted", handoff, 1, caseNumber="430200202609290000061")
    unclear = [{"materialId": "M02", "reason": "复印件不清晰"}]
    await world.apply(
        "materials.requested", handoff, 2, issues=unclear, occurredAt="2026-09-29T11:00:00+08:00"
    )
    owing = await world.case(case.id)
    assert owing.status is CaseStatus.AWAITING_CORRECTION and owing.requested == {"M02": "复印件不清晰"}
    await world.service.supplement_materials(CITIZEN, case.id, materials={"M02": UploadedFile(SHA[1])})
    await world.send()
    rows = await outbox(world.pool, handoff)
    assert [(r["seq"], r["kind"]) for r in rows] == [(1, "handoff.requested"), (2, "materials.supplemented")]
    sent = msgspec.json.decode(ENVELOPE.decode(rows[1]["body"]).payload)
    assert sent == {"materials": [{"materialId": "M02", "sha256": SHA[1]}], "attempt": 1}
    assert (await world.case(case.id)).status is CaseStatus.IN_HANDLING  # with 株洲 again


async def test_notices_name_a_partner_item_by_the_name_its_registry_entry_gives(world: World) -> None:
    lookup = catalogue_items(CatalogueQueries(world.pool), PartnerQueries(world.pool))
    found = await lookup([ITEM, ONLINE_ONLY, FOOD, "11430200000000000X000000000000"])
    assert found[ITEM] is not None and found[ITEM].name == "食品经营许可（株洲）"
    assert found[ONLINE_ONLY] is None  # registered without a name: the notice shows the code
    assert found[FOOD] is not None and found[FOOD].name == "食品经营许可"  # our own catalogue first
    assert found["11430200000000000X000000000000"] is None
