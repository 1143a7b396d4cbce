"""The case commands that need nothing beyond the caller's scope: one method per use case."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from uuid import UUID

from backend.cases.access import Identity, NotYourCaseError
from backend.cases.core import CaseOutcome, CaseServiceBase
from backend.cases.scope import Reach, item_department
from domain.case import (
    Actor,
    Assignment,
    Case,
    Channel,
    ExtensionKind,
    MaterialIssue,
    MaterialSource,
    ResultCode,
    ReturnTarget,
    SuspensionKind,
    TaskState,
)

Rid = str | None


class CaseCommands(CaseServiceBase):
    # 预审, before acceptance.

    async def pass_pre_review(
        self, caller: Identity, case_id: UUID, *, request_id: Rid = None
    ) -> CaseOutcome:
        return await self.act(
            caller, case_id, lambda c, a, ch, at: c.pass_pre_review(a, ch, at, request_id=request_id)
        )

    async def request_materials(
        self, caller: Identity, case_id: UUID, *, issues: Iterable[MaterialIssue], request_id: Rid = None
    ) -> CaseOutcome:
        listed = tuple(issues)
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.request_materials(a, ch, at, issues=listed, request_id=request_id),
        )

    async def refuse_acceptance(
        self, caller: Identity, case_id: UUID, *, reason: str, path_forward: str, request_id: Rid = None
    ) -> CaseOutcome:
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.refuse_acceptance(
                a, ch, at, reason=reason, path_forward=path_forward, request_id=request_id
            ),
        )

    # The applicant's own commands.

    async def supplement_materials(
        self,
        caller: Identity,
        case_id: UUID,
        *,
        materials: Mapping[str, MaterialSource],
        request_id: Rid = None,
    ) -> CaseOutcome:
        """补正 / 补齐: every file must already be uploaded."""
        self.check_uploaded(materials)
        given = dict(materials)
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.supplement_materials(a, ch, at, materials=given, request_id=request_id),
            reach=Reach.APPLICANT,
        )

    async def withdraw(
        self, caller: Identity, case_id: UUID, *, reason: str | None = None, request_id: Rid = None
    ) -> CaseOutcome:
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.withdraw(a, ch, at, reason=reason, request_id=request_id),
            reach=Reach.APPLICANT,
        )

    # 按责转办 and the departments' tasks.

    async def route(self, caller: Identity, case_id: UUID, *, request_id: Rid = None) -> CaseOutcome:
        """One task per department, the item's or each bundle child's; a returned task is reopened."""
        item_departments = await self.catalogue.item_departments()

        def route(c: Case, a: Actor, ch: Channel, at: object) -> None:
            if c.is_bundle:
                wanted = c.bundle_assignments()
            else:
                department = item_department(c.item_code, item_departments)
                wanted = (Assignment(department=department, item_codes=(c.item_code,)),)
            # Departments already at work keep their task; with none left the case refuses.
            due = [
                w
                for w in wanted
                if w.department not in c.tasks or c.tasks[w.department].state is TaskState.RETURNED
            ]
            c.route(a, ch, at, assignments=due, request_id=request_id)  # type: ignore[arg-type]

        return await self.act(caller, case_id, route)

    async def claim_task(
        self, caller: Identity, case_id: UUID, *, department: str, request_id: Rid = None
    ) -> CaseOutcome:
        return await self._task(
            caller,
            case_id,
            department,
            lambda c, a, ch, at: c.claim_task(a, ch, at, department=department, request_id=request_id),
        )

    async def approve_task_step(
        self, caller: Identity, case_id: UUID, *, department: str, opinion: str = "", request_id: Rid = None
    ) -> CaseOutcome:
        """Sign the claimed step: 承办 and 审核 pass it on, 批准 approves the department's part."""
        return await self._task(
            caller,
            case_id,
            department,
            lambda c, a, ch, at: c.approve_task_step(
                a, ch, at, department=department, opinion=opinion, request_id=request_id
            ),
        )

    async def reject_task(
        self, caller: Identity, case_id: UUID, *, department: str, reason: str, request_id: Rid = None
    ) -> CaseOutcome:
        return await self._task(
            caller,
            case_id,
            department,
            lambda c, a, ch, at: c.reject_task(
                a, ch, at, department=department, reason=reason, request_id=request_id
            ),
        )

    async def return_task(
        self,
        caller: Identity,
        case_id: UUID,
        *,
        department: str,
        to: ReturnTarget,
        reason: str,
        request_id: Rid = None,
    ) -> CaseOutcome:
        return await self._task(
            caller,
            case_id,
            department,
            lambda c, a, ch, at: c.return_task(
                a, ch, at, department=department, to=to, reason=reason, request_id=request_id
            ),
        )

    async def _task(self, caller: Identity, case_id: UUID, department: str, command: object) -> CaseOutcome:
        return await self.act(caller, case_id, command, department=department)  # type: ignore[arg-type]

    # 特别程序 and 延期.

    async def suspend(
        self,
        caller: Identity,
        case_id: UUID,
        *,
        kind: SuspensionKind,
        reason: str,
        expected_end: date,
        issues: Iterable[MaterialIssue] = (),
        request_id: Rid = None,
    ) -> CaseOutcome:
        listed = tuple(issues)
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.suspend(
                a,
                ch,
                at,
                kind=kind,
                reason=reason,
                expected_end=expected_end,
                issues=listed,
                request_id=request_id,
            ),
        )

    async def resume(self, caller: Identity, case_id: UUID, *, request_id: Rid = None) -> CaseOutcome:
        return await self.act(
            caller, case_id, lambda c, a, ch, at: c.resume(a, ch, at, request_id=request_id)
        )

    async def request_extension(
        self, caller: Identity, case_id: UUID, *, kind: ExtensionKind, reason: str, request_id: Rid = None
    ) -> CaseOutcome:
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.request_extension(
                a, ch, at, kind=kind, reason=reason, request_id=request_id
            ),
        )

    async def approve_extension(
        self, caller: Identity, case_id: UUID, *, request_id: Rid = None
    ) -> CaseOutcome:
        return await self.act(
            caller, case_id, lambda c, a, ch, at: c.approve_extension(a, ch, at, request_id=request_id)
        )

    async def refuse_extension(
        self, caller: Identity, case_id: UUID, *, reason: str, request_id: Rid = None
    ) -> CaseOutcome:
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.refuse_extension(a, ch, at, reason=reason, request_id=request_id),
        )

    # 办结 and 送达.

    async def conclude(
        self,
        caller: Identity,
        case_id: UUID,
        *,
        result: ResultCode,
        reason: str | None = None,
        forwarded_to: str | None = None,
        request_id: Rid = None,
    ) -> CaseOutcome:
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.conclude(
                a, ch, at, result=result, reason=reason, forwarded_to=forwarded_to, request_id=request_id
            ),
        )

    async def revoke_commitment_approval(
        self, caller: Identity, case_id: UUID, *, reason: str, request_id: Rid = None
    ) -> CaseOutcome:
        """告知承诺: a later check found the commitment untrue, so the approval is revoked."""
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.revoke_commitment_approval(
                a, ch, at, reason=reason, request_id=request_id
            ),
        )

    async def issue_e_licence(
        self,
        caller: Identity,
        case_id: UUID,
        *,
        licence_number: str,
        item_code: str | None = None,
        request_id: Rid = None,
    ) -> CaseOutcome:
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.issue_e_licence(
                a, ch, at, licence_number=licence_number, item_code=item_code, request_id=request_id
            ),
        )

    async def prepare_pickup(
        self, caller: Identity, case_id: UUID, *, pickup_code: str, request_id: Rid = None
    ) -> CaseOutcome:
        """待领取 at the clerk's own hall."""
        hall = _own_hall(caller)
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.prepare_pickup(
                a, ch, at, pickup_code=pickup_code, hall=hall, request_id=request_id
            ),
        )

    async def record_pickup(
        self, caller: Identity, case_id: UUID, *, pickup_code: str, request_id: Rid = None
    ) -> CaseOutcome:
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.record_pickup(a, ch, at, pickup_code=pickup_code, request_id=request_id),
        )

    async def mail_result(
        self,
        caller: Identity,
        case_id: UUID,
        *,
        waybill_number: str,
        carrier: str = "EMS",
        request_id: Rid = None,
    ) -> CaseOutcome:
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.mail_result(
                a, ch, at, waybill_number=waybill_number, carrier=carrier, request_id=request_id
            ),
        )

    async def record_trip(
        self, caller: Identity, case_id: UUID, *, purpose: str, request_id: Rid = None
    ) -> CaseOutcome:
        """A visit at the recording clerk's hall, which need not be the hall that holds the case."""
        hall = _own_hall(caller)
        return await self.act(
            caller,
            case_id,
            lambda c, a, ch, at: c.record_trip(a, ch, at, purpose=purpose, hall=hall, request_id=request_id),
            reach=Reach.TRIP,
        )


def _own_hall(caller: Identity) -> str:
    if caller.hall is None:
        raise NotYourCaseError("only a clerk whose token names their hall may do this")
    return caller.hall
