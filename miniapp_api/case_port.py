"""The port the case command routes call, and the caller they pass: backend.cases.service is the adapter."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol
from uuid import UUID

from domain.case import (
    Agent,
    Applicant,
    CaseStatus,
    Channel,
    ExtensionKind,
    ResultCode,
    ReturnTarget,
    SuspensionKind,
)
from domain.case import Role as CaseRole
from miniapp_api.principal import Principal, Role

_ROLES = {Role.CITIZEN: CaseRole.CITIZEN, Role.CLERK: CaseRole.CLERK, Role.OFFICER: CaseRole.OFFICER}
_ROLES |= {Role.PARTNER: CaseRole.PARTNER}


@dataclass(frozen=True, slots=True)
class CommandCaller:
    """The principal in the case's roles; the service reads its identity and scopes from this."""

    subject: str
    role: CaseRole
    name: str | None = None
    department: str | None = None
    hall: str | None = None
    channel: Channel | None = None


class Outcome(Protocol):
    @property
    def case_id(self) -> UUID: ...
    @property
    def number(self) -> str: ...
    @property
    def status(self) -> CaseStatus: ...
    @property
    def version(self) -> int: ...


class AcceptanceResult(Outcome, Protocol):
    @property
    def receipt_number(self) -> str: ...
    @property
    def query_password(self) -> str | None: ...


class HandoffResult(Outcome, Protocol):
    @property
    def handoff(self) -> UUID: ...
    @property
    def partner(self) -> str: ...
    @property
    def parts(self) -> tuple[tuple[str, UUID], ...]: ...


class CaseCommandService(Protocol):
    """backend.cases.service.CaseService is the real one."""

    async def submit(
        self,
        caller: CommandCaller,
        *,
        item_code: str,
        client_request_id: str,
        applicant: Applicant,
        agent: Agent | None = None,
        form: Any = None,
        materials: Any = None,
    ) -> Outcome: ...
    async def supplement_materials(
        self, caller: CommandCaller, case_id: UUID, *, materials: Any, request_id: str | None = None
    ) -> Outcome: ...
    async def withdraw(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        reason: str | None = None,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def pass_pre_review(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> Outcome: ...
    async def request_materials(
        self, caller: CommandCaller, case_id: UUID, *, issues: Any, request_id: str | None = None
    ) -> Outcome: ...
    async def refuse_acceptance(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        reason: str,
        path_forward: str,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def accept(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> AcceptanceResult: ...
    async def accept_with_missing_materials(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        missing: Any,
        commitment_sha256: str,
        supplement_due: date | None = None,
        request_id: str | None = None,
    ) -> AcceptanceResult: ...
    async def accept_on_commitment(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        commitment_sha256: str,
        replaced_proofs: Any,
        request_id: str | None = None,
    ) -> AcceptanceResult: ...
    async def route(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> Outcome: ...
    async def claim_task(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        department: str,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def approve_task_step(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        department: str,
        opinion: str = "",
        request_id: str | None = None,
    ) -> Outcome: ...
    async def reject_task(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        department: str,
        reason: str,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def return_task(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        department: str,
        to: ReturnTarget,
        reason: str,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def suspend(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        kind: SuspensionKind,
        reason: str,
        expected_end: date,
        issues: Any = (),
        request_id: str | None = None,
    ) -> Outcome: ...
    async def resume(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> Outcome: ...
    async def request_extension(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        kind: ExtensionKind,
        reason: str,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def approve_extension(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> Outcome: ...
    async def refuse_extension(
        self, caller: CommandCaller, case_id: UUID, *, reason: str, request_id: str | None = None
    ) -> Outcome: ...
    async def revoke_commitment_approval(
        self, caller: CommandCaller, case_id: UUID, *, reason: str, request_id: str | None = None
    ) -> Outcome: ...
    async def conclude(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        result: ResultCode,
        reason: str | None = None,
        forwarded_to: str | None = None,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def issue_e_licence(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        licence_number: str,
        item_code: str | None = None,
        request_id: str | None = None,
    ) -> Outcome: ...
    async def prepare_pickup(
        self, caller: CommandCaller, case_id: UUID, *, pickup_code: str, request_id: str | None = None
    ) -> Outcome: ...
    async def record_pickup(
        self, caller: CommandCaller, case_id: UUID, *, pickup_code: str, request_id: str | None = None
    ) -> Outcome: ...
    async def mail_result(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        waybill_number: str,
        carrier: str = "EMS",
        request_id: str | None = None,
    ) -> Outcome: ...
    async def record_trip(
        self, caller: CommandCaller, case_id: UUID, *, purpose: str, request_id: str | None = None
    ) -> Outcome: ...
    async def hand_off(
        self, caller: CommandCaller, case_id: UUID, *, partner: str, mode: str, request_id: str | None = None
    ) -> HandoffResult: ...
    async def hand_off_jointly(
        self, caller: CommandCaller, case_id: UUID, *, partners: Sequence[str], request_id: str | None = None
    ) -> HandoffResult: ...
    async def post_paper_materials(
        self,
        caller: CommandCaller,
        case_id: UUID,
        *,
        waybill_number: str,
        carrier: str = "EMS",
        request_id: str | None = None,
    ) -> Outcome: ...
    async def archive_paper_materials(
        self, caller: CommandCaller, case_id: UUID, *, request_id: str | None = None
    ) -> Outcome: ...


def caller_of(principal: Principal) -> CommandCaller:
    """Auditors and admins hold no case role: the routes' guards keep them out before this."""
    return CommandCaller(
        subject=principal.subject,
        role=_ROLES[principal.role],
        name=principal.name,
        department=principal.department,
        hall=principal.hall,
    )
