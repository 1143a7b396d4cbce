"""A department's task in a case (按责转办): claimed and signed step by step, 承办 → 审核 → 批准.

Tasks are immutable values; the case replaces a task with the one these functions return.
The `check_` functions raise; the others assume the checks passed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

from domain.case.errors import IllegalTransitionError, NotAuthorisedActorError
from domain.case.values import Actor, Role


class TaskStep(StrEnum):
    UNDERTAKE = "undertake"  # 承办
    REVIEW = "review"  # 审核
    APPROVE = "approve"  # 批准

    @property
    def label(self) -> str:
        return {"undertake": "承办", "review": "审核", "approve": "批准"}[self.value]


STEPS = (TaskStep.UNDERTAKE, TaskStep.REVIEW, TaskStep.APPROVE)


class TaskState(StrEnum):
    WAITING = "waiting"  # waiting for an officer of the department to claim the current step
    CLAIMED = "claimed"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"  # 退回 to the window; routing the department again reopens it


class ReturnTarget(StrEnum):
    PREVIOUS_STEP = "previous_step"
    WINDOW = "window"


class Signature(msgspec.Struct, frozen=True, kw_only=True):
    """An officer's approval of one step (签批), kept for the audit trail."""

    step: TaskStep
    officer_id: str
    signed_at: datetime
    opinion: str


class Task(msgspec.Struct, frozen=True, kw_only=True):
    department: str
    item_codes: tuple[str, ...]
    routed_at: datetime
    step: TaskStep = TaskStep.UNDERTAKE
    state: TaskState = TaskState.WAITING
    claimed_by: str | None = None  # who holds the current step; nobody once decided
    decided_by: str | None = None  # the officer who gave the 批准 or the rejection
    signatures: tuple[Signature, ...] = ()
    reason: str | None = None  # why it was rejected or returned
    decided_at: datetime | None = None

    @property
    def decided(self) -> bool:
        return self.state in (TaskState.APPROVED, TaskState.REJECTED)


def next_step(step: TaskStep) -> TaskStep | None:
    i = STEPS.index(step)
    return STEPS[i + 1] if i + 1 < len(STEPS) else None


def previous_step(step: TaskStep) -> TaskStep | None:
    i = STEPS.index(step)
    return STEPS[i - 1] if i > 0 else None


def check_claim(task: Task, actor: Actor) -> None:
    if actor.role is not Role.OFFICER or actor.department != task.department:
        raise NotAuthorisedActorError(f"only an officer of {task.department} may claim its task")
    if task.state is not TaskState.WAITING:
        raise IllegalTransitionError(
            f"the task of {task.department} is {task.state}, not waiting to be claimed"
        )


def check_claimant(task: Task, actor: Actor) -> None:
    """Only the officer who claimed the current step may decide it."""
    if task.state is not TaskState.CLAIMED:
        raise IllegalTransitionError(f"the task of {task.department} is {task.state}, not claimed")
    if actor.id != task.claimed_by:
        raise NotAuthorisedActorError(
            f"the {task.step.label} step of {task.department} is claimed by another"
        )


def claimed(task: Task, officer_id: str) -> Task:
    return msgspec.structs.replace(task, state=TaskState.CLAIMED, claimed_by=officer_id)


def signed(task: Task, officer_id: str, at: datetime, opinion: str) -> Task:
    """Approve the current step: on to the next one, or approved outright after 批准."""
    signature = Signature(step=task.step, officer_id=officer_id, signed_at=at, opinion=opinion)
    signatures = (*task.signatures, signature)
    following = next_step(task.step)
    if following is None:
        return msgspec.structs.replace(
            task,
            state=TaskState.APPROVED,
            claimed_by=None,
            decided_by=officer_id,
            signatures=signatures,
            decided_at=at,
        )
    return msgspec.structs.replace(
        task, step=following, state=TaskState.WAITING, claimed_by=None, signatures=signatures
    )


def rejected(task: Task, officer_id: str, at: datetime, reason: str) -> Task:
    return msgspec.structs.replace(
        task, state=TaskState.REJECTED, claimed_by=None, decided_by=officer_id, reason=reason, decided_at=at
    )


def returned(task: Task, to: ReturnTarget, reason: str) -> Task:
    if to is ReturnTarget.WINDOW:
        return msgspec.structs.replace(task, state=TaskState.RETURNED, claimed_by=None, reason=reason)
    step = previous_step(task.step)
    assert step is not None, "checked by the command"
    return msgspec.structs.replace(task, step=step, state=TaskState.WAITING, claimed_by=None, reason=reason)
