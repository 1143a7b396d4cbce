"""好差评 in the domain: one rating per occasion, only by the applicant, the default, and the 差评工单."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest

from domain.case import Actor, Channel, Role
from domain.case.checks import BEIJING
from domain.rating import (
    AlreadyRatedError,
    InvalidRatingError,
    Level,
    NotTheApplicantError,
    NotTheOwnerError,
    Occasion,
    Rating,
    RatingWindowClosedError,
    RectificationTicket,
    TicketState,
    TicketStateError,
    online_rating_id,
    ticket_id,
    visit_rating_id,
)
from domain.rating import Channel as RatingChannel

pytestmark = pytest.mark.unit

CONCLUDED = date(2026, 12, 1)
CLOSES = CONCLUDED + timedelta(days=7)  # the 7 natural days' window
ZHANG = Actor(id="citizen-zhang", role=Role.CITIZEN)
LI = Actor(id="citizen-li", role=Role.CITIZEN)
CLERK = Actor(id="clerk-1", role=Role.CLERK, hall="SMZJ")
OFFICER = Actor(id="officer-scjgj", role=Role.OFFICER, department="SCJGJ")
OTHER_UNIT = Actor(id="officer-gaj", role=Role.OFFICER, department="GAJ")
SUPERVISOR = Actor(id="hcp-admin", role=Role.SUPERVISOR)
CASE = uuid.UUID(int=42)


def at(day: date, hh: int = 10) -> datetime:
    return datetime.combine(day, time(hh), BEIJING)


def invited(channel: RatingChannel = RatingChannel.ONLINE) -> Rating:
    occasion = Occasion(
        channel=channel, department="SCJGJ", item_code="FOOD", case_id=CASE, case_number="430100202612010001",
        hall="SMZJ", window="03", clerk="clerk-1",
    )  # fmt: skip
    indicator_set = "online-v1" if channel is RatingChannel.ONLINE else "offline-v1"
    return Rating.invite(
        online_rating_id(CASE), occasion=occasion, applicant=ZHANG.id, indicator_set=indicator_set,
        closes_on=CLOSES, at=at(CONCLUDED),
    )  # fmt: skip


def rate(rating: Rating, level: int, **how: Any) -> bool:
    return rating.rate(
        level,
        actor=how.pop("actor", ZHANG),
        channel=Channel.MINIAPP,
        at=how.pop("at", at(CONCLUDED, 11)),
        **how,
    )


def test_ids_name_one_occasion_each() -> None:
    assert online_rating_id(CASE) == online_rating_id(CASE) != online_rating_id(uuid.UUID(int=43))
    assert visit_rating_id("SMZJ", "2026-12-01", "A001") != visit_rating_id("SMZJ", "2026-12-02", "A001")
    assert ticket_id(online_rating_id(CASE)) != online_rating_id(CASE)


def test_the_applicant_rates_once_and_a_retry_is_answered() -> None:
    rating = invited()
    assert rate(rating, 5, indicators={"整体满意度": 5, "办事效率": 4}, comment="很快")
    assert rating.answer is not None and (rating.answer.level, rating.answer.is_default) == (
        Level.VERY_SATISFIED,
        False,
    )
    assert not rate(
        rating, 5, indicators={"整体满意度": 5, "办事效率": 4}, comment="很快"
    )  # the same answer again
    with pytest.raises(AlreadyRatedError):
        rate(rating, 4)
    assert [type(e).__name__ for e in rating.collect_events()] == ["Invited", "Rated"]


@pytest.mark.parametrize("actor", [LI, CLERK, OFFICER, SUPERVISOR, Actor(id=ZHANG.id, role=Role.CLERK)])
def test_only_the_applicants_own_account_may_rate(actor: Actor) -> None:
    rating = invited()
    with pytest.raises(NotTheApplicantError):
        rate(rating, 1, actor=actor, comment="x")
    assert rating.answer is None and len(rating.collect_events()) == 1


@pytest.mark.parametrize(
    ("level", "extra"),
    [
        (0, {}),
        (6, {}),
        (4, {"indicators": {"服务态度": 4}}),  # an offline indicator on an online occasion
        (4, {"indicators": {"办事效率": 9}}),
        (4, {"indicators": {"整体满意度": 3}}),  # contradicts the level
        (2, {}),  # a 差评 says what went wrong
        (1, {"comment": "   "}),
        (3, {"comment": "长" * 501}),
    ],
)
def test_a_bad_answer_is_refused_and_records_nothing(level: int, extra: dict[str, Any]) -> None:
    rating = invited()
    with pytest.raises(InvalidRatingError):
        rate(rating, level, **extra)
    assert rating.answer is None and len(rating.collect_events()) == 1


def test_the_window_closes_and_the_default_is_basic_and_marked() -> None:
    rating = invited()
    with pytest.raises(RatingWindowClosedError):
        rate(rating, 5, at=at(CLOSES + timedelta(days=1), 0))
    assert not rating.default(at=at(CLOSES, 23))  # the last day is still open
    assert rating.default(at=at(CLOSES + timedelta(days=1), 0))
    assert rating.answer is not None and (rating.answer.level, rating.answer.is_default) == (
        Level.BASIC,
        True,
    )
    assert not rating.default(at=at(CLOSES + timedelta(days=2)))  # the timer fired twice: once
    with pytest.raises(AlreadyRatedError):
        rate(rating, 5)


def test_a_rated_occasion_takes_no_default_and_the_reminder_goes_once_while_unrated() -> None:
    rating = invited()
    assert rating.remind(at=at(CONCLUDED + timedelta(days=3)))
    assert not rating.remind(at=at(CONCLUDED + timedelta(days=3), 11))
    rate(rating, 4)
    assert not rating.default(at=at(CLOSES + timedelta(days=1)))
    assert rating.answer is not None and not rating.answer.is_default


def test_an_offline_occasion_asks_the_offline_set() -> None:
    rating = invited(RatingChannel.OFFLINE)
    assert rate(rating, 4, indicators={"服务态度": 5, "服务水平": 4})
    with pytest.raises(InvalidRatingError):
        rate(invited(RatingChannel.OFFLINE), 4, indicators={"平台操作性": 4})


def bad_rating() -> tuple[Rating, RectificationTicket]:
    rating = invited()
    rate(rating, 1, comment="窗口让我跑了三趟")
    ticket = RectificationTicket.open(
        ticket_id(rating.id), rating_id=rating.id, unit="SCJGJ", applicant=ZHANG.id, level=1,
        comment="窗口让我跑了三趟", case_id=CASE, item_code="FOOD", due=date(2026, 12, 22),
        at=at(CONCLUDED, 11),
    )  # fmt: skip
    return rating, ticket


def test_a_ticket_is_only_for_a_bad_rating() -> None:
    with pytest.raises(InvalidRatingError):
        RectificationTicket.open(
            uuid.uuid4(), rating_id=uuid.uuid4(), unit="SCJGJ", applicant=ZHANG.id, level=3, comment="",
            case_id=None, item_code="FOOD", due=CLOSES, at=at(CONCLUDED),
        )  # fmt: skip


def test_rectified_after_a_callback_that_reached_the_citizen_then_the_callback_is_judged() -> None:
    _, ticket = bad_rating()
    with pytest.raises(TicketStateError):  # no callback yet
        ticket.resolve(TicketState.RECTIFIED, "已改进", actor=OFFICER, at=at(date(2026, 12, 2)))
    ticket.record_callback(
        actor=OFFICER, at=at(date(2026, 12, 2)), method="phone", reached=False, note="未接通"
    )
    with pytest.raises(TicketStateError):  # tried, but never reached
        ticket.resolve(TicketState.RECTIFIED, "已改进", actor=OFFICER, at=at(date(2026, 12, 2)))
    ticket.record_callback(
        actor=OFFICER, at=at(date(2026, 12, 3)), method="phone", reached=True, note="已致歉"
    )
    with pytest.raises(NotTheApplicantError):  # not resolved yet, and not the applicant anyway
        ticket.rate_callback(True, actor=LI, at=at(date(2026, 12, 3)))
    with pytest.raises(TicketStateError):
        ticket.rate_callback(True, actor=ZHANG, at=at(date(2026, 12, 3)))
    ticket.resolve(
        TicketState.RECTIFIED, "材料清单已更新，一次告知到位", actor=OFFICER, at=at(date(2026, 12, 4))
    )
    assert ticket.is_closed and ticket.state.label == "已整改"
    assert ticket.rate_callback(True, actor=ZHANG, at=at(date(2026, 12, 5)))
    assert not ticket.rate_callback(True, actor=ZHANG, at=at(date(2026, 12, 5)))
    with pytest.raises(TicketStateError):
        ticket.rate_callback(False, actor=ZHANG, at=at(date(2026, 12, 5)))


@pytest.mark.parametrize("actor", [OTHER_UNIT, CLERK, SUPERVISOR, ZHANG])
def test_only_the_owning_unit_handles_its_ticket(actor: Actor) -> None:
    _, ticket = bad_rating()
    assert len(ticket.collect_events()) == 1  # Opened
    with pytest.raises(NotTheOwnerError):
        ticket.record_callback(actor=actor, at=at(date(2026, 12, 2)), method="phone", reached=True, note="")
    with pytest.raises(NotTheOwnerError):
        ticket.appeal("恶意", actor=actor, at=at(date(2026, 12, 2)))
    assert ticket.collect_events() == [] and ticket.callbacks == () and ticket.state is TicketState.OPEN


def test_an_upheld_appeal_excludes_the_rating_and_only_another_role_decides() -> None:
    rating, ticket = bad_rating()
    ticket.appeal("同一号码一日内对全部事项差评，系恶意评价", actor=OFFICER, at=at(date(2026, 12, 2)))
    for not_allowed in (OFFICER, OTHER_UNIT, Actor(id=OFFICER.id, role=Role.SUPERVISOR)):
        with pytest.raises(NotTheOwnerError):
            ticket.decide_appeal(True, "核实", actor=not_allowed, at=at(date(2026, 12, 3)))
    with pytest.raises(InvalidRatingError):
        ticket.decide_appeal(True, " ", actor=SUPERVISOR, at=at(date(2026, 12, 3)))
    ticket.decide_appeal(True, "经核实属恶意差评", actor=SUPERVISOR, at=at(date(2026, 12, 3)))
    rating.exclude("经核实属恶意差评", decided_by=SUPERVISOR.id, at=at(date(2026, 12, 3)))
    assert ticket.state is TicketState.EXCLUDED and ticket.is_closed and rating.excluded
    assert not rating.exclude("again", decided_by=SUPERVISOR.id, at=at(date(2026, 12, 3)))


def test_a_rejected_appeal_is_final_and_the_unit_must_still_answer() -> None:
    _, ticket = bad_rating()
    ticket.appeal("理由", actor=OFFICER, at=at(date(2026, 12, 2)))
    with pytest.raises(TicketStateError):  # no resolving while the appeal is pending
        ticket.resolve(TicketState.EXPLAINED, "无法律依据", actor=OFFICER, at=at(date(2026, 12, 2)))
    ticket.decide_appeal(False, "评价属实", actor=SUPERVISOR, at=at(date(2026, 12, 3)))
    assert ticket.state is TicketState.OPEN
    with pytest.raises(TicketStateError):
        ticket.appeal("再申诉", actor=OFFICER, at=at(date(2026, 12, 4)))
    ticket.record_callback(
        actor=OFFICER, at=at(date(2026, 12, 4)), method="visit", reached=True, note="上门说明"
    )
    ticket.resolve(TicketState.EXPLAINED, "法定材料，无法减免", actor=OFFICER, at=at(date(2026, 12, 4)))
    assert ticket.state.label == "已解释说明"


def test_overdue_is_marked_once_per_due_date_and_never_on_a_closed_ticket() -> None:
    _, ticket = bad_rating()
    assert not ticket.mark_overdue(on=date(2026, 12, 22), at=at(date(2026, 12, 22)))
    assert ticket.mark_overdue(on=date(2026, 12, 23), at=at(date(2026, 12, 23)))
    assert not ticket.mark_overdue(on=date(2026, 12, 24), at=at(date(2026, 12, 24)))
    assert ticket.overdue_for == date(2026, 12, 22)


def test_replaying_a_tickets_and_a_ratings_events_rebuilds_them() -> None:
    rating, ticket = bad_rating()
    ticket.record_callback(
        actor=OFFICER, at=at(date(2026, 12, 2)), method="online", reached=True, note="留言回复"
    )
    ticket.resolve(TicketState.RECTIFIED, "已整改", actor=OFFICER, at=at(date(2026, 12, 2)))
    for aggregate in (rating, ticket):
        copy = None
        for event in aggregate.collect_events():
            copy = event.mutate(copy)
        assert copy is not None
        assert {k: v for k, v in vars(copy).items() if k != "_pending_events"} == {
            k: v for k, v in vars(aggregate).items() if k != "_pending_events"
        }


def test_only_an_auditor_with_a_reason_learns_who_rated_and_each_read_is_recorded() -> None:
    rating = invited()
    rate(rating, 2, comment="等了两个小时")
    rating.collect_events()
    auditor = Actor(id="auditor-1", role=Role.AUDITOR)
    for not_allowed in (OFFICER, SUPERVISOR, CLERK, ZHANG):
        with pytest.raises(NotTheApplicantError):
            rating.disclose_applicant(actor=not_allowed, reason="核查", at=at(CONCLUDED, 12))
    with pytest.raises(InvalidRatingError):
        rating.disclose_applicant(actor=auditor, reason=" ", at=at(CONCLUDED, 12))
    assert rating.collect_events() == []
    assert rating.disclose_applicant(actor=auditor, reason="电子监察抽查", at=at(CONCLUDED, 12)) == ZHANG.id
    assert rating.disclose_applicant(actor=auditor, reason="复核", at=at(CONCLUDED, 13)) == ZHANG.id
    disclosed = [
        (e.by, e.reason) for e in rating.collect_events() if isinstance(e, Rating.ApplicantDisclosed)
    ]
    assert disclosed == [("auditor-1", "电子监察抽查"), ("auditor-1", "复核")]
