"""Read routes of cases: a citizen's own cases and progress, anonymous progress, the staff queue and dossiers.

Personal data arrives masked from the read models and stays so. Who may read what
is decided here, per case: a citizen reads only the cases their account submitted,
an officer only cases their department has a task on; clerks and auditors read all.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal, Protocol, TypeVar
from uuid import UUID

import msgspec
from litestar import get
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, PathParameter, QueryParameter

from domain.case import NextStep
from miniapp_api.auth import EXCLUDE_FROM_AUTH, CurrentPrincipal, require_roles
from miniapp_api.principal import Principal, Role
from miniapp_api.schemas import ApiStruct
from projections.case_deadlines import DeadlineView
from projections.case_progress import AnonymousProgress, CaseProgress, CaseSummary
from projections.work_queue import QueuePage, QueueScope, TaskQueueState


class CaseReader(Protocol):
    """projections.case_progress.CaseQueries is the real one."""

    async def my_cases(self, subject: str) -> list[CaseSummary]: ...

    async def progress(self, case: UUID | str) -> CaseProgress | None: ...

    async def anonymous_progress(self, receipt_number: str, password: str) -> AnonymousProgress | None: ...

    async def dossier(self, applicant_key: str) -> list[CaseSummary]: ...


class QueueReader(Protocol):
    """projections.work_queue.WorkQueueQueries is the real one."""

    async def queue(
        self,
        department: str,
        *,
        scope: QueueScope = "open",
        state: TaskQueueState | None = None,
        light: Literal["green", "yellow", "red"] | None = None,
        item: str | None = None,
        page: int = 1,
        size: int = 20,
    ) -> QueuePage: ...


# Wire shapes.


class DeadlineOut(ApiStruct):
    start: date
    limit_amount: int
    limit_unit: str
    due: date
    provisional: bool  # a year's calendar is not yet published; the date may move
    working_days_left: int | None
    light: str | None
    suspended: bool


class CaseOut(ApiStruct):
    case_id: UUID
    number: str
    item_code: str
    applicant_kind: str
    applicant_name: str  # masked for a person
    status: str
    status_label: str
    current_step: str
    submitted_at: datetime
    accepted_on: date | None
    receipt_number: str | None
    deadline: DeadlineOut | None


class StepOut(ApiStruct, omit_defaults=True):
    at: datetime
    label: str
    actor_role: str | None = None  # staff views only
    actor_name: str | None = None  # masked
    channel: str | None = None


class MaterialIssueOut(ApiStruct):
    material_id: str
    reason: str


class NextStepOut(ApiStruct):
    action: str
    label: str
    materials: list[MaterialIssueOut]
    due: date | None
    detail: str | None


class ProgressOut(ApiStruct):
    case: CaseOut
    applicant_id: str  # masked
    applicant_phone: str  # masked
    timeline: list[StepOut]
    next_steps: list[NextStepOut]


class AnonymousProgressOut(ApiStruct):
    number: str
    item_code: str
    status: str
    status_label: str
    current_step: str
    accepted_on: date | None
    deadline: DeadlineOut | None
    timeline: list[StepOut]


class QueueItemOut(ApiStruct):
    case_id: UUID
    number: str
    item_code: str
    department: str
    step: str
    step_label: str
    state: str
    claimed_by: str | None
    routed_at: datetime
    finished_at: datetime | None  # null while open work
    case_status: str
    deadline: DeadlineOut | None  # a finished task has no light


class LightCountsOut(ApiStruct):
    red: int
    yellow: int
    green: int
    none: int  # open tasks with no time limit known


class QueuePageOut(ApiStruct):
    items: list[QueueItemOut]
    total: int
    page: int
    size: int
    counts: LightCountsOut  # the open queue by light, under the state and item filters


Page = Annotated[int, QueryParameter(ge=1, le=10_000)]
Size = Annotated[int, QueryParameter(ge=1, le=100)]
ApplicantKey = Annotated[
    str, PathParameter(pattern=r"^[0-9a-f]{64}$", description="sha256 key of one applicant")
]
T = TypeVar("T")
_STAFF = (Role.CLERK, Role.OFFICER, Role.AUDITOR)
_PUBLIC = {EXCLUDE_FROM_AUTH: True}
_PRIVATE = CacheControlHeader(private=True, no_store=True)
_TAGS = ["cases"]


def case_query_handlers(cases: CaseReader, queue: QueueReader) -> list[HTTPRouteHandler]:
    """The query routes, relative to /api/v1 (see case_command_handlers for why not a Router)."""

    @get(
        "/cases", guards=[require_roles(Role.CITIZEN)], cache_control=_PRIVATE, tags=_TAGS, summary="My cases"
    )
    async def my_cases(principal: CurrentPrincipal) -> list[CaseOut]:
        return [_case(c) for c in await cases.my_cases(principal.subject)]

    @get(
        "/cases/{case:str}/progress",
        guards=[require_roles(Role.CITIZEN, *_STAFF)],
        cache_control=_PRIVATE,
        tags=_TAGS,
        summary="Progress and timeline of one case, by id or 办件编号",
    )
    async def progress(case: FromPath[str], principal: CurrentPrincipal) -> ProgressOut:
        found = await cases.progress(case)
        if found is None:
            raise NotFoundException(f"no case {case}")
        _check_reader(principal, found)
        staff = principal.role is not Role.CITIZEN
        return ProgressOut(
            case=_case(found.case),
            applicant_id=found.applicant_id,
            applicant_phone=found.applicant_phone,
            timeline=[
                StepOut(
                    at=e.at,
                    label=e.label,
                    actor_role=e.actor_role,
                    actor_name=e.actor_name,
                    channel=e.channel,
                )
                if staff
                else StepOut(at=e.at, label=e.label)
                for e in found.timeline
                if staff or not e.internal
            ],
            next_steps=[_next(s) for s in found.next_steps],
        )

    @get(
        "/progress",
        opt=_PUBLIC,
        security=[{}],
        cache_control=_PRIVATE,
        tags=_TAGS,
        summary="Anonymous progress lookup",
    )
    async def anonymous(
        receipt: Annotated[str, QueryParameter(min_length=1, max_length=64)],
        password: Annotated[str, QueryParameter(min_length=1, max_length=64)],
    ) -> AnonymousProgressOut:
        found = await cases.anonymous_progress(receipt, password)
        if found is None:
            # One answer for an unknown receipt and a wrong password, so neither can be probed alone.
            raise NotFoundException("no case matches this receipt number and password")
        return AnonymousProgressOut(
            number=found.number,
            item_code=found.item_code,
            status=found.status,
            status_label=found.status_label,
            current_step=found.current_step,
            accepted_on=found.accepted_on,
            deadline=_deadline(found.deadline),
            timeline=[StepOut(at=s.at, label=s.label) for s in found.timeline],
        )

    @get(
        "/staff/queue",
        guards=[require_roles(Role.OFFICER)],
        cache_control=_PRIVATE,
        tags=_TAGS,
        summary="Work queue of the officer's department: open tasks by light, or the finished history",
        description=(
            "By default only open work: tasks not yet decided (批准 signed or rejected) on cases not "
            "closed, red first, then yellow, then by due date. `scope=finished` lists the history "
            "newest first, `scope=all` the open work then the history. Filters: `state`, `item` "
            "(an item code), `light` (open work only: with `scope=finished` it matches nothing); "
            "`page` and `size` page the result. `counts` gives the open queue per light under the "
            "`state` and `item` filters, whatever the scope, light and page."
        ),
    )
    async def work_queue(
        principal: CurrentPrincipal,
        # `scope` and `state` are names litestar reserves (the ASGI scope, the app state), so the
        # parameters are aliased.
        queue_scope: Annotated[
            QueueScope,
            QueryParameter(name="scope", description="open (default), finished (newest first) or all"),
        ] = "open",
        task_state: Annotated[
            TaskQueueState | None, QueryParameter(name="state", description="the task's state")
        ] = None,
        light: Annotated[
            Literal["green", "yellow", "red"] | None, QueryParameter(description="open tasks of this light")
        ] = None,
        item: Annotated[str | None, QueryParameter(max_length=64, description="an item code")] = None,
        page: Page = 1,
        size: Size = 20,
    ) -> QueuePageOut:
        if principal.department is None:
            raise PermissionDeniedException("an officer's token must name their department")
        found = await queue.queue(
            principal.department,
            scope=queue_scope,
            state=task_state,
            light=light,
            item=item,
            page=page,
            size=size,
        )
        return _convert(found, QueuePageOut)

    @get(
        "/staff/dossiers/{applicant_key:str}",
        guards=[require_roles(Role.CLERK, Role.AUDITOR)],
        cache_control=_PRIVATE,
        tags=_TAGS,
        summary="一人一档 / 一企一档: every case of one applicant",
    )
    async def dossier(applicant_key: ApplicantKey) -> list[CaseOut]:
        return [_case(c) for c in await cases.dossier(applicant_key)]

    return [my_cases, progress, anonymous, work_queue, dossier]


def _check_reader(principal: Principal, found: CaseProgress) -> None:
    if principal.role is Role.CITIZEN and principal.subject != found.submitter:
        raise PermissionDeniedException("a citizen may read only the cases their account submitted")
    if principal.role is Role.OFFICER and principal.department not in found.departments:
        raise PermissionDeniedException("the caller's department has no task on this case")


def _convert(value: object, kind: type[T]) -> T:
    # Same field names on both sides: only the wire spelling differs.
    return msgspec.convert(value, kind, from_attributes=True)


def _deadline(d: DeadlineView | None) -> DeadlineOut | None:
    return None if d is None else _convert(d, DeadlineOut)


def _case(c: CaseSummary) -> CaseOut:
    return _convert(c, CaseOut)


def _next(s: NextStep) -> NextStepOut:
    return NextStepOut(
        action=s.action,
        label=s.action.label,
        materials=[MaterialIssueOut(material_id=m.material_id, reason=m.reason) for m in s.materials],
        due=s.due,
        detail=s.detail,
    )
