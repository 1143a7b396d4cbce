"""按责转办 and the departments' work: one task per department, in parallel for a bundle."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from domain.case import checks, tasks
from domain.case.base import CaseBase
from domain.case.errors import IllegalTransitionError, InvalidCommandError
from domain.case.status import UNDER_WAY, CaseStatus
from domain.case.tasks import ReturnTarget, Task, TaskState, TaskStep
from domain.case.values import Actor, Assignment, Channel, Role

ROUTERS = (Role.CLERK, Role.SYSTEM)


class CaseHandling(CaseBase):
    def bundle_assignments(self) -> tuple[Assignment, ...]:
        """The routing a bundle's catalogue implies: its children grouped by department."""
        by_department: dict[str, list[str]] = {}
        for child in self.children:
            by_department.setdefault(child.department, []).append(child.item_code)
        return tuple(Assignment(department=d, item_codes=tuple(c)) for d, c in by_department.items())

    def route(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        assignments: Iterable[Assignment],
        request_id: str | None = None,
    ) -> None:
        """按责转办: open a task for each department; a department whose task was returned is reopened."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, ROUTERS)
        self._require("route", UNDER_WAY)
        if self.with_partner:
            raise IllegalTransitionError("the case is with a partner city, which routes it there")
        listed = tuple(assignments)
        if not listed:
            raise InvalidCommandError("route to at least one department")
        self._check_assignments(listed)
        self._record(self.Routed, actor, channel, at, request_id, assignments=listed)

    def _check_assignments(self, listed: tuple[Assignment, ...]) -> None:
        child_department = {c.item_code: c.department for c in self.children}
        taken = {code: t.department for t in self.tasks.values() for code in t.item_codes}
        seen_departments: set[str] = set()
        for a in listed:
            checks.text(a.department, "department")
            if a.department in seen_departments:
                raise InvalidCommandError(f"{a.department} is listed twice; one task per department")
            seen_departments.add(a.department)
            if not a.item_codes:
                raise InvalidCommandError(f"{a.department} is given no items")
            existing = self.tasks.get(a.department)
            if existing is not None and existing.state is not TaskState.RETURNED:
                raise IllegalTransitionError(f"{a.department} already has a task ({existing.state})")
            for code in a.item_codes:
                if code not in self.item_codes:
                    raise InvalidCommandError(f"item {code} is not part of this case")
                if child_department.get(code, a.department) != a.department:
                    raise InvalidCommandError(f"item {code} belongs to {child_department[code]}")
                if taken.setdefault(code, a.department) != a.department:
                    raise InvalidCommandError(f"item {code} is already with {taken[code]}")

    class Routed(CaseBase.Event):
        assignments: tuple[Assignment, ...]

        def apply(self, aggregate: CaseHandling) -> None:
            routed = dict(aggregate.tasks)
            for a in self.assignments:
                before = routed.get(a.department)
                signatures = before.signatures if before is not None else ()
                routed[a.department] = Task(
                    department=a.department,
                    item_codes=a.item_codes,
                    routed_at=self.timestamp,
                    signatures=signatures,
                )
            aggregate.tasks = routed
            super().apply(aggregate)

    def _task(self, command: str, department: str) -> Task:
        self._require(command, (CaseStatus.IN_HANDLING,))
        try:
            return self.tasks[department]
        except KeyError:
            raise InvalidCommandError(f"{department} has no task in this case") from None

    def claim_task(
        self, actor: Actor, channel: Channel, at: datetime, *, department: str, request_id: str | None = None
    ) -> None:
        """An officer of the department takes the task's current step."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.OFFICER,))
        task = self._task("claim a task", department)
        tasks.check_claim(task, actor)
        self._record(self.TaskClaimed, actor, channel, at, request_id, department=department, step=task.step)

    class TaskClaimed(CaseBase.Event):
        department: str
        step: TaskStep

        def apply(self, aggregate: CaseHandling) -> None:
            task = tasks.claimed(aggregate.tasks[self.department], self.actor.id)
            _put(aggregate, task)
            super().apply(aggregate)

    def approve_task_step(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        department: str,
        opinion: str = "",
        request_id: str | None = None,
    ) -> None:
        """Sign the current step: 承办 and 审核 pass it on, 批准 approves the task."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.OFFICER,))
        task = self._task("approve a task step", department)
        tasks.check_claimant(task, actor)
        final = tasks.next_step(task.step) is None
        event_class = self.TaskApproved if final else self.TaskStepApproved
        self._record(
            event_class,
            actor,
            channel,
            at,
            request_id,
            department=department,
            step=task.step,
            opinion=opinion,
        )

    class TaskStepApproved(CaseBase.Event):
        department: str
        step: TaskStep
        opinion: str  # 审批意见

        def apply(self, aggregate: CaseHandling) -> None:
            task = tasks.signed(aggregate.tasks[self.department], self.actor.id, self.timestamp, self.opinion)
            _put(aggregate, task)
            super().apply(aggregate)

    class TaskApproved(CaseBase.Event):
        """批准, the last step: the department's part of the case is approved."""

        department: str
        step: TaskStep
        opinion: str

        def apply(self, aggregate: CaseHandling) -> None:
            task = tasks.signed(aggregate.tasks[self.department], self.actor.id, self.timestamp, self.opinion)
            _put(aggregate, task)
            super().apply(aggregate)

    def reject_task(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        department: str,
        reason: str,
        request_id: str | None = None,
    ) -> None:
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.OFFICER,))
        task = self._task("reject a task", department)
        tasks.check_claimant(task, actor)
        checks.text(reason, "reason")
        self._record(
            self.TaskRejected,
            actor,
            channel,
            at,
            request_id,
            department=department,
            step=task.step,
            reason=reason,
        )

    class TaskRejected(CaseBase.Event):
        department: str
        step: TaskStep
        reason: str

        def apply(self, aggregate: CaseHandling) -> None:
            task = tasks.rejected(
                aggregate.tasks[self.department], self.actor.id, self.timestamp, self.reason
            )
            _put(aggregate, task)
            super().apply(aggregate)

    def return_task(
        self,
        actor: Actor,
        channel: Channel,
        at: datetime,
        *,
        department: str,
        to: ReturnTarget,
        reason: str,
        request_id: str | None = None,
    ) -> None:
        """退回: to the step before, or to the window (which may route the department again)."""
        if self._seen(request_id):
            return
        at = self._admit(actor, at, (Role.OFFICER,))
        task = self._task("return a task", department)
        tasks.check_claimant(task, actor)
        checks.text(reason, "reason")
        if to is ReturnTarget.PREVIOUS_STEP and tasks.previous_step(task.step) is None:
            raise InvalidCommandError("承办 is the first step; return it to the window instead")
        self._record(
            self.TaskReturned,
            actor,
            channel,
            at,
            request_id,
            department=department,
            step=task.step,
            to=to,
            reason=reason,
        )

    class TaskReturned(CaseBase.Event):
        department: str
        step: TaskStep  # the step it was returned from
        to: ReturnTarget
        reason: str

        def apply(self, aggregate: CaseHandling) -> None:
            task = tasks.returned(aggregate.tasks[self.department], self.to, self.reason)
            _put(aggregate, task)
            super().apply(aggregate)


def _put(case: CaseHandling, task: Task) -> None:
    case.tasks = {**case.tasks, task.department: task}
