"""Case timers on PostgreSQL: deemed acceptance, 容缺 overdue, yellow and red, suspension; on a set clock."""

from __future__ import annotations

from datetime import date

import pytest

from domain.case import MaterialIssue, ResultCode, SuspensionKind, UploadedFile
from domain.case.records import AcceptanceMode, Light
from tests.integration.case_deadlines_support import (  # noqa: F401 (fixture)
    CITIZEN,
    CLERK,
    OFFICER,
    PASSWORDS,
    WINDOW,
    Harness,
    accepted,
    at,
    beijing,
    harness_fixture,
    submitted,
    with_missing_materials,
)

pytestmark = pytest.mark.integration


async def test_a_submission_not_reviewed_in_5_days_is_deemed_accepted(harness: Harness) -> None:
    quiet = submitted(at(2026, 5, 6))  # Wednesday; 5 natural days end on Monday 5/11
    asked = submitted(at(2026, 5, 6))
    await harness.save(quiet, asked)
    asked.request_materials(
        CLERK, WINDOW, at(2026, 5, 7), issues=[MaterialIssue(material_id="M02", reason="缺")]
    )
    await harness.save(asked)
    assert await harness.timers(asked.id) == {}  # the office acted in time: no timer left
    assert await harness.timers(quiet.id) == {"case.deem_accepted": (beijing(date(2026, 5, 12)), False)}

    assert await harness.fire_at(at(2026, 5, 11, 23, 59)) == 0
    assert await harness.fire_at(at(2026, 5, 12, 0, 1)) == 1
    case = await harness.case(quiet.id)
    assert case.acceptance is not None and case.acceptance.deemed
    assert case.acceptance.accepted_on == date(2026, 5, 6)  # from submission (Art. 32)
    assert case.acceptance.receipt_number == f"SL{case.number}"
    assert case.acceptance.query_password_hash.startswith("hmac-sha256$timers$")  # under the timers' keys
    assert (await harness.case(asked.id)).acceptance is None
    # Accepted from 5/6, its 3 working days (5/7, 5/8, the make-up Saturday 5/9) are gone: both lights
    # are due. The late yellow is refused (nothing appended), the red raised, the deemed timer stays fired.
    timers = await harness.timers(quiet.id)
    assert timers["case.overdue:2026-05-09"] == (beijing(date(2026, 5, 10)), False)
    assert timers["case.deem_accepted"] == (beijing(date(2026, 5, 12)), True)
    assert await harness.fire_at(at(2026, 5, 12, 0, 2)) == 2
    assert await harness.fire_at(at(2026, 5, 12, 0, 3)) == 0
    case = await harness.case(quiet.id)
    assert [(s.light, s.deadline) for s in case.supervisions] == [(Light.RED, date(2026, 5, 9))]
    assert case.version == 3  # Submitted, Accepted, SupervisionRaised: the deemed acceptance ran once


async def test_missing_materials_not_supplied_in_time_end_the_case(harness: Harness) -> None:
    owing, paying = submitted(at(2026, 5, 6, 8)), submitted(at(2026, 5, 6, 8))
    for case in (owing, paying):
        with_missing_materials(case)
    await harness.save(owing, paying)
    paying.supplement_materials(
        CITIZEN, WINDOW, at(2026, 5, 8, 17), materials={"M03": UploadedFile("d" * 64)}
    )
    await harness.save(paying)
    assert "case.supplement_overdue" not in await harness.timers(paying.id)
    assert await harness.timers(owing.id) == {
        "case.supplement_overdue": (beijing(date(2026, 5, 9)), False),
        "case.due_soon:2026-05-09": (beijing(date(2026, 5, 7)), False),  # 5/9: a make-up Saturday
        "case.overdue:2026-05-09": (beijing(date(2026, 5, 10)), False),
    }

    await harness.fire_at(at(2026, 5, 9, 0, 30))
    owed = await harness.case(owing.id)
    assert owed.acceptance is not None and owed.acceptance.mode is AcceptanceMode.MISSING_MATERIALS
    assert owed.conclusion is not None and owed.conclusion.result is ResultCode.SUPPLEMENT_OVERDUE
    assert owed.status_label == "已办结" and owed.conclusion.result.label == "补正超时驳回"
    assert (await harness.case(paying.id)).conclusion is None
    # Concluded: its light timers are gone.
    assert set(await harness.timers(owing.id)) == {"case.supplement_overdue", "case.due_soon:2026-05-09"}


async def test_yellow_then_red_across_national_day(harness: Harness) -> None:
    case = accepted(at(2026, 9, 29))  # 3 working days: 9/30, 10/8, 10/9
    await harness.save(case)
    timers = await harness.timers(case.id)
    # Yellow with 2 working days left: from 9/30, the holiday week counting for nothing.
    assert timers["case.due_soon:2026-10-09"] == (beijing(date(2026, 9, 30)), False)
    assert timers["case.overdue:2026-10-09"] == (beijing(date(2026, 10, 10)), False)

    await harness.fire_at(at(2026, 9, 30, 9))
    await harness.fire_at(at(2026, 10, 9, 23, 59))
    raised = [(s.light, s.deadline, s.raised_on) for s in (await harness.case(case.id)).supervisions]
    assert raised == [(Light.YELLOW, date(2026, 10, 9), date(2026, 9, 30))]
    await harness.fire_at(at(2026, 10, 10, 8))  # a make-up Saturday, and the first day overdue
    later = [(s.light, s.raised_on) for s in (await harness.case(case.id)).supervisions]
    assert later == [(Light.YELLOW, date(2026, 9, 30)), (Light.RED, date(2026, 10, 10))]


async def test_suspension_pauses_the_overdue_timer_and_resuming_moves_it(harness: Harness) -> None:
    case = accepted(at(2026, 9, 29))
    await harness.save(case)
    case.suspend(
        OFFICER,
        WINDOW,
        at(2026, 9, 30),
        kind=SuspensionKind.SITE_SURVEY,
        reason="现场勘查",
        expected_end=date(2026, 10, 12),
    )
    await harness.save(case)
    assert await harness.timers(case.id) == {}
    await harness.fire_at(at(2026, 10, 11))  # past the old deadline: nothing fires while suspended
    assert (await harness.case(case.id)).supervisions == ()

    case = await harness.case(case.id)
    case.resume(OFFICER, WINDOW, at(2026, 10, 12))
    await harness.save(case)
    # 9/30–10/11 stopped: 10/12, 10/13, 10/14.
    assert await harness.timers(case.id) == {
        "case.due_soon:2026-10-14": (beijing(date(2026, 10, 12)), False),
        "case.overdue:2026-10-14": (beijing(date(2026, 10, 15)), False),
    }
