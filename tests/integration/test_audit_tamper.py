"""Edits made behind the store's back, in SQL, are caught and the first altered event is named exactly:
by the case's and the whole store's verification, in the history, and in an export verified offline."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest

from backend.audit.errors import HistoryUnreadableError
from backend.audit.export_verifier import ExportVerdict, verify_export
from backend.store.hashchain import chain_hash
from backend.store.recorder import EventRecorder
from domain.audit import Subject
from tests.integration.audit_support import AUDITOR, T0, World, make_world

pytestmark = pytest.mark.integration


@pytest.fixture
async def world(pool: asyncpg.Pool, recorder: EventRecorder) -> World:
    return await make_world(pool, recorder)


async def _three_cases(world: World) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    cases = (
        await world.walk("tamper-a", start=T0),
        await world.walk("tamper-b", start=T0 + timedelta(minutes=10)),
        await world.walk("tamper-c", start=T0 + timedelta(minutes=20)),
    )
    await world.project()
    return cases


async def _row(world: World, case_id: uuid.UUID, version: int) -> asyncpg.Record:
    return await world.pool.fetchrow(
        "SELECT notification_id, state, hash FROM stored_events "
        "WHERE originator_id = $1 AND originator_version = $2",
        case_id,
        version,
    )


async def _export_verdict(world: World, case: str) -> ExportVerdict:
    export = await world.audit.export(AUDITOR, reason="导出核查", case=case)
    return verify_export([line async for chunk in export.lines() for line in chunk.splitlines()])


async def test_an_edited_state_is_named_by_position_case_number_and_version(world: World) -> None:
    first, second, third = await _three_cases(world)
    number = (await world.store.get(second)).number
    clean = await world.audit.verify_store(AUDITOR, reason="例行校验")
    assert clean.ok and clean.first_broken is None and clean.aggregates_checked > 3
    before = await world.audit.verify_case(AUDITOR, number, reason="例行校验")
    assert before.ok and before.head is not None and before.head.version == 6

    # Someone rewrites why the task was rejected (version 5 of the second case), in SQL.
    row = await _row(world, second, 5)
    edited = row["state"].replace(b'"reason":"\xe5\x9c\xba', b'"reason":"\xe6\x97\xa0')  # 场… → 无…
    assert edited != row["state"]
    await world.pool.execute("UPDATE stored_events SET state = $2 WHERE notification_id = $1", row[0], edited)

    one = await world.audit.verify_case(AUDITOR, number, reason="复核")
    assert not one.ok and one.first_broken is not None
    broken = one.first_broken
    assert (broken.position, broken.case_id, broken.case_number, broken.version) == (
        row[0],
        second,
        number,
        5,
    )
    assert broken.type == "case.task_rejected" and "hash does not match" in broken.reason
    whole = await world.audit.verify_store(AUDITOR, reason="复核")
    assert whole.first_broken is not None and whole.first_broken.position == row[0]
    assert whole.first_broken.case_number == number and whole.first_broken.version == 5
    others = [await world.audit.verify_case(AUDITOR, str(c), reason="复核") for c in (first, third)]
    assert all(v.ok for v in others)

    history = await world.audit.history(AUDITOR, number, reason="复核")
    assert [e.intact for e in history.entries] == [True, True, True, True, False, True] and not history.intact
    assert history.entries[4].what is not None and history.entries[4].what["reason"].startswith("无")

    verdict = await _export_verdict(world, number)
    assert verdict.exit_code == 1 and verdict.altered is not None
    assert (verdict.altered.line, verdict.altered.case, verdict.altered.version) == (6, number, 5)
    subjects = [a.subject for a in await world.accesses()]
    assert subjects == [Subject.VERIFICATION] * 6 + [Subject.HISTORY, Subject.EXPORT]


async def test_a_forged_hash_breaks_the_next_link_and_garbage_cannot_be_replayed(world: World) -> None:
    _, second, third = await _three_cases(world)
    # The routing is edited and its own hash recomputed: the next event no longer links to it.
    row, previous = await _row(world, second, 3), await _row(world, second, 2)
    forged_state = row["state"].replace(b'"SCJGJ"', b'"GAJ"')
    forged = chain_hash(previous["hash"], "domain.case.aggregate:Case.Routed", forged_state)
    await world.pool.execute(
        "UPDATE stored_events SET state = $2, hash = $3 WHERE notification_id = $1",
        row[0],
        forged_state,
        forged,
    )
    verdict = await world.audit.verify_case(AUDITOR, str(second), reason="复核")
    assert verdict.first_broken is not None and verdict.first_broken.version == 4
    # The forged version replays as forged, but its state says the case's chain does not hold.
    routed = await world.audit.state(AUDITOR, str(second), reason="复核", version=3)
    assert list(routed.state["tasks"]) == ["GAJ"] and not routed.intact
    with pytest.raises(HistoryUnreadableError, match="version 4 of the case does not apply"):
        await world.audit.state(AUDITOR, str(second), reason="复核", version=4)

    # A state that is no longer JSON: the history shows the row without its facts; no replay passes it.
    garbage = await _row(world, third, 5)
    await world.pool.execute(
        "UPDATE stored_events SET state = 'garbage' WHERE notification_id = $1", garbage[0]
    )
    history = await world.audit.history(AUDITOR, str(third), reason="复核")
    assert history.entries[4].what is None and history.entries[4].unreadable is not None
    assert history.entries[4].occurred_at is None and history.entries[4].type == "case.task_rejected"
    assert [e.intact for e in history.entries] == [True, True, True, True, False, True]
    assert (await world.audit.state(AUDITOR, str(third), reason="复核", version=4)).status == "in_handling"
    with pytest.raises(HistoryUnreadableError, match="version 5 of the case does not decode"):
        await world.audit.state(AUDITOR, str(third), reason="复核", version=6)


async def test_a_deleted_event_is_named_by_the_event_after_the_gap(world: World) -> None:
    _, second, third = await _three_cases(world)
    number = (await world.store.get(second)).number
    gone, after = await _row(world, second, 2), await _row(world, second, 3)
    await world.pool.execute("DELETE FROM stored_events WHERE notification_id = $1", gone[0])

    one = await world.audit.verify_case(AUDITOR, number, reason="复核")
    assert one.first_broken is not None
    assert (one.first_broken.position, one.first_broken.version) == (after[0], 3)
    assert one.first_broken.reason == "version 3 where 2 was due: version 2 is missing"
    whole = await world.audit.verify_store(AUDITOR, reason="复核")
    assert whole.first_broken is not None and whole.first_broken.position == gone[0] + 1
    assert "jump" in whole.first_broken.reason

    exported = await _export_verdict(world, number)
    assert exported.altered is not None and exported.altered.version == 3
    assert "version 3 where 2 was due" in exported.altered.reason

    # A deleted submission: the case is still known as a case by its other events, without a number.
    first_of_third = await _row(world, third, 1)
    await world.pool.execute("DELETE FROM stored_events WHERE notification_id = $1", first_of_third[0])
    verdict = await world.audit.verify_case(AUDITOR, str(third), reason="复核")
    assert verdict.first_broken is not None and verdict.first_broken.version == 2
    assert verdict.first_broken.case_id == third and verdict.first_broken.case_number is None
