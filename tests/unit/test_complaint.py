"""请你来找茬 / 办不成事 complaints: each transition, each refusal, and random command sequences."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from backend.store.mapper import make_mapper
from domain.case.base import REMEMBERED_REQUESTS
from domain.case.checks import BEIJING
from domain.case.values import Actor, Channel, Role
from domain.complaint import (
    Complaint,
    ComplaintCategory,
    ComplaintError,
    ComplaintState,
    ComplaintStateError,
    InvalidComplaintError,
    NotAuthorisedError,
)
from domain.personal import Phone

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=BEIJING)
DUE = date(2026, 12, 8)
LATER_DUE = date(2026, 12, 15)
DEPT, POLICE = "长沙市市场监督管理局", "长沙市公安局"
CITIZEN = Actor(id="citizen:zhang", role=Role.CITIZEN)
STRANGER = Actor(id="citizen:li", role=Role.CITIZEN)
DESK = Actor(id="clerk:12345", role=Role.CLERK)
MANAGER = Actor(id="manager:1", role=Role.MANAGER, hall="市民之家")
SYSTEM = Actor(id="system:complaints", role=Role.SYSTEM)
OFFICER = Actor(id="officer:wang", role=Role.OFFICER, department=DEPT)
POLICE_OFFICER = Actor(id="officer:zhao", role=Role.OFFICER, department=POLICE)
MAPPER = make_mapper()
Command = Callable[..., bool]


def submitted(anonymous: bool = False, **changes: Any) -> Complaint:
    args: dict[str, Any] = {
        "number": "TS4301002026120100001",
        "actor": CITIZEN,
        "channel": Channel.MINIAPP,
        "at": T0,
        "category": ComplaintCategory.CANNOT_GET_DONE,
        "title": "营业执照变更跑了三次没办成",
        "description": "窗口说材料不全，但没有一次性告知。",
        "hall": "市民之家",
        "contact": Phone("13812341234"),
        "anonymous_to_staff": anonymous,
    }
    return Complaint.submit(uuid4(), **(args | changes))


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


NOW = at(10)  # after every stage's steps
LATE = datetime(2026, 12, 9, 10, 0, tzinfo=BEIJING)  # the day after DUE

# Each command as the right actor would issue it, with valid arguments, at `when`.
COMMANDS: dict[str, Command] = {
    "route": lambda c, when, **kw: c.route(DEPT, due=DUE, actor=DESK, at=when, **kw),
    "reroute": lambda c, when, **kw: c.route(POLICE, due=DUE, reason="属公安管辖", actor=DESK, at=when, **kw),
    "accept": lambda c, when, **kw: c.accept(actor=OFFICER, at=when, **kw),
    "answer": lambda c, when, **kw: c.answer("已约谈窗口并整改", resolved=True, actor=OFFICER, at=when, **kw),
    "satisfied": lambda c, when, **kw: c.confirm(True, "谢谢", actor=CITIZEN, at=when, **kw),
    "unhappy": lambda c, when, **kw: c.confirm(
        False, "没解决", actor=CITIZEN, at=when, reopen_due=LATER_DUE, **kw
    ),
    "time_out": lambda c, when, **kw: c.close_unconfirmed(actor=SYSTEM, at=when, **kw),
    "withdraw": lambda c, when, **kw: c.withdraw("已自行解决", actor=CITIZEN, at=when, **kw),
    # The timer runs the day after the due date, whenever the test issues it.
    "overdue": lambda c, when, **kw: c.mark_overdue(on=LATE.date(), actor=SYSTEM, at=LATE, **kw),
}
STAGES: dict[str, list[str]] = {
    "submitted": [],
    "routed": ["route"],
    "accepted": ["route", "accept"],
    "answered": ["route", "accept", "answer"],
    "reopened": ["route", "accept", "answer", "unhappy"],
    "answered_again": ["route", "accept", "answer", "unhappy", "answer"],
    "closed": ["route", "answer", "satisfied"],
    "withdrawn": ["route", "withdraw"],
}


def stage(name: str, anonymous: bool = False) -> Complaint:
    complaint = submitted(anonymous)
    for hour, command in enumerate(STAGES[name], start=1):
        COMMANDS[command](complaint, at(hour))
    complaint.collect_events()
    return complaint


def issue(complaint: Complaint, command: str, **kw: Any) -> bool:
    return COMMANDS[command](complaint, NOW, **kw)


@pytest.mark.parametrize(
    ("start", "command", "state", "events"),
    [
        ("submitted", "route", ComplaintState.ROUTED, ["Routed"]),
        ("routed", "reroute", ComplaintState.ROUTED, ["Rerouted"]),
        ("accepted", "reroute", ComplaintState.ROUTED, ["Rerouted"]),
        ("reopened", "reroute", ComplaintState.ROUTED, ["Rerouted"]),
        ("routed", "accept", ComplaintState.ACCEPTED, ["Accepted"]),
        ("reopened", "accept", ComplaintState.ACCEPTED, ["Accepted"]),
        ("accepted", "answer", ComplaintState.ANSWERED, ["Answered"]),
        ("routed", "answer", ComplaintState.ANSWERED, ["Accepted", "Answered"]),  # signs implicitly
        ("reopened", "answer", ComplaintState.ANSWERED, ["Accepted", "Answered"]),
        ("answered", "satisfied", ComplaintState.CLOSED, ["Closed"]),
        ("answered", "unhappy", ComplaintState.REOPENED, ["Reopened"]),
        ("answered_again", "satisfied", ComplaintState.CLOSED, ["Closed"]),
        ("answered_again", "unhappy", ComplaintState.CLOSED, ["Closed", "Escalated"]),
        ("answered", "time_out", ComplaintState.CLOSED, ["Closed"]),
        ("submitted", "withdraw", ComplaintState.WITHDRAWN, ["Withdrawn"]),
        ("routed", "withdraw", ComplaintState.WITHDRAWN, ["Withdrawn"]),
        ("accepted", "withdraw", ComplaintState.WITHDRAWN, ["Withdrawn"]),
        ("reopened", "withdraw", ComplaintState.WITHDRAWN, ["Withdrawn"]),
        ("routed", "overdue", ComplaintState.ROUTED, ["Overdue"]),
        ("accepted", "overdue", ComplaintState.ACCEPTED, ["Overdue"]),
    ],
)
def test_each_transition_records_its_events(start, command, state, events):
    complaint = stage(start)
    assert issue(complaint, command) is True
    recorded = complaint.collect_events()
    assert [type(e).__name__ for e in recorded] == events
    assert complaint.state is state
    assert all(e.timestamp.utcoffset() == timedelta(hours=8) for e in recorded)


NAIVE = datetime(2026, 12, 1, 10, 0)
PAST = date(2026, 11, 30)
REFUSALS: list[tuple[str, Command, type[ComplaintError]]] = [
    # Not in a state for it.
    ("answered", COMMANDS["route"], ComplaintStateError),
    ("closed", COMMANDS["reroute"], ComplaintStateError),
    ("accepted", COMMANDS["accept"], ComplaintStateError),
    ("answered", COMMANDS["answer"], ComplaintStateError),
    ("withdrawn", COMMANDS["answer"], ComplaintStateError),
    ("accepted", COMMANDS["satisfied"], ComplaintStateError),
    ("closed", COMMANDS["unhappy"], ComplaintStateError),
    ("routed", COMMANDS["time_out"], ComplaintStateError),
    ("answered", COMMANDS["withdraw"], ComplaintStateError),
    ("withdrawn", COMMANDS["withdraw"], ComplaintStateError),
    ("answered", COMMANDS["overdue"], ComplaintStateError),
    ("submitted", COMMANDS["overdue"], ComplaintStateError),
    # Not the right actor.
    ("submitted", lambda c, t: c.route(DEPT, due=DUE, actor=CITIZEN, at=t), NotAuthorisedError),
    ("submitted", lambda c, t: c.route(DEPT, due=DUE, actor=OFFICER, at=t), NotAuthorisedError),
    ("submitted", COMMANDS["accept"], NotAuthorisedError),  # no department holds it yet
    ("routed", lambda c, t: c.accept(actor=POLICE_OFFICER, at=t), NotAuthorisedError),
    ("routed", lambda c, t: c.accept(actor=DESK, at=t), NotAuthorisedError),
    ("accepted", lambda c, t: c.answer("好", resolved=True, actor=POLICE_OFFICER, at=t), NotAuthorisedError),
    ("answered", lambda c, t: c.confirm(True, actor=STRANGER, at=t), NotAuthorisedError),
    ("answered", lambda c, t: c.confirm(True, actor=DESK, at=t), NotAuthorisedError),
    ("routed", lambda c, t: c.withdraw("不要了", actor=DESK, at=t), NotAuthorisedError),
    ("routed", lambda c, t: c.withdraw("不要了", actor=STRANGER, at=t), NotAuthorisedError),
    ("answered", lambda c, t: c.close_unconfirmed(actor=DESK, at=t), NotAuthorisedError),
    ("routed", lambda c, t: c.mark_overdue(on=LATE.date(), actor=MANAGER, at=LATE), NotAuthorisedError),
    # Bad arguments.
    ("submitted", lambda c, t: c.route(" ", due=DUE, actor=DESK, at=t), InvalidComplaintError),
    ("submitted", lambda c, t: c.route(DEPT, due=PAST, actor=DESK, at=t), InvalidComplaintError),
    ("submitted", lambda c, t: c.route(DEPT, due=LATE, actor=DESK, at=t), InvalidComplaintError),
    ("submitted", lambda c, t: c.route(DEPT, due=DUE, actor=DESK, at=NAIVE), InvalidComplaintError),
    ("submitted", lambda c, t: c.route(DEPT, due=DUE, reason="x", actor=DESK, at=t), InvalidComplaintError),
    ("routed", lambda c, t: c.route(DEPT, due=DUE, reason="再转", actor=DESK, at=t), InvalidComplaintError),
    ("routed", lambda c, t: c.route(POLICE, due=DUE, actor=DESK, at=t), InvalidComplaintError),
    ("accepted", lambda c, t: c.answer("", resolved=True, actor=OFFICER, at=t), InvalidComplaintError),
    (
        "accepted",
        lambda c, t: c.answer("好" * 2001, resolved=True, actor=OFFICER, at=t),
        InvalidComplaintError,
    ),
    ("routed", lambda c, t: c.answer("好", resolved="yes", actor=OFFICER, at=t), InvalidComplaintError),
    ("answered", lambda c, t: c.confirm(False, actor=CITIZEN, at=t), InvalidComplaintError),
    ("answered", lambda c, t: c.confirm(True, actor=CITIZEN, at=t, reopen_due=DUE), InvalidComplaintError),
    ("answered", lambda c, t: c.confirm(True, "  ", actor=CITIZEN, at=t), InvalidComplaintError),
    ("answered", lambda c, t: c.confirm(False, actor=CITIZEN, at=t, reopen_due=PAST), InvalidComplaintError),
    ("routed", lambda c, t: c.withdraw("", actor=CITIZEN, at=t), InvalidComplaintError),
    ("routed", lambda c, t: c.mark_overdue(on=DUE, actor=SYSTEM, at=LATE), InvalidComplaintError),
    ("routed", lambda c, t: c.mark_overdue(on=LATE.date(), actor=SYSTEM, at=t), InvalidComplaintError),
]


@pytest.mark.parametrize(("start", "command", "error"), REFUSALS)
def test_a_refused_command_records_nothing(start, command, error):
    complaint = stage(start)
    before, version = copy.deepcopy(vars(complaint)), complaint.version
    with pytest.raises(error):
        command(complaint, NOW)
    assert complaint.collect_events() == [] and complaint.version == version
    assert vars(complaint) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"actor": DESK},
        {"actor": OFFICER},
        {"title": "长" * 61},
        {"title": " "},
        {"description": "细" * 2001},
        {"description": ""},
        {"category": "bogus"},
        {"contact": "13812341234"},  # a bare str would escape the store's sealing of personal values
        {"hall": " "},
        {"number": "TS 1"},
        {"at": NAIVE},
        {"anonymous_to_staff": "yes"},
    ],
)
def test_a_bad_submission_is_refused(changes):
    with pytest.raises(ComplaintError):
        submitted(**changes)


def test_a_submission_keeps_the_citizens_words_as_written():
    words = "  我的身份证号430102199001011234，电话13812341234  "
    complaint = submitted(description=words, title="长" * 60, category="platform", contact=None)
    assert complaint.report.description == words  # the read models scrub; the domain keeps the record
    assert complaint.report.category is ComplaintCategory.PLATFORM
    assert complaint.report.category.label == "平台问题"
    assert (complaint.state, complaint.state.label, complaint.is_open) == (
        ComplaintState.SUBMITTED,
        "已提交",
        True,
    )


def test_a_second_dissatisfaction_closes_and_escalates():
    complaint = stage("answered")
    assert complaint.may_reopen
    issue(complaint, "unhappy")
    assert (complaint.state, complaint.due, complaint.reopened) == (ComplaintState.REOPENED, LATER_DUE, 1)
    issue(complaint, "answer")
    assert not complaint.may_reopen
    # The new due date is not needed any more; a caller that sends one anyway is not refused.
    complaint.confirm(False, "还是没解决", actor=CITIZEN, at=NOW, reopen_due=LATER_DUE)
    assert complaint.state is ComplaintState.CLOSED and not complaint.is_open
    assert (complaint.satisfied, complaint.closed_by_default, complaint.escalated) == (False, False, True)
    assert complaint.reply == "已约谈窗口并整改" and complaint.resolved is True
    complaint.collect_events()
    for command in COMMANDS:
        with pytest.raises(ComplaintStateError):
            issue(complaint, command)


def test_an_unconfirmed_answer_closes_by_default():
    complaint = stage("answered")
    issue(complaint, "time_out")
    closed = complaint.collect_events()[-1]
    assert (closed.satisfied, closed.by_default, closed.comment) == (None, True, None)
    assert complaint.closed_by_default and complaint.satisfied is None and not complaint.escalated


def test_rerouting_keeps_the_history_and_names_the_previous_department():
    complaint = stage("accepted")
    issue(complaint, "reroute")
    rerouted = complaint.collect_events()[-1]
    assert (rerouted.previous, rerouted.reason) == (DEPT, "属公安管辖")
    assert [(s.department, s.reason, s.by) for s in complaint.history] == [
        (DEPT, None, DESK.id),
        (POLICE, "属公安管辖", DESK.id),
    ]
    with pytest.raises(NotAuthorisedError):
        issue(complaint, "accept")  # the first department no longer holds it
    complaint.accept(actor=POLICE_OFFICER, at=NOW)
    assert (complaint.department, complaint.state) == (POLICE, ComplaintState.ACCEPTED)


def test_overdue_is_marked_once_per_due_date():
    complaint = stage("routed")
    assert issue(complaint, "overdue") is True
    assert issue(complaint, "overdue") is False
    three_days_on = LATE + timedelta(days=2)
    assert complaint.mark_overdue(on=three_days_on.date(), actor=SYSTEM, at=three_days_on) is False
    assert [type(e).__name__ for e in complaint.collect_events()] == ["Overdue"]
    # A new due date (here from a reroute) can run over in its turn.
    complaint.route(POLICE, due=LATER_DUE, reason="转公安", actor=DESK, at=LATE)
    after = datetime(2026, 12, 16, 9, 0, tzinfo=BEIJING)
    assert complaint.mark_overdue(on=after.date(), actor=SYSTEM, at=after) is True
    assert complaint.overdue == (DUE, LATER_DUE)


@pytest.mark.parametrize(
    ("start", "command"),
    [
        ("submitted", "route"),
        ("routed", "reroute"),
        ("routed", "accept"),
        ("routed", "answer"),  # two events, one request
        ("answered", "satisfied"),
        ("answered", "unhappy"),
        ("answered_again", "unhappy"),  # two events, one request
        ("answered", "time_out"),
        ("accepted", "withdraw"),
        ("routed", "overdue"),
    ],
)
def test_a_repeated_request_id_is_a_no_op(start, command):
    complaint = stage(start)
    assert issue(complaint, command, request_id="req-1") is True
    events, before = complaint.collect_events(), copy.deepcopy(vars(complaint))
    assert issue(complaint, command, request_id="req-1") is False
    assert complaint.collect_events() == [] and vars(complaint) == before
    assert complaint.processed_requests == ["req-1"]  # remembered once, even for two events
    assert all(e.request_id == "req-1" for e in events)


def test_a_request_id_is_spent_whatever_command_reuses_it():
    complaint = stage("submitted")
    issue(complaint, "route", request_id="req-1")
    assert issue(complaint, "accept", request_id="req-1") is False
    assert complaint.state is ComplaintState.ROUTED


def test_only_the_latest_request_ids_are_remembered():
    complaint = stage("routed")
    for n in range(REMEMBERED_REQUESTS + 1):
        to = POLICE if n % 2 == 0 else DEPT
        complaint.route(to, due=DUE, reason="转办有误", actor=DESK, at=NOW, request_id=f"r{n}")
    assert len(complaint.processed_requests) == REMEMBERED_REQUESTS
    assert (
        "r0" not in complaint.processed_requests and f"r{REMEMBERED_REQUESTS}" in complaint.processed_requests
    )


@pytest.mark.parametrize(
    ("anonymous", "viewer", "sees"),
    [
        (True, CITIZEN, CITIZEN.id),
        (True, SYSTEM, CITIZEN.id),
        (True, OFFICER, None),
        (True, DESK, None),
        (True, MANAGER, None),
        (True, STRANGER, None),
        (True, Actor(id=CITIZEN.id, role=Role.OFFICER, department=DEPT), None),  # same id, other role
        (False, OFFICER, CITIZEN.id),
        (False, STRANGER, CITIZEN.id),
    ],
)
def test_staff_never_learn_who_complained_anonymously(anonymous, viewer, sees):
    assert stage("routed", anonymous).submitter_for(viewer) == sees


@pytest.mark.parametrize(
    ("start", "today", "left", "light"),
    [
        ("routed", DUE - timedelta(days=7), 5, "green"),
        ("routed", DUE - timedelta(days=3), 3, "green"),
        ("accepted", DUE - timedelta(days=2), 2, "yellow"),
        ("reopened", LATER_DUE, 0, "yellow"),
        ("routed", DUE + timedelta(days=1), -1, "red"),
        ("accepted", DUE + timedelta(days=1), 0, "red"),  # past the date, whatever the count says
        ("submitted", DUE + timedelta(days=30), -20, "green"),  # nobody owes an answer yet
        ("answered", DUE + timedelta(days=30), -20, "green"),
        ("closed", DUE + timedelta(days=30), -20, "green"),
    ],
)
def test_warning_lights(start, today, left, light):
    assert stage(start).light(today, left) == light


def rebuild(history: list[Any], *, stored: bool) -> Complaint | None:
    """Replay, either directly or through the store's encoding, as a reload would."""
    rebuilt = None
    for event in history:
        if stored:
            event = MAPPER.to_domain_event(MAPPER.to_stored_event(event))
        rebuilt = event.mutate(rebuilt)
    return rebuilt


