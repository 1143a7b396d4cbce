"""A LISTEN on one channel that sets an event; reconnects when its connection is lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from backend.database import DatabaseUnavailableError, connect

log = logging.getLogger(__name__)

LISTEN_RETRY_SECONDS = 5.0


class Wakeup:
    """Sets `event` on every NOTIFY on `<schema><suffix>`, and once on (re)connecting.

    Polling is the caller's fallback: while the connection is down nothing is missed
    for long, only woken later.
    """

    def __init__(self, url: str, schema: str, suffix: str, event: asyncio.Event, name: str) -> None:
        self._url, self._schema, self._channel = url, schema, schema + suffix
        self._event, self._name = event, name
        self._stopping = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._name}:listen")

    async def stop(self) -> None:
        self._stopping.set()
        self._lost.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._lost.clear()
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self._url, self._schema)
                conn.add_termination_listener(lambda _conn: self._lost.set())
                await conn.add_listener(self._channel, lambda *_: self._event.set())
                self._event.set()  # whatever was announced before we listened
                await self._lost.wait()
            except (OSError, asyncpg.PostgresError, DatabaseUnavailableError) as exc:
                log.warning("%s: cannot LISTEN (%s); polling meanwhile", self._name, exc)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
            if not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), LISTEN_RETRY_SECONDS)
