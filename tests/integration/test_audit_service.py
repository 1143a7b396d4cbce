"""电子监察 on PostgreSQL: a case's unmasked history, its state at a version or a time, exports, and
every access recorded as an event before the answer (and none for a refused request)."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import asyncpg
import pytest

from backend.audit.errors import BeforeSubmissionError, VersionNotFoundError
from backend.audit.export_verifier import verify_export
from backend.cases.access import CaseNotFoundError
from backend.store.hashchain import GENESIS, chain_hash
from backend.store.recorder import EventRecorder
from domain.audit import InvalidScopeError, NotAnAuditorError, Period, ReasonRequiredError, Subject, Via
from domain.case import Actor, Role
from tests.integration.audit_support import AUDITOR, T0, World, make_world

pytestmark = pytest.mark.integration


@pytest.fixture
async def world(pool: asyncpg.Pool, recorder: EventRecorder) -> World:
    return await make_world(pool, recorder)


async def test_the_history_is_ordered_unmasked_chained_and_its_reading_recorded(world: World) -> None:
    case_id = await world.walk("hist-1", start=T0)
    await world.project()
    number = (await world.store.get(case_id)).number

    history = await world.audit.history(AUDITOR, number, reason="电子监察抽查 2026-09")
    assert history.case_id == case_id and history.number == number and history.intact
    assert (
        [e.version for e in history.entries] == [1, 2, 3, 4, 5, 6] == list(range(1, history.head_version + 1))
    )
    assert [e.type for e in history.entries] == [
        "case.submitted", "case.accepted", "case.routed", "case.task_claimed", "case.task_rejected",
        "case.concluded",
    ]  # fmt: skip
    assert history.entries[0].topic == "domain.case.aggregate:Case.Submitted"
    positions = [e.position for e in history.entries]
    assert positions == sorted(positions) and len(set(positions)) == 6
    # Who, when, through which channel: the events' own times, an hour apart.
    assert [e.occurred_at for e in history.entries] == [T0 + timedelta(hours=n) for n in range(6)]
    clerk = history.entries[1].actor
    assert clerk is not None and (clerk.id, clerk.role, clerk.name, clerk.hall) == (
        "clerk-1",
        "clerk",
        "周七",
        "SMZJ",
    )
    assert history.entries[1].channel == "hall_window" and history.entries[0].channel == "miniapp"
    assert history.entries[3].actor is not None and history.entries[3].actor.department == "SCJGJ"
    assert history.entries[2].label == "转长沙市市场监督管理局办理"  # the catalogue names the department
    # Unmasked: the auditor reads what is sealed at rest.
    applicant = history.entries[0].what["applicant"]  # type: ignore[index]
    assert applicant == {
        "kind": "person", "name": "张三", "identity": "430102199003071234", "phone": "13812341234",
        "address": "湖南省长沙市岳麓区麓山南路1号",
    }  # fmt: skip
    sealed = await world.pool.fetchval("SELECT state FROM stored_events WHERE originator_id = $1", case_id)
    assert b"430102199003071234" not in sealed and b"13812341234" not in sealed
    # Each hash chains to the one before, from the empty genesis.
    previous = GENESIS
    for entry in history.entries:
        row = await world.pool.fetchrow(
            "SELECT topic, state, hash FROM stored_events WHERE notification_id = $1", entry.position
        )
        assert entry.previous_hash == previous.hex() and entry.hash == row["hash"].hex() and entry.intact
        assert chain_hash(previous, row["topic"], row["state"]) == row["hash"]
        previous = row["hash"]

    by_id = await world.audit.history(AUDITOR, str(case_id), reason="复核同一办件")
    assert by_id.entries == history.entries
    recorded = await world.accesses()
    assert [(a.subject, a.case_id, a.case_number, a.reason, a.via) for a in recorded] == [
        (Subject.HISTORY, case_id, number, "电子监察抽查 2026-09", Via.API),
        (Subject.HISTORY, case_id, number, "复核同一办件", Via.API),
    ]
    assert recorded[0].auditor == AUDITOR and recorded[0].created_on == T0 + timedelta(hours=5)


async def test_refused_accesses_read_nothing_and_record_nothing(world: World) -> None:
    case_id = await world.walk("refused", start=T0, steps=2)
    await world.project()
    before = await world.head()
    clerk = Actor(id="clerk-1", role=Role.CLERK, hall="SMZJ")
    backwards = Period(since=T0.date(), until=date(2026, 9, 1))
    before_it = T0 - timedelta(days=1)
    ref = str(case_id)
    refusals = [
        (ReasonRequiredError, world.audit.history(AUDITOR, ref, reason="   ")),
        (ReasonRequiredError, world.audit.history(AUDITOR, ref, reason="x" * 201)),
        (NotAnAuditorError, world.audit.history(clerk, ref, reason="想看看")),
        (CaseNotFoundError, world.audit.history(AUDITOR, "430100209901010000001", reason="抽查")),
        (CaseNotFoundError, world.audit.history(AUDITOR, str(uuid.uuid4()), reason="抽查")),
        (VersionNotFoundError, world.audit.state(AUDITOR, ref, reason="抽查", version=3)),
        (BeforeSubmissionError, world.audit.state(AUDITOR, ref, reason="抽查", at=before_it)),
        (InvalidScopeError, world.audit.export(AUDITOR, reason="抽查")),
        (InvalidScopeError, world.audit.export(AUDITOR, reason="抽查", period=backwards)),
    ]
    for error, attempt in refusals:
        with pytest.raises(error):
            await attempt
    # A catalogue entry is no case: its id is refused like an unknown one.
    entry = await world.pool.fetchval(
        "SELECT originator_id FROM stored_events WHERE topic NOT LIKE 'domain.case.%' LIMIT 1"
    )
    with pytest.raises(CaseNotFoundError):
        await world.audit.history(AUDITOR, str(entry), reason="抽查")
    assert await world.head() == before


async def test_the_state_at_a_version_or_a_time_is_rebuilt_from_the_events_alone(
    pool: asyncpg.Pool, recorder: EventRecorder
) -> None:
    # Snapshots every 2 events, each then spoiled: the audit must never read one.
    world = await make_world(pool, recorder, snapshot_every=2)
    case_id = await world.walk("state-1", start=T0)
    spoiled = await pool.execute(
        "UPDATE snapshots SET state = '{\"spoiled\": true}' WHERE originator_id = $1", case_id
    )
    assert spoiled == "UPDATE 3"
    ref = str(case_id)

    submitted = await world.audit.state(AUDITOR, ref, reason="还原提交时状态", version=1)
    assert (submitted.version, submitted.head_version, submitted.status) == (1, 6, "submitted")
    assert submitted.at == T0 and submitted.intact and submitted.item_code.endswith("010100300000")
    assert submitted.state["applicant"]["identity"] == "430102199003071234"
    assert submitted.state["acceptance"] is None and submitted.state["tasks"] == {}

    routed = await world.audit.state(AUDITOR, ref, reason="还原转办时状态", version=3)
    assert routed.status == "in_handling" and list(routed.state["tasks"]) == ["SCJGJ"]
    assert routed.state["tasks"]["SCJGJ"]["state"] == "waiting"
    assert routed.state["acceptance"]["receipt_number"] == f"SL{routed.number}"

    # 30 minutes after the acceptance (T0 + 1h): version 2, accepted, not yet routed.
    between = await world.audit.state(AUDITOR, ref, reason="还原某时刻状态", at=T0 + timedelta(minutes=90))
    assert (between.version, between.status, between.status_label) == (2, "accepted", "已受理")
    assert between.at == T0 + timedelta(hours=1)
    naive = await world.audit.state(
        AUDITOR, ref, reason="北京时间", at=(T0 + timedelta(hours=1)).replace(tzinfo=None)
    )
    assert naive.version == 2  # a time without an offset is Beijing time

    head = await world.audit.state(AUDITOR, ref, reason="当前状态")
    assert head.version == 6 and head.status == "concluded"
    assert (
        head.state["conclusion"]["result"] == "denied"
        and head.state["conclusion"]["reason"] == "场所不符合要求"
    )
    details = [(a.subject, a.detail) for a in await world.accesses()]
    assert details == [
        (Subject.STATE, "version 1"),
        (Subject.STATE, "version 3"),
        (Subject.STATE, f"at {(T0 + timedelta(minutes=90)).isoformat()}: version 2"),
        (Subject.STATE, f"at {(T0 + timedelta(hours=1)).isoformat()}: version 2"),
        (Subject.STATE, "version 6"),
    ]


async def test_exports_hold_whole_histories_in_store_order_and_verify_offline(world: World) -> None:
    first = await world.walk("export-a", start=T0)
    second = await world.walk(
        "export-b", start=T0 + timedelta(minutes=30), steps=3
    )  # interleaved with the first
    await world.walk("export-next-day", start=T0 + timedelta(days=1), steps=2)
    await world.project()

    one = await world.audit.export(AUDITOR, reason="移送纪检 单件", case=str(first))
    lines = [line async for chunk in one.lines() for line in chunk.splitlines()]
    verdict = verify_export(lines)
    assert verdict.exit_code == 0 and (verdict.events, verdict.cases) == (6, 1), verdict.describe()
    header, *events, trailer = (json.loads(line) for line in lines)
    assert header["kind"] == "header" and header["format"] == "citypass.audit-export"
    assert header["scope"] == {"case_id": str(first), "case_number": events[0]["case_number"]}
    assert header["exported_by"]["id"] == "auditor-1" and header["reason"] == "移送纪检 单件"
    assert trailer == {"kind": "trailer", "events": 6, "cases": 1}
    assert one.filename == f"citypass-audit-{events[0]['case_number']}.jsonl"
    assert events[0]["fields"]["applicant"]["phone"] == "13812341234"
    assert events[0]["type"] == "case.submitted" and events[0]["previous_hash"] == ""

    day = await world.audit.export(
        AUDITOR, reason="九月二十九日全部办件", period=Period(since=T0.date(), until=T0.date())
    )
    lines = [line async for chunk in day.lines() for line in chunk.splitlines()]
    verdict = verify_export(lines)
    assert verdict.exit_code == 0 and (verdict.events, verdict.cases) == (9, 2), verdict.describe()
    events = [json.loads(line) for line in lines[1:-1]]
    assert {e["case_id"] for e in events} == {str(first), str(second)}
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    assert day.filename == "citypass-audit-2026-09-29_2026-09-29.jsonl"
    accesses = await world.accesses()
    assert [(a.subject, a.case_id, a.period) for a in accesses] == [
        (Subject.EXPORT, first, None),
        (Subject.EXPORT, None, Period(since=T0.date(), until=T0.date())),
    ]
    assert json.loads(lines[0])["access_id"] == str(accesses[1].id)  # the header names its access
