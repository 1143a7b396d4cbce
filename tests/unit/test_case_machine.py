"""Random command sequences against one case: whatever is tried, the lifecycle's invariants hold."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from backend.store.mapper import make_mapper
from domain.case import (
    Actor,
    Assignment,
    BundleChild,
    Case,
    CaseError,
    Channel,
    ExtensionKind,
    MaterialIssue,
    ResultCode,
    ReturnTarget,
    Role,
    SuspensionKind,
    TaskState,
    UploadedFile,
)
from domain.case.base import REMEMBERED_REQUESTS
from tests.unit.case_builders import (
    CITIZEN,
    CLERK,
    COMMITMENT,
    DEPT,
    ENTERPRISE,
    ENTERPRISE_AGENT,
    ITEM,
    MINIAPP,
    PARTNER,
    PASSWORD_HASH,
    STATES,
    STRANGER,
    SYS,
    SYSTEM,
    T0,
    WINDOW,
    build_with_history,
    officer,
    sha,
    submission,
)

pytestmark = pytest.mark.unit

MAPPER = make_mapper()

POLICE = "长沙市公安局"
DEPARTMENTS = (DEPT, POLICE)
CHILDREN = (
    BundleChild(item_code="430100-QY-01", department=DEPT),
    BundleChild(item_code="430100-QY-02", department=POLICE),
)
MATERIALS = ("lease", "plan", "fire-check", "photo", "survey")

material_sets = st.sets(st.sampled_from(MATERIALS), max_size=3)
hours = st.integers(min_value=0, max_value=60)
officers = st.builds(officer, st.integers(0, 3), st.sampled_from(DEPARTMENTS))
anyone = st.one_of(st.sampled_from((CITIZEN, STRANGER, CLERK, SYSTEM, PARTNER)), officers)
applicant_side = st.sampled_from((CITIZEN, STRANGER, CLERK))
departments = st.sampled_from(DEPARTMENTS)
reasons = st.sampled_from(["", "材料不全", "不符合条件"])
# Ending a case is easy and ends the interesting part, so those rules act only one time in six.
rarely = st.integers(0, 5).map(lambda n: n == 0)

APPROVALS = {"Concluded", "InstantlyApproved"}
DELIVERIES = {"ELicenceIssued", "PickedUp", "Mailed"}


class CaseLifecycle(RuleBasedStateMachine):
    """Each rule issues one command, often with the wrong actor, arguments or timing."""

    case: Case
    history: list[Any]

    def __init__(self) -> None:
        super().__init__()
        self.now = T0 + timedelta(days=1)  # after every builder's steps
        self.done: list[tuple[str, Actor, Channel, dict[str, Any], str]] = []

    @initialize(start=st.sampled_from(["bundle", "bundle_in_handling", *sorted(STATES)]))
    def open_case(self, start: str) -> None:
        """A fresh case, or one deep in the lifecycle where random commands rarely get on their own."""
        if not start.startswith("bundle"):
            self.case, self.history = build_with_history(start)
            return
        args = submission(
            applicant=ENTERPRISE, agent=ENTERPRISE_AGENT, item_code="430100-QY", children=CHILDREN
        )
        self.case = Case.submit(CITIZEN, MINIAPP, T0, **args)
        if start == "bundle_in_handling":
            self.case.accept(CLERK, WINDOW, T0, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
            self.case.route(CLERK, WINDOW, T0, assignments=self.case.bundle_assignments())
        self.history = list(self.case.collect_events())

    def attempt(self, advance: int, command: str, actor: Actor, channel: Channel, **kwargs: Any) -> None:
        """Run a command; if refused, nothing at all may have changed."""
        self.now += timedelta(hours=advance)
        request_id = f"request-{len(self.done)}-{self.case.version}"
        before = copy.deepcopy(vars(self.case))
        try:
            getattr(self.case, command)(actor, channel, self.now, request_id=request_id, **kwargs)
        except CaseError:
            assert self.case.collect_events() == []
            assert vars(self.case) == before
            return
        recorded = self.case.collect_events()
        assert len(recorded) <= 1
        if recorded:
            self.done.append((command, actor, channel, kwargs, request_id))
        self.history += recorded

    # Intake and acceptance.

    @rule(actor=anyone, h=hours)
    def pass_pre_review(self, actor: Actor, h: int) -> None:
        self.attempt(h, "pass_pre_review", actor, WINDOW)

    @rule(missing=material_sets, h=hours)
    def request_materials(self, missing: set[str], h: int) -> None:
        issues = [MaterialIssue(material_id=m, reason="请补正") for m in sorted(missing)]
        self.attempt(h, "request_materials", CLERK, WINDOW, issues=issues)

    @rule(reason=reasons, act=rarely, h=hours)
    def refuse_acceptance(self, reason: str, act: bool, h: int) -> None:
        if act:
            self.attempt(h, "refuse_acceptance", CLERK, WINDOW, reason=reason, path_forward="向省局申请")

    @rule(actor=anyone, h=hours)
    def accept(self, actor: Actor, h: int) -> None:
        self.attempt(h, "accept", actor, WINDOW, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)

    @rule(
        missing=material_sets, minor=material_sets, blacklisted=st.booleans(), due=st.integers(-1, 6), h=hours
    )
    def accept_with_missing_materials(
        self, missing: set[str], minor: set[str], blacklisted: bool, due: int, h: int
    ) -> None:
        self.attempt(
            h,
            "accept_with_missing_materials",
            CLERK,
            WINDOW,
            receipt_number="SL-2",
            query_password_hash=PASSWORD_HASH,
            missing=missing,
            minor=minor,
            commitment_sha256=COMMITMENT,
            supplement_due=(self.now + timedelta(hours=h, days=due)).date(),
            on_credit_blacklist=blacklisted,
        )

    @rule(blacklisted=st.booleans(), h=hours)
    def accept_on_commitment(self, blacklisted: bool, h: int) -> None:
        self.attempt(
            h,
            "accept_on_commitment",
            CLERK,
            WINDOW,
            receipt_number="SL-3",
            query_password_hash=PASSWORD_HASH,
            commitment_sha256=COMMITMENT,
            replaced_proofs=["no-crime-proof"],
            on_credit_blacklist=blacklisted,
        )

    @rule(actor=anyone, h=hours)
    def deem_accepted(self, actor: Actor, h: int) -> None:
        self.attempt(h, "deem_accepted", actor, SYS, receipt_number="SL-D", query_password_hash=PASSWORD_HASH)

    @rule(actor=anyone, h=hours)
    def approve_instantly(self, actor: Actor, h: int) -> None:
        self.attempt(
            h,
            "approve_instantly",
            actor,
            SYS,
            rule_id="MP-1",
            rule_version="1",
            receipt_number="SL-9",
            query_password_hash=PASSWORD_HASH,
        )

    @rule(actor=applicant_side, supplied=material_sets, h=hours)
    def supplement_materials(self, actor: Actor, supplied: set[str], h: int) -> None:
        sources = {m: UploadedFile(sha(n)) for n, m in enumerate(sorted(supplied))}
        self.attempt(h, "supplement_materials", actor, MINIAPP, materials=sources)

    # Handling.

    @rule(which=st.sampled_from(["all", "first", "wrong"]), h=hours)
    def route(self, which: str, h: int) -> None:
        plan = self.case.bundle_assignments() or (Assignment(department=DEPT, item_codes=(ITEM,)),)
        if which == "first":
            plan = plan[:1]
        elif which == "wrong":
            plan = (Assignment(department=POLICE, item_codes=(ITEM,)),)
        self.attempt(h, "route", CLERK, WINDOW, assignments=plan)

    @rule(actor=anyone, department=departments, h=hours)
    def claim_task(self, actor: Actor, department: str, h: int) -> None:
        self.attempt(h, "claim_task", actor, SYS, department=department)

    @rule(actor=officers, department=departments, h=hours)
    def approve_task_step(self, actor: Actor, department: str, h: int) -> None:
        self.attempt(h, "approve_task_step", actor, SYS, department=department, opinion="同意")

    @rule(department=departments, h=hours)
    def claimant_approves(self, department: str, h: int) -> None:
        self.attempt(h, "approve_task_step", self._claimant(department), SYS, department=department)

    @rule(n=st.integers(0, 3), department=departments, h=hours)
    def an_officer_claims_and_signs(self, n: int, department: str, h: int) -> None:
        """The happy path is long (three steps per department), so one rule walks a step of it."""
        signer = officer(n, department)
        self.attempt(h, "claim_task", signer, SYS, department=department)
        self.attempt(h, "approve_task_step", signer, SYS, department=department, opinion="同意")

    @rule(department=departments, reason=reasons, h=hours)
    def claimant_rejects(self, department: str, reason: str, h: int) -> None:
        self.attempt(h, "reject_task", self._claimant(department), SYS, department=department, reason=reason)

    @rule(department=departments, to=st.sampled_from(ReturnTarget), h=hours)
    def claimant_returns(self, department: str, to: ReturnTarget, h: int) -> None:
        self.attempt(
            h, "return_task", self._claimant(department), SYS, department=department, to=to, reason="退回"
        )

    def _claimant(self, department: str) -> Actor:
        task = self.case.tasks.get(department)
        return Actor(id=(task and task.claimed_by) or "nobody", role=Role.OFFICER, department=department)

    # Special procedures and extensions.

    @rule(kind=st.sampled_from(SuspensionKind), listed=material_sets, days=st.integers(-1, 10), h=hours)
    def suspend(self, kind: SuspensionKind, listed: set[str], days: int, h: int) -> None:
        issues = [MaterialIssue(material_id=m, reason="补充") for m in sorted(listed)]
        end = (self.now + timedelta(hours=h, days=days)).date()
        self.attempt(
            h, "suspend", officer(0), SYS, kind=kind, reason="特别程序", expected_end=end, issues=issues
        )

    @rule(actor=anyone, h=hours)
    def resume(self, actor: Actor, h: int) -> None:
        self.attempt(h, "resume", actor, SYS)

    @rule(actor=officers, kind=st.sampled_from(ExtensionKind), h=hours)
    def request_extension(self, actor: Actor, kind: ExtensionKind, h: int) -> None:
        self.attempt(h, "request_extension", actor, SYS, kind=kind, reason="情况复杂")

    @rule(actor=officers, approve=st.booleans(), h=hours)
    def decide_extension(self, actor: Actor, approve: bool, h: int) -> None:
        if approve:
            self.attempt(h, "approve_extension", actor, SYS)
        else:
            self.attempt(h, "refuse_extension", actor, SYS, reason="理由不足")

    # Conclusion, delivery, trips and supervision.

    @rule(
        actor=anyone,
        result=st.sampled_from(ResultCode),
        reason=reasons,
        to=st.sampled_from([None, "省局"]),
        h=hours,
    )
    def conclude(self, actor: Actor, result: ResultCode, reason: str, to: str | None, h: int) -> None:
        self.attempt(h, "conclude", actor, SYS, result=result, reason=reason or None, forwarded_to=to)

    @rule(h=hours)
    def reject_for_missing_supplement(self, h: int) -> None:
        self.attempt(h, "reject_for_missing_supplement", SYSTEM, SYS)

    @rule(actor=applicant_side, act=rarely, h=hours)
    def withdraw(self, actor: Actor, act: bool, h: int) -> None:
        if act:
            self.attempt(h, "withdraw", actor, MINIAPP, reason="不再需要")

    @rule(h=hours)
    def revoke_commitment_approval(self, h: int) -> None:
        self.attempt(h, "revoke_commitment_approval", officer(0), SYS, reason="核查不实")

    @rule(number=st.sampled_from(["L-1", "L-2"]), h=hours)
    def issue_e_licence(self, number: str, h: int) -> None:
        self.attempt(h, "issue_e_licence", SYSTEM, SYS, licence_number=number)

    @rule(code=st.sampled_from(["1111", "2222"]), prepare=st.booleans(), h=hours)
    def pickup(self, code: str, prepare: bool, h: int) -> None:
        if prepare:
            self.attempt(h, "prepare_pickup", CLERK, WINDOW, pickup_code=code, hall="市民之家")
        else:
            self.attempt(h, "record_pickup", CLERK, WINDOW, pickup_code=code)

    @rule(waybill=st.sampled_from(["EMS1", "EMS2"]), h=hours)
    def mail_result(self, waybill: str, h: int) -> None:
        self.attempt(h, "mail_result", CLERK, WINDOW, waybill_number=waybill)

    @rule(actor=anyone, h=hours)
    def record_trip(self, actor: Actor, h: int) -> None:
        self.attempt(h, "record_trip", actor, WINDOW, purpose="现场办理", hall="市民之家")

    @rule(days=st.integers(-3, 3), red=st.booleans(), h=hours)
    def supervise(self, days: int, red: bool, h: int) -> None:
        deadline = (self.now + timedelta(hours=h, days=days)).date()
        if red:
            self.attempt(h, "mark_overdue", SYSTEM, SYS, deadline=deadline)
        else:
            self.attempt(h, "warn_due_soon", SYSTEM, SYS, deadline=deadline, working_days_left=1)

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data())
    def client_retries(self, data: st.DataObject) -> None:
        """A command retried with a request id the case already processed changes nothing."""
        command, actor, channel, kwargs, request_id = data.draw(
            st.sampled_from(self.done[-REMEMBERED_REQUESTS:])
        )
        before = copy.deepcopy(vars(self.case))
        getattr(self.case, command)(actor, channel, self.now, request_id=request_id, **kwargs)
        assert self.case.collect_events() == [] and vars(self.case) == before

    # Invariants.

    @invariant()
    def concluded_at_most_once(self) -> None:
        assert sum(type(e).__name__ in APPROVALS for e in self.history) <= 1

    @invariant()
    def delivered_only_after_a_standing_approval(self) -> None:
        approved = False
        for e in self.history:
            name = type(e).__name__
            if name == "InstantlyApproved" or (name == "Concluded" and e.result is ResultCode.APPROVED):
                approved = True
            elif name == "CommitmentApprovalRevoked":
                approved = False
            elif name in DELIVERIES:
                assert approved, f"{name} without a standing approval"

    @invariant()
    def versions_increase_one_by_one(self) -> None:
        assert [e.originator_version for e in self.history] == list(range(1, len(self.history) + 1))
        assert self.case.version == len(self.history)

    @invariant()
    def at_most_one_open_suspension(self) -> None:
        open_periods = [s for s in self.case.suspensions if s.ended_at is None]
        assert len(open_periods) <= 1
        assert not open_periods or open_periods[0] is self.case.suspensions[-1]

    @invariant()
    def a_task_names_its_claimant_exactly_while_claimed(self) -> None:
        for task in self.case.tasks.values():
            assert (task.state is TaskState.CLAIMED) == (task.claimed_by is not None)

    @invariant()
    def the_history_rebuilds_the_case(self) -> None:
        rebuilt = None
        for e in self.history:
            rebuilt = e.mutate(rebuilt)
        assert rebuilt == self.case

    def teardown(self) -> None:
        # Once per run, the longer way: through the event store's encoding, as a reload would.
        if hasattr(self, "case"):
            rebuilt = None
            for record in [MAPPER.to_stored_event(e) for e in self.history]:
                rebuilt = MAPPER.to_domain_event(record).mutate(rebuilt)
            assert rebuilt == self.case


TestCaseLifecycle = CaseLifecycle.TestCase
TestCaseLifecycle.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
