"""The case application service: submit and accept here, 转办理地 in handoffs.py, the rest in commands.py.

Every command on an existing case goes through `aggregates.execute`, which reloads
and retries on a version conflict, so concurrent commands on one case are decided
one after the other. Refusals, the service's or the case's, raise before anything
is appended.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from backend.cases.access import Identity, actor_of, channel_of
from backend.cases.commands import CaseCommands
from backend.cases.core import CaseOutcome, outcome
from backend.cases.handoffs import CaseHandoffs
from backend.cases.numbers import next_case_number
from backend.cases.partner_items import filing_terms
from backend.cases.passwords import new_query_password, receipt_number_for
from backend.cases.terms import promised_due
from backend.store.errors import ConcurrencyError
from domain.case import (
    Actor,
    Agent,
    Applicant,
    Case,
    CaseStatus,
    Channel,
    InvalidCommandError,
    JsonValue,
    MaterialSource,
    NotEligibleError,
    UploadedFile,
    case_id_for_submission,
)
from domain.case.checks import BEIJING

# The acceptance command given the 受理回执号 and the 查询密码 hash.
Acceptance = Callable[[Case, str, str, Actor, Channel, datetime], None]


@dataclass(frozen=True, slots=True)
class AcceptanceOutcome:
    case_id: UUID
    number: str
    status: CaseStatus
    version: int
    receipt_number: str
    query_password: str | None  # shown this once; None when the request replayed an earlier acceptance


class CaseService(CaseCommands, CaseHandoffs):
    async def submit(
        self,
        caller: Identity,
        *,
        item_code: str,
        client_request_id: str,
        applicant: Applicant,
        agent: Agent | None = None,
        form: Mapping[str, JsonValue] | None = None,
        materials: Mapping[str, MaterialSource] | None = None,
    ) -> CaseOutcome:
        """申请. The same client request id from the same account always lands on one case."""
        case_id = case_id_for_submission(self.region, caller.subject, client_request_id)
        # Whether the case exists: its events are one (coalesced) read, a whole load is two.
        if await self.aggregates.recorder.select_events(case_id):
            return outcome(await self.aggregates.get(case_id))  # a retry: take no new number
        # Our catalogue's item or bundle; else a partner city's item it takes from us (跨城通办).
        filing = await filing_terms(self.catalogue, self.partners, item_code, caller.role)
        self.check_uploaded(materials or {})
        at = self.clock()
        day = at.astimezone(BEIJING).date()
        number = await next_case_number(self.pool, self.region, day, self.number_pattern)
        case = Case.submit(
            actor_of(caller),
            channel_of(caller),
            at,
            case_id=case_id,
            number=number,
            applicant=applicant,
            item_code=item_code,
            catalogue_version=filing.version,
            agent=agent,
            children=filing.children,
            form=form,
            materials=materials,
            request_id=client_request_id,
        )
        if filing.online_partner is not None:  # 全程网办: in the same append, so it is never left behind
            self.hand_off_online(case, filing.online_partner, at)
        try:
            await self.aggregates.save(case)
        except ConcurrencyError:
            # A concurrent retry of the same request won: its case is this submission, our number is skipped.
            return outcome(await self.aggregates.get(case_id))
        return outcome(case)

    async def accept(
        self, caller: Identity, case_id: UUID, *, request_id: str | None = None
    ) -> AcceptanceOutcome:
        """受理: the 受理回执号 and a fresh 查询密码, returned once and stored only as its hash."""

        def accept(case: Case, receipt: str, hashed: str, a: Actor, c: Channel, at: datetime) -> None:
            case.accept(a, c, at, receipt_number=receipt, query_password_hash=hashed, request_id=request_id)

        return await self._accept(caller, case_id, accept)

    async def accept_with_missing_materials(
        self,
        caller: Identity,
        case_id: UUID,
        *,
        missing: Collection[str],
        commitment_sha256: str,
        supplement_due: date | None = None,
        request_id: str | None = None,
    ) -> AcceptanceOutcome:
        """容缺受理: minor materials per the catalogue, due by the end of the 承诺时限 unless set sooner."""
        self.check_uploaded({"commitment": UploadedFile(commitment_sha256)})
        terms = await self.terms_of(case_id)
        latest = promised_due(terms, self.clock().astimezone(BEIJING).date(), self.calendar())
        if supplement_due is not None and supplement_due > latest:
            raise InvalidCommandError(f"the supplement must be due by {latest}, the end of the 承诺时限")
        due = supplement_due or latest

        def accept(case: Case, receipt: str, hashed: str, a: Actor, c: Channel, at: datetime) -> None:
            case.accept_with_missing_materials(
                a,
                c,
                at,
                receipt_number=receipt,
                query_password_hash=hashed,
                missing=missing,
                minor=terms.minor_materials,
                commitment_sha256=commitment_sha256,
                supplement_due=due,
                on_credit_blacklist=self.on_credit_blacklist(case.applicant),
                request_id=request_id,
            )

        return await self._accept(caller, case_id, accept)

    async def accept_on_commitment(
        self,
        caller: Identity,
        case_id: UUID,
        *,
        commitment_sha256: str,
        replaced_proofs: Collection[str],
        request_id: str | None = None,
    ) -> AcceptanceOutcome:
        """告知承诺: only for items the catalogue marks eligible."""
        self.check_uploaded({"commitment": UploadedFile(commitment_sha256)})
        if "commitment" not in (await self.terms_of(case_id)).modes:
            raise NotEligibleError("this item is not open to 告知承诺")

        def accept(case: Case, receipt: str, hashed: str, a: Actor, c: Channel, at: datetime) -> None:
            case.accept_on_commitment(
                a,
                c,
                at,
                receipt_number=receipt,
                query_password_hash=hashed,
                commitment_sha256=commitment_sha256,
                replaced_proofs=replaced_proofs,
                on_credit_blacklist=self.on_credit_blacklist(case.applicant),
                request_id=request_id,
            )

        return await self._accept(caller, case_id, accept)

    async def _accept(self, caller: Identity, case_id: UUID, command: Acceptance) -> AcceptanceOutcome:
        password = new_query_password()
        hashed = self.password_hasher(password)  # a keyed HMAC: microseconds, no thread needed

        def accept(case: Case, a: Actor, c: Channel, at: datetime) -> None:
            command(case, receipt_number_for(case.number), hashed, a, c, at)

        case = await self.run(caller, case_id, accept)
        terms = case.acceptance
        if terms is None:  # every acceptance command either accepts, replays an acceptance, or raises
            raise AssertionError("an acceptance command left the case unaccepted")
        # A replayed request id changes nothing: that password was shown the first time, and is lost.
        fresh = terms.query_password_hash == hashed
        return AcceptanceOutcome(
            case_id=case.id,
            number=case.number,
            status=case.status,
            version=case.version,
            receipt_number=terms.receipt_number,
            query_password=password if fresh else None,
        )
