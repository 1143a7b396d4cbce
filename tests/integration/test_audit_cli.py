"""`citypass audit replay` and `citypass audit verify` against the configured PostgreSQL, as an auditor at a
terminal runs them: a readable, unmasked timeline; the chain's verdict and exit code; each run recorded."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from backend.audit.cli import UNSTATED
from backend.store.recorder import EventRecorder
from domain.audit import Subject, Via
from tests.dbutil import ROOT
from tests.integration.audit_support import KEY_TEXT, T0, World, make_world

pytestmark = pytest.mark.integration

CITYPASS = Path(sys.executable).parent / "citypass"


@pytest.fixture
async def world(pool: asyncpg.Pool, recorder: EventRecorder) -> World:
    return await make_world(pool, recorder)


async def citypass(db_url: str, schema: str, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "CITYPASS_DATABASE_URL": db_url,
        "CITYPASS_DB_SCHEMA": schema,
        "CITYPASS_DATA_KEYS": KEY_TEXT,
        "CITYPASS_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        str(CITYPASS),
        "audit",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_replay_prints_the_timeline_and_records_the_reading(
    world: World, db_url: str, schema: str
) -> None:
    case_id = await world.walk("cli-1", start=T0)
    await world.project()
    number = (await world.store.get(case_id)).number

    code, out, err = await citypass(db_url, schema, "replay", number, "--reason", "电子监察抽查 CLI")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"办件 {number}   case {case_id}"
    assert lines[1] == "6 events, head version 6, chain intact"
    assert "v1   2026-09-29 10:00:00" in out and "提交申请 / submitted" in out
    assert "citizen citizen-zhang  via miniapp" in out
    assert "v2   2026-09-29 11:00:00" in out and "clerk 周七 [clerk-1] hall SMZJ  via hall_window" in out
    assert "转长沙市市场监督管理局办理 / routed" in out
    assert "officer 审批人 [officer-scjgj-1] department SCJGJ" in out
    assert "430102199003071234" in out and "13812341234" in out  # unmasked, and so recorded
    assert "办结：退回办结 / concluded" in out and "场所不符合要求" in out

    (access,) = await world.accesses()
    user = getpass.getuser()
    assert (access.auditor.id, access.auditor.role, access.via) == (f"cli:{user}", "auditor", Via.CLI)
    assert (access.subject, access.case_id, access.reason) == (Subject.HISTORY, case_id, "电子监察抽查 CLI")

    code, _, err = await citypass(db_url, schema, "replay", "430100209901010000001", "--reason", "抽查")
    assert code == 2 and "no case numbered 430100209901010000001" in err
    assert len(await world.accesses()) == 1
    # Without a reason the replay is still recorded, as one given without a reason.
    code, out, _ = await citypass(db_url, schema, "replay", number)
    assert code == 0 and "场所不符合要求" in out
    assert [a.reason for a in await world.accesses()][-1] == UNSTATED


async def test_verify_exits_nonzero_and_names_the_event_once_one_is_altered(
    world: World, db_url: str, schema: str
) -> None:
    case_id = await world.walk("cli-2", start=T0)
    await world.project()
    number = (await world.store.get(case_id)).number

    code, out, err = await citypass(db_url, schema, "verify")
    assert code == 0, err
    assert out.startswith("OK: the whole store: ")
    code, out, _ = await citypass(db_url, schema, "verify", "--case", number)
    assert code == 0 and out.startswith(
        f"OK: case {number}: 6 events of 1 aggregates checked; head version 6"
    )

    position = await world.pool.fetchval(
        "UPDATE stored_events SET state = state || ' '::bytea "
        "WHERE originator_id = $1 AND originator_version = 4 RETURNING notification_id",
        case_id,
    )
    code, out, _ = await citypass(db_url, schema, "verify", "--case", number, "--reason", "篡改复核")
    assert code == 1 and out.startswith(f"ALTERED: case {number}")
    assert f"position {position}, case {number}, version 4 (case.task_claimed): hash does not match" in out
    code, out, _ = await citypass(db_url, schema, "verify")
    assert code == 1 and f"position {position}, case {number}, version 4" in out
    reasons = [(a.subject, a.reason) for a in await world.accesses()]
    routine = "例行校验 routine chain verification"
    assert reasons == [(Subject.VERIFICATION, r) for r in (routine, routine, "篡改复核", routine)]
