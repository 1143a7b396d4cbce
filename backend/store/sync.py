"""A synchronous face on the async store (its own event loop in a thread).

It exists so that eventsourcing's synchronous interfaces, and the library's own
recorder test cases, can drive exactly the code the server runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from eventsourcing.persistence import (
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Tracking,
)

from backend.database import connect, create_pool
from backend.store.recorder import EventRecorder

T = TypeVar("T")


class SyncRecorder(ProcessRecorder):
    def __init__(self, url: str, schema: str, *, max_batch: int = 500) -> None:
        self.url, self.schema = url, schema
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="sync-recorder")
        self._thread.start()
        self.recorder: EventRecorder = self.call(self._open(max_batch))

    async def _open(self, max_batch: int) -> EventRecorder:
        pool = await create_pool(self.url, self.schema, min_size=1, max_size=8)
        recorder = EventRecorder(self.url, self.schema, pool, max_batch=max_batch)
        await recorder.start()
        return recorder

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def close(self) -> None:
        async def shut() -> None:
            await self.recorder.close()
            await self.recorder.pool.close()

        self.call(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        tracking: Tracking | None = kwargs.get("tracking")
        return self.call(self.recorder.append(stored_events, tracking=tracking))

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        oid = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        return self.call(self.recorder.select_events(oid, gt=gt, lte=lte, desc=desc, limit=limit))

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        return self.call(
            self.recorder.select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
        )

    def max_notification_id(self) -> int | None:
        return self.call(self.recorder.max_notification_id())

    def insert_tracking(self, tracking: Tracking) -> None:
        self.call(self.recorder.insert_tracking(tracking))

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.call(self.recorder.max_tracking_id(application_name))

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> _Subscription:
        return _Subscription(self, gt, topics)


class _Subscription(ListenNotifySubscription[SyncRecorder]):
    """Pulls on every NOTIFY from the writer, as the library's PostgreSQL subscription does."""

    def __init__(self, recorder: SyncRecorder, gt: int | None, topics: Sequence[str]) -> None:
        listener = recorder.call(connect(recorder.url, recorder.schema))
        self._listener: asyncpg.Connection | None = listener
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        recorder.call(listener.add_listener(recorder.recorder.channel, self._on_notify))
        self._has_been_notified.set()  # pull once more: anything committed before LISTEN began

    def _on_notify(self, *_: object) -> None:
        self._has_been_notified.set()

    def stop(self) -> None:
        super().stop()
        listener, self._listener = self._listener, None
        if listener is not None:
            self._recorder.call(listener.close())