def test_replay_rebuilds_the_complaint():
    complaint = submitted(anonymous=True)
    issue(complaint, "route")
    issue(complaint, "reroute")
    complaint.answer("已处理", resolved=False, actor=POLICE_OFFICER, at=NOW)
    issue(complaint, "unhappy")
    complaint.answer("已再次处理", resolved=True, actor=POLICE_OFFICER, at=NOW)
    issue(complaint, "unhappy")
    history = list(complaint.collect_events())
    assert rebuild(history, stored=False) == complaint
    assert rebuild(history, stored=True) == complaint
    assert complaint.state is ComplaintState.CLOSED and complaint.escalated


# Random command sequences: mostly wrong actors, bad arguments and bad timing, now and then right.

anyone = st.sampled_from([CITIZEN, STRANGER, DESK, MANAGER, SYSTEM, OFFICER, POLICE_OFFICER])
departments = st.sampled_from([DEPT, POLICE, " "])
texts = st.sampled_from(["处理意见", "已自行解决", "", "  ", "长" * 2001])
reasons = st.one_of(st.none(), texts)
days = st.integers(-2, 12)
hours = st.integers(0, 48)
# Ending a complaint ends the interesting part, so those rules act only one time in four.
rarely = st.integers(0, 3).map(lambda n: n == 0)
ENDINGS = {"Closed", "Withdrawn"}


