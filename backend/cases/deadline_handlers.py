"""What the case timers do when due: each one a Case command by the system, keyed by the timer.

The timer key is the command's request id, so a timer fired twice (the worker
fires at least once) records its event once. A case that moved on meanwhile
(accepted, supplemented, concluded, its deadline moved) refuses the command:
that timer is done, not failed. A 秒批 rule that turns a case down records
nothing either: the case goes the normal way, to a clerk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

from backend.calendars import Aggregates
from backend.cases.access import UnknownServiceItemError
from backend.cases.deadlines import (
    DEEM_ACCEPTED,
    DUE_SOON,
    INSTANT_APPROVAL,
    OVERDUE,
    SUPPLEMENT_OVERDUE,
    CalendarSource,
)
from backend.cases.passwords import QueryPasswords, new_query_password, receipt_number_for
from backend.cases.terms import Catalogue, item_terms
from backend.store.aggregates import AggregateStore
from backend.store.errors import AggregateNotFoundError
from backend.timers import TimerHandler
from domain.case import Actor, Case, Channel, IllegalTransitionError, InvalidCommandError, Role
from domain.case.checks import BEIJING
from domain.case.instant_rules import MATERIALS_COMPLETE

log = logging.getLogger(__name__)

SYSTEM = Actor(id="system:timers", role=Role.SYSTEM, name="限时办结计时器")
INSTANT_RULES = Actor(id="system:秒批", role=Role.SYSTEM, name="秒批规则")
Command = Callable[[Case, datetime, str], None]


def deadline_handlers(
    aggregates: Aggregates,
    clock: Callable[[], datetime],
    calendar: CalendarSource,
    passwords: QueryPasswords,
    catalogue: Catalogue,
) -> dict[str, TimerHandler]:
    """The timer kinds the case deadlines consumer schedules, each to its command."""

    def store() -> AggregateStore:
        return aggregates if isinstance(aggregates, AggregateStore) else aggregates()

    async def run(key: str, payload: Any, command: Command) -> None:
        case_id = UUID(payload["case_id"])
        at = clock()

        def act(case: Case) -> None:
            command(case, at, key)

        try:
            await store().execute(case_id, act)
        except (IllegalTransitionError, InvalidCommandError) as exc:
            log.info("timer %s: the case has moved on (%s); nothing to do", key, exc)
        except AggregateNotFoundError:
            log.warning("timer %s: no case %s; dropping the timer", key, case_id)

    async def deem(key: str, payload: Any) -> None:
        def command(case: Case, at: datetime, request_id: str) -> None:
            # Nobody hears this 查询密码: the applicant gets a new one from the window or the
            # notification side; only its hash is kept, like every other.
            case.deem_accepted(
                SYSTEM,
                Channel.SYSTEM,
                at,
                receipt_number=receipt_number_for(case.number),
                query_password_hash=passwords.hash(new_query_password()),
                request_id=request_id,
            )

        await run(key, payload, command)

    async def instant(key: str, payload: Any) -> None:
        try:
            terms = (await item_terms(catalogue, payload["item_code"])).instant
        except UnknownServiceItemError as exc:
            log.info("timer %s: no 秒批 (%s); the case goes the normal way", key, exc)
            return
        rule = MATERIALS_COMPLETE

        def command(case: Case, at: datetime, request_id: str) -> None:
            if request_id in case.processed_requests:
                return  # fired before: the approval is on record
            decision = rule.decide(case, terms)
            if not decision.qualifies:
                why = "; ".join(decision.reasons)
                log.info("timer %s: %s %s turns the case down (%s)", key, rule.id, rule.version, why)
                return
            # The 查询密码 goes unheard, as for a deemed acceptance: only its hash is kept.
            case.approve_instantly(
                INSTANT_RULES,
                Channel.SYSTEM,
                at,
                rule_id=decision.rule_id,
                rule_version=decision.rule_version,
                receipt_number=receipt_number_for(case.number),
                query_password_hash=passwords.hash(new_query_password()),
                request_id=request_id,
            )

        await run(key, payload, command)

    async def reject(key: str, payload: Any) -> None:
        def command(case: Case, at: datetime, request_id: str) -> None:
            case.reject_for_missing_supplement(SYSTEM, Channel.SYSTEM, at, request_id=request_id)

        await run(key, payload, command)

    async def due_soon(key: str, payload: Any) -> None:
        due = date.fromisoformat(payload["deadline"])
        working = await calendar()

        def command(case: Case, at: datetime, request_id: str) -> None:
            left = working.working_days_between(at.astimezone(BEIJING).date(), due)
            case.warn_due_soon(
                SYSTEM, Channel.SYSTEM, at, deadline=due, working_days_left=left, request_id=request_id
            )

        await run(key, payload, command)

    async def overdue(key: str, payload: Any) -> None:
        due = date.fromisoformat(payload["deadline"])

        def command(case: Case, at: datetime, request_id: str) -> None:
            case.mark_overdue(SYSTEM, Channel.SYSTEM, at, deadline=due, request_id=request_id)

        await run(key, payload, command)

    return {
        INSTANT_APPROVAL: instant,
        DEEM_ACCEPTED: deem,
        SUPPLEMENT_OVERDUE: reject,
        DUE_SOON: due_soon,
        OVERDUE: overdue,
    }
