"""Demo seeding on PostgreSQL: every state a case can reach through the service, each seeded once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from backend.bootstrap import build_runtime
from backend.calendar_data import base_calendar
from backend.demo import seed
from backend.demo_cases import CITIZENS
from backend.runtime import Runtime
from backend.settings import Settings, load_settings
from domain.case import (
    AcceptanceMode,
    Case,
    CaseStatus,
    DeliveryMethod,
    ResultCode,
    SuspensionKind,
    TaskState,
    TaskStep,
)
from domain.case.checks import BEIJING
from projections.case_progress import CaseQueries

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 24, 16, 30, tzinfo=BEIJING)  # a Tuesday
START_UP = "11430100006182474N900100100000"  # 企业开办一件事


@pytest.fixture
def settings(db_url: str, schema: str, tmp_path: Path) -> Settings:
    env = {
        "CITYPASS_DATABASE_URL": db_url,
        "CITYPASS_DB_SCHEMA": schema,
        "CITYPASS_DATA_DIR": str(tmp_path),
        "CITYPASS_LOG_LEVEL": "WARNING",
    }
    return load_settings(env)


@pytest.fixture
async def seeded(settings: Settings, db_url: str) -> AsyncIterator[Runtime]:
    """Seed, seed again a week later, and hand over a runtime on the same schema to read what is there."""
    first = await seed(settings, db_url, now=NOW)
    runtime = build_runtime(settings, db_url, with_consumers=False)
    await runtime.start()
    try:
        head = await runtime.recorder.max_notification_id()
        again = await seed(settings, db_url, now=NOW + timedelta(days=7))
        assert await runtime.recorder.max_notification_id() == head, "a second run appended events"
        assert [c.id for c in again] == [c.id for c in first]
        yield runtime
    finally:
        await runtime.stop()


async def all_cases(runtime: Runtime) -> list[Case]:
    """Every case in the store, found by its submission event rather than by what seed() returned."""
    rows = await runtime.pool.fetch(
        "SELECT originator_id FROM stored_events WHERE topic = $1 ORDER BY notification_id",
        get_topic(Case.Submitted),
    )
    return [await runtime.aggregates.get(r["originator_id"]) for r in rows]


async def test_the_demo_seeds_every_reachable_state_once(seeded: Runtime) -> None:
    # One test, because seeding twice takes seconds: the checks below share it.
    cases = await all_cases(seeded)
    every_state_is_there(cases)
    the_start_up_bundle_is_at_a_different_step_in_each_department(cases)
    await the_demo_citizens_own_the_cases_and_the_read_model_shows_them(seeded, cases)


def every_state_is_there(cases: list[Case]) -> None:
    assert {c.status for c in cases} == set(CaseStatus)
    assert {c.conclusion.result for c in cases if c.conclusion is not None} == set(ResultCode)
    assert {d.method for c in cases for d in c.deliveries} == set(DeliveryMethod)
    modes = {c.acceptance.mode for c in cases if c.acceptance is not None}
    assert modes == set(AcceptanceMode)  # 秒批 included
    assert any(c.acceptance is not None and c.acceptance.deemed for c in cases)
    assert any(c.status is CaseStatus.IN_HANDLING and c.missing_minor for c in cases)  # 容缺, still owed
    assert any(c.extension_request is not None for c in cases)
    assert any(s.kind is SuspensionKind.SITE_SURVEY for c in cases if (s := c.open_suspension))
    assert any(c.status is CaseStatus.PRE_REVIEW and c.supplement_attempts == 1 for c in cases)
    assert any(c.pickup is not None and not c.deliveries for c in cases)  # 待领取
    assert any(c.trips for c in cases)


def the_start_up_bundle_is_at_a_different_step_in_each_department(cases: list[Case]) -> None:
    [bundle] = [c for c in cases if c.item_code == START_UP]
    assert bundle.status is CaseStatus.IN_HANDLING
    assert {d: (t.step, t.state) for d, t in bundle.tasks.items()} == {
        "SCJGJ": (TaskStep.APPROVE, TaskState.APPROVED),
        "GAJ": (TaskStep.REVIEW, TaskState.CLAIMED),
        "SWJ": (TaskStep.UNDERTAKE, TaskState.CLAIMED),
        "RSJ": (TaskStep.UNDERTAKE, TaskState.WAITING),
        "ZWFW": (TaskStep.UNDERTAKE, TaskState.WAITING),  # returned from 审核
    }


async def the_demo_citizens_own_the_cases_and_the_read_model_shows_them(
    seeded: Runtime, cases: list[Case]
) -> None:
    assert all(c.modified_on <= NOW for c in cases), "the demo clock ran into the future"
    subjects = {c.subject for c in CITIZENS}
    assert {c.submitted_by.id for c in cases} == subjects
    await seeded.rebuild("case_progress")
    queries = CaseQueries(seeded.pool, base_calendar, lambda: NOW)
    for subject in subjects:
        listed = await queries.my_cases(subject)
        mine = {c.id: c.status for c in cases if c.submitted_by.id == subject}
        assert len(mine) >= 2
        assert {c.case_id: c.status for c in listed} == mine
