"""Cases written straight into a server's event store, one event per case at a time, for stream loads.

Each case is submitted, accepted, routed to one department (D00, D01, …) and handled
there: three steps claimed and signed, then concluded. Ten events, the last eight
the department's. Writing through the store, not the API, lets a test or a bench
produce hundreds of events a second without the API's cost in the figures.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from backend.store.aggregates import AggregateStore
from backend.store.personal_cipher import dev_data_keys
from domain.case import Actor, Assignment, Case, Channel, ResultCode, Role
from domain.case.values import UploadedFile
from projections.case_secrets import QueryPasswords
from tests.integration.test_case_progress import LI

ITEM = "BENCH-ITEM"
PASSWORD_HASH = QueryPasswords(dev_data_keys()).hash("731-0")
CLERK = Actor(id="clerk-bench", role=Role.CLERK, name="周敏", hall="CSSMZJ")


class Writer:
    """Cases in flight, each advanced one event at a time, so events spread evenly over the run."""

    def __init__(self, store: AggregateStore, departments: int) -> None:
        self.store, self.departments = store, departments
        self.cases: list[tuple[Case, list[Any]]] = []
        self.written = 0
        self.serial = 0

    def _new(self) -> tuple[Case, list[Any]]:
        self.serial += 1
        department = f"D{self.serial % self.departments:02d}"
        now = datetime.now(UTC)
        case = Case.submit(
            Actor(id=f"citizen-{self.serial}", role=Role.CITIZEN), Channel.MINIAPP, now,
            case_id=uuid.uuid4(), number=f"BENCH{self.serial:010d}", applicant=LI, item_code=ITEM,
            catalogue_version="1", materials={"M01": UploadedFile(f"{self.serial:064x}")},
        )  # fmt: skip
        officer = [
            Actor(id=f"officer-{department}-{n}", role=Role.OFFICER, name="审批人", department=department)
            for n in range(3)
        ]
        steps: list[Any] = [
            lambda c, t: c.accept(CLERK, Channel.HALL_WINDOW, t, receipt_number=f"SL{self.serial}",
                                  query_password_hash=PASSWORD_HASH),
            lambda c, t: c.route(CLERK, Channel.HALL_WINDOW, t,
                                 assignments=[Assignment(department=department, item_codes=(ITEM,))]),
        ]  # fmt: skip
        for n in range(3):
            steps.append(
                lambda c, t, n=n: c.claim_task(officer[n], Channel.MINIAPP, t, department=department)
            )
            steps.append(
                lambda c, t, n=n: c.approve_task_step(
                    officer[n], Channel.MINIAPP, t, department=department, opinion="同意"
                )
            )
        steps.append(lambda c, t: c.conclude(officer[2], Channel.MINIAPP, t, result=ResultCode.APPROVED))
        return case, steps

    async def step(self, count: int) -> None:
        """Append `count` events, one per case, as concurrent commands (the store groups their commits)."""
        while len(self.cases) < count:
            self.cases.append(self._new())
        batch, self.cases = self.cases[:count], self.cases[count:]
        for case, steps in batch:
            if not case.pending_events:  # a new case's first event is its submission, not yet saved
                steps.pop(0)(case, datetime.now(UTC))
        self.written += sum(len(case.pending_events) for case, _ in batch)
        await asyncio.gather(*(self.store.save(case) for case, _ in batch))
        self.cases += [(case, steps) for case, steps in batch if steps]
