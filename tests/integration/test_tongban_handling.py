"""办理地 on PostgreSQL: a partner's `handoff.requested` opens one linked case here, or one refusal."""

from __future__ import annotations

import dataclasses
import uuid

import asyncpg
import msgspec
import pytest
from eventsourcing.persistence import Mapper

from backend.federation.handling_rules import handled_case_id
from backend.federation.kinds import Material, Party
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from domain.case import Case, CaseStatus, Channel, Person, Role, UploadedFile
from tests.integration.tongban_handling_support import (
    FOOD,
    SOLE_TRADER,
    ZHANG,
    ZHUZHOU,
    Handling,
    handling,
    outbox,
    requested,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
async def city(pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> Handling:
    return await handling(pool, recorder, mapper)


async def head(recorder: EventRecorder) -> int:
    return int(await recorder.max_notification_id() or 0)


async def test_a_requested_handoff_opens_exactly_one_linked_case(
    city: Handling, recorder: EventRecorder
) -> None:
    handoff = uuid.uuid4()
    message = requested(handoff)
    before = await head(recorder)
    await city.handler(message)
    assert await head(recorder) == before + 2  # Submitted and ReceivedFromPartner, in one append
    case = await city.store.get(handled_case_id(ZHUZHOU, handoff))
    assert isinstance(case, Case) and case.status is CaseStatus.SUBMITTED
    assert case.number.startswith("43010020260929") and case.item_code == SOLE_TRADER
    assert (case.submitted_by.id, case.submitted_by.role, case.submitted_by.name) == (
        ZHUZHOU,
        Role.PARTNER,
        "株洲市",  # no partner registered under 430200 here: the catalogue's name for it
    )
    assert case.origin is not None and (case.origin.partner, case.origin.handoff) == (ZHUZHOU, handoff)
    assert case.origin.number == "430200202609290000007" and case.origin.mode == "remote_collect"
    assert isinstance(case.applicant, Person) and case.applicant.phone.number == "13812341234"
    assert case.materials == {"M01": UploadedFile("a" * 64), "M02": UploadedFile("b" * 64)}
    assert case.form == {"经营范围": "餐饮服务"}
    events = await recorder.select_events(case.id)
    assert [e.originator_version for e in events] == [1, 2]
    assert str(message.message_id) in case.processed_requests
    stored = [city.store.mapper.to_domain_event(e) for e in events]
    assert all(e.channel is Channel.PARTNER_CITY for e in stored)  # type: ignore[attr-defined]

    await city.handler(message)  # applied again (a crash before the mark): nothing more
    await city.handler(dataclasses.replace(message, message_id=uuid.uuid4()))  # a resend under a new id
    assert await head(recorder) == before + 2
    assert await outbox(city.pool, handoff) == []  # taken on: the reports consumer says so, not the handler


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"item_code": FOOD}, f"本市不以异地代收代办受理事项 {FOOD}"),
        ({"item_code": "NOPE"}, "no active item NOPE"),
        ({"mode": "full_online"}, "is not served in mode full_online here"),
        ({"applicant": msgspec.structs.replace(ZHANG, id_number="430102199003071235")}, "applicant.idNumber"),
        (  # an enterprise needs a 经办人: the case itself refuses
            {"applicant": Party(
                kind="enterprise", name="株洲星城科技有限公司", id_type="uscc",
                id_number="91430100MA4L0000X9", phone="0731-88880000", address="湖南省株洲市天元区",
            )},
            "the application cannot be filed here",
        ),
        (
            {"materials": [Material(material_id="M01", sha256="a" * 64),
                           Material(material_id="M01", sha256="c" * 64)]},
            "material M01 is listed twice",
        ),
    ],
)  # fmt: skip
async def test_a_handoff_not_taken_gets_one_refusal_and_no_case(
    city: Handling, recorder: EventRecorder, changes: dict[str, object], reason: str
) -> None:
    handoff = uuid.uuid4()
    message = requested(handoff, **changes)  # type: ignore[arg-type]
    before = await head(recorder)
    await city.handler(message)
    await city.handler(message)  # again: the same refusal, not a second one
    sent = await outbox(city.pool, handoff)
    assert [(s.seq, s.kind) for s in sent] == [(1, "handoff.refused")]
    assert reason in sent[0].payload["reason"] and "430102199003071235" not in sent[0].payload["reason"]
    assert await head(recorder) == before  # no case, and no case number's worth of events
    assert await recorder.select_events(handled_case_id(ZHUZHOU, handoff)) == []


async def test_once_refused_a_handoff_never_opens_a_case(city: Handling, recorder: EventRecorder) -> None:
    """A rerun after the refusal went out finds it, even if the catalogue would now say yes."""
    handoff = uuid.uuid4()
    await city.handler(requested(handoff, item_code=FOOD))
    before = await head(recorder)
    await city.handler(requested(handoff))
    assert await head(recorder) == before
    assert [s.kind for s in await outbox(city.pool, handoff)] == ["handoff.refused"]