class ComplaintLifecycle(RuleBasedStateMachine):
    complaint: Complaint
    history: list[Any]

    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.done: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    @initialize(start=st.sampled_from(sorted(STAGES)), anonymous=st.booleans())
    def open_complaint(self, start: str, anonymous: bool) -> None:
        """A fresh complaint, or one deep in its lifecycle, which random commands rarely reach alone."""
        self.complaint = submitted(anonymous)
        for hour, command in enumerate(STAGES[start], start=1):
            COMMANDS[command](self.complaint, at(hour))
        self.history = list(self.complaint.collect_events())

    def attempt(self, method: str, *args: Any, **kwargs: Any) -> None:
        """Issue a command; refused, it changes nothing; on an ended complaint, it is always refused."""
        kwargs |= {"at": self.now, "request_id": f"req-{len(self.history)}-{len(self.done)}"}
        ended, before = not self.complaint.is_open, copy.deepcopy(vars(self.complaint))
        try:
            recorded_any = getattr(self.complaint, method)(*args, **kwargs)
        except ComplaintError:
            assert self.complaint.collect_events() == [] and vars(self.complaint) == before
            return
        assert not ended, f"{method} was accepted by a {self.complaint.state} complaint"
        recorded = list(self.complaint.collect_events())
        assert recorded_any == bool(recorded)
        if recorded:  # a request that recorded nothing leaves nothing to remember it by
            self.done.append((method, args, kwargs))
        self.history += recorded

    def later(self, h: int, d: int) -> date:
        self.now += timedelta(hours=h)
        return self.now.date() + timedelta(days=d)

    @rule(actor=anyone, department=departments, d=days, reason=reasons, h=hours)
    def route(self, actor: Actor, department: str, d: int, reason: str | None, h: int) -> None:
        due = self.later(h, d)
        self.attempt("route", department=department, due=due, reason=reason, actor=actor)

    @rule(to=st.sampled_from([DEPT, POLICE]), d=st.integers(0, 10), h=hours)
    def the_desk_routes(self, to: str, d: int, h: int) -> None:
        due = self.later(h, d)
        reason = None if self.complaint.department is None else "转办有误"
        self.attempt("route", to, due=due, reason=reason, actor=DESK)

    @rule(actor=anyone, h=hours)
    def accept(self, actor: Actor, h: int) -> None:
        self.later(h, 0)
        self.attempt("accept", actor=actor)

    @rule(actor=anyone, reply=texts, resolved=st.sampled_from([True, False, "yes"]), h=hours)
    def answer(self, actor: Actor, reply: str, resolved: bool, h: int) -> None:
        self.later(h, 0)
        self.attempt("answer", reply, resolved=resolved, actor=actor)

    @rule(sign_first=st.booleans(), h=hours)
    def the_holder_answers(self, sign_first: bool, h: int) -> None:
        self.later(h, 0)
        holder = Actor(id="officer:holder", role=Role.OFFICER, department=self.complaint.department)
        if sign_first:
            self.attempt("accept", actor=holder)
        self.attempt("answer", "已处理", resolved=True, actor=holder)

    @rule(actor=st.sampled_from([CITIZEN, CITIZEN, STRANGER, OFFICER]), happy=st.booleans(), comment=reasons)
    def confirm(self, actor: Actor, happy: bool, comment: str | None) -> None:
        self.attempt("confirm", happy, comment, actor=actor, reopen_due=None if happy else self.later(1, 5))

    @rule(actor=anyone, d=st.one_of(st.none(), days), h=hours, act=rarely)
    def confirm_satisfied(self, actor: Actor, d: int | None, h: int, act: bool) -> None:
        due = None if d is None else self.later(h, d)
        if act:
            self.attempt("confirm", True, actor=actor, reopen_due=due)

    @rule(actor=anyone, h=hours)
    def close_unconfirmed(self, actor: Actor, h: int) -> None:
        self.later(h, 0)
        self.attempt("close_unconfirmed", actor=actor)

    @rule(actor=st.sampled_from([CITIZEN, CITIZEN, STRANGER, DESK]), reason=texts, act=rarely)
    def withdraw(self, actor: Actor, reason: str, act: bool) -> None:
        if act:
            self.attempt("withdraw", reason, actor=actor)

    @rule(actor=anyone, back=st.integers(-1, 3), h=hours)
    def mark_overdue(self, actor: Actor, back: int, h: int) -> None:
        on = self.later(h, -back)
        self.attempt("mark_overdue", on=on, actor=actor)

    @precondition(lambda self: self.complaint.due is not None)
    @rule(past=st.integers(0, 3))
    def the_timer_runs_past_the_due_date(self, past: int) -> None:
        assert self.complaint.due is not None
        after = datetime.combine(self.complaint.due + timedelta(days=past), time(9), BEIJING)
        self.now = max(self.now, after)
        self.attempt("mark_overdue", on=self.now.date(), actor=SYSTEM)

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data())
    def client_retries(self, data: st.DataObject) -> None:
        """A request the complaint already processed, sent again, changes nothing."""
        method, args, kwargs = data.draw(st.sampled_from(self.done[-REMEMBERED_REQUESTS:]))
        before = copy.deepcopy(vars(self.complaint))
        assert getattr(self.complaint, method)(*args, **kwargs) is False
        assert self.complaint.collect_events() == [] and vars(self.complaint) == before

    @invariant()
    def the_state_is_one_of_the_lifecycle(self) -> None:
        assert isinstance(self.complaint.state, ComplaintState)
        assert self.complaint.is_open == (
            self.complaint.state not in {ComplaintState.CLOSED, ComplaintState.WITHDRAWN}
        )

    @invariant()
    def nothing_follows_the_end_but_its_escalation(self) -> None:
        names = [type(e).__name__ for e in self.history]
        ends = [i for i, name in enumerate(names) if name in ENDINGS]
        assert len(ends) <= 1
        assert not ends or names[ends[0] + 1 :] in ([], ["Escalated"])

    @invariant()
    def reopened_at_most_once_and_escalated_only_after(self) -> None:
        c = self.complaint
        assert c.reopened <= 1
        assert not c.escalated or (
            c.state is ComplaintState.CLOSED and c.satisfied is False and c.reopened == 1
        )

    @invariant()
    def the_history_rebuilds_the_complaint(self) -> None:
        assert [e.originator_version for e in self.history] == list(range(1, len(self.history) + 1))
        assert rebuild(self.history, stored=False) == self.complaint
        assert self.complaint.department == (
            self.complaint.history[-1].department if self.complaint.history else None
        )

    def teardown(self) -> None:
        # Once per run, the longer way: through the store's encoding, as a reload would.
        if hasattr(self, "complaint"):
            assert rebuild(self.history, stored=True) == self.complaint


TestComplaintLifecycle = ComplaintLifecycle.TestCase
TestComplaintLifecycle.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
