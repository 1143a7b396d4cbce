"""The embedded server starts, survives a leftover server on a deleted folder, and stops on request."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import asyncpg
import pytest

from backend.database import embedded_url, stop_embedded

pytestmark = pytest.mark.integration


def _answers(url: str) -> bool:
    async def go() -> bool:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await conn.close()

    return asyncio.run(go())


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def test_a_leftover_server_on_a_deleted_folder_is_replaced(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = embedded_url(data_dir)
    old_pid = _postmaster_pid(data_dir)
    assert _answers(first)
    assert embedded_url(data_dir) == first  # a second start reuses the running server

    # What a CI run that deleted its checkout leaves behind: a server on a folder that is gone.
    shutil.rmtree(data_dir / "pg")
    second = embedded_url(data_dir)
    try:
        assert _answers(second)
        assert _postmaster_pid(data_dir) != old_pid
        with pytest.raises(ProcessLookupError):
            os.kill(old_pid, 0)
    finally:
        assert stop_embedded(data_dir) is True
    assert stop_embedded(data_dir) is False  # nothing left to stop
