"""eventsourcing's own recorder test cases, run against our store through the sync adapter."""

from __future__ import annotations

import pytest
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)

from backend.store.sync import SyncRecorder
from tests.dbutil import create_schema_sync, database_url, drop_schema_sync

pytestmark = pytest.mark.integration


class _FreshRecorder:
    """Each create_recorder() gets its own freshly migrated schema, so ids start at 1."""

    def create_recorder(self) -> SyncRecorder:
        schema = create_schema_sync()
        recorder = SyncRecorder(database_url(), schema)
        self.addCleanup(drop_schema_sync, schema)  # type: ignore[attr-defined]
        self.addCleanup(recorder.close)  # type: ignore[attr-defined]
        return recorder


class TestApplicationRecorder(_FreshRecorder, ApplicationRecorderTestCase[SyncRecorder]):
    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestTrackingRecorder(_FreshRecorder, TrackingRecorderTestCase):
    pass


class TestProcessRecorder(_FreshRecorder, ProcessRecorderTestCase):
    pass


class TestNonInterleavingNotificationIds(_FreshRecorder, NonInterleavingNotificationIDsBaseCase):
    pass
