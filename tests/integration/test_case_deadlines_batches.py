"""Case timers worked a batch at a time leave the same timers and facts as one event at a time."""

from __future__ import annotations

from datetime import date

import pytest

from backend.calendar_data import YearFile
from backend.consumers import ensure_installed, tracking_name
from domain.case import Actor, MaterialIssue, ResultCode, Role, SuspensionKind, UploadedFile
from domain.case.records import ExtensionKind
from tests.integration.case_deadlines_support import (  # noqa: F401 (fixture)
    CITIZEN,
    CLERK,
    OFFICER,
    PASSWORDS,
    SOCIETY,
    WINDOW,
    Harness,
    accepted,
    at,
    harness_fixture,
    submitted,
    with_missing_materials,
)

pytestmark = pytest.mark.integration

HEAD = Actor(id="officer-2", role=Role.OFFICER, name="钱八", department="SCJGJ")
YEAR_2027 = YearFile(
    year=2027, holidays=[date(2027, 1, 1)], makeup_days=[], source="国办发明电〔2026〕(test)"
)


async def every_kind_of_history(harness: Harness) -> None:
    """Cases touching every branch of the consumer, and a published year between their events."""
    quiet = submitted(at(2026, 5, 6))
    corrected = submitted(at(2026, 5, 6))
    corrected.request_materials(
        CLERK, WINDOW, at(2026, 5, 7), issues=[MaterialIssue(material_id="M02", reason="缺")]
    )
    corrected.supplement_materials(CITIZEN, WINDOW, at(2026, 5, 9), materials={"M02": UploadedFile("b" * 64)})
    refused = submitted(at(2026, 5, 6))
    refused.refuse_acceptance(CLERK, WINDOW, at(2026, 5, 7), reason="不属本机关", path_forward="请向区局申请")
    owing = with_missing_materials(submitted(at(2026, 5, 6, 8)))
    paying = with_missing_materials(submitted(at(2026, 5, 6, 8)))
    paying.supplement_materials(CITIZEN, WINDOW, at(2026, 5, 7), materials={"M03": UploadedFile("d" * 64)})
    paused = accepted(at(2026, 9, 29))
    paused.suspend(
        OFFICER,
        WINDOW,
        at(2026, 9, 30),
        kind=SuspensionKind.SITE_SURVEY,
        reason="勘查",
        expected_end=date(2026, 10, 12),
    )
    paused.resume(OFFICER, WINDOW, at(2026, 10, 12))
    extended = accepted(at(2026, 9, 29))
    extended.request_extension(OFFICER, WINDOW, at(2026, 9, 30), kind=ExtensionKind.STANDARD, reason="复杂")
    extended.approve_extension(HEAD, WINDOW, at(2026, 9, 30, 15))
    voided = accepted(at(2026, 9, 29))
    voided.conclude(OFFICER, WINDOW, at(2026, 9, 30), result=ResultCode.VOIDED, reason="重复申请")
    provisional = accepted(at(2026, 12, 28), SOCIETY)  # runs into 2027, not yet published
    later = accepted(at(2026, 12, 29), SOCIETY)
    await harness.store.save(quiet, corrected, refused, owing, paying, paused, extended, voided, provisional)
    await harness.calendars.publish(YEAR_2027, "admin-1")
    provisional.suspend(
        OFFICER,
        WINDOW,
        at(2027, 1, 4),
        kind=SuspensionKind.HEARING,
        reason="听证",
        expected_end=date(2027, 2, 1),
    )
    await harness.store.save(provisional, later)


async def timers_and_facts(harness: Harness) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    timers = await harness.pool.fetch(
        "SELECT key, kind, due_at, payload, fired_at FROM due_timers ORDER BY key"
    )
    facts = await harness.pool.fetch("SELECT case_id, state, due, facts FROM case_deadline_facts ORDER BY 1")
    return [tuple(r) for r in timers], [tuple(r) for r in facts]


async def replay(harness: Harness, batch_size: int) -> None:
    """Forget every timer and fact, and let the consumer follow the whole log again."""
    await ensure_installed(harness.pool, harness.consumer)
    await harness.pool.execute("DELETE FROM due_timers")
    await harness.pool.execute("DELETE FROM case_deadline_facts")
    await harness.pool.execute(
        "UPDATE tracking SET notification_id = 0 WHERE application_name = $1",
        tracking_name(harness.consumer.name, 1),
    )
    await harness.catch_up(batch_size=batch_size)


async def test_a_whole_log_in_one_batch_leaves_what_one_event_at_a_time_does(harness: Harness) -> None:
    await every_kind_of_history(harness)
    await replay(harness, batch_size=1)
    one_at_a_time = await timers_and_facts(harness)
    await replay(harness, batch_size=500)
    assert await timers_and_facts(harness) == one_at_a_time
    timers, facts = one_at_a_time
    kinds = {key.split(":")[0] for key, *_ in timers}
    assert kinds == {"case.deem_accepted", "case.supplement_overdue", "case.due_soon", "case.overdue"}
    assert {state for _, state, *_ in facts} == {"intake", "running", "suspended", "closed"}


async def test_a_year_published_in_the_batch_that_suspended_a_case_leaves_it_suspended(
    harness: Harness,
) -> None:
    case = accepted(at(2026, 12, 28), SOCIETY)  # provisional: its 20 working days run into 2027
    await harness.save(case)
    assert len(await harness.timers(case.id)) == 2  # yellow and red
    case.suspend(
        OFFICER,
        WINDOW,
        at(2026, 12, 30),
        kind=SuspensionKind.HEARING,
        reason="听证",
        expected_end=date(2027, 2, 1),
    )
    await harness.store.save(case)
    await harness.calendars.publish(YEAR_2027, "admin-1")
    await harness.catch_up()  # the suspension and the publication in one batch
    # The publication recomputes running cases only: this one stopped earlier in the same batch.
    assert await harness.timers(case.id) == {}
    state = await harness.pool.fetchval("SELECT state FROM case_deadline_facts WHERE case_id = $1", case.id)
    assert state == "suspended"
