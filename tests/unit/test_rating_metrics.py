"""好差评 metrics and boards: a hand-computed fixture, the edge cases, and properties over random ratings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.rating.metrics import (
    BoardRow,
    MonthPoint,
    NationalMetrics,
    RatingFact,
    TicketFact,
    board,
    national_metrics,
    public_board,
)

pytestmark = pytest.mark.unit

POLICE, SOCIAL, MARKET = "市公安局", "市人社局", "市市场监管局"
CENTRE, YUELU = "市民之家", "岳麓区政务中心"


def online(level: int, department: str, item: str, day: date, *, default: bool = False) -> RatingFact:
    return RatingFact(
        level=level,
        is_default=default,
        channel="online",
        department=department,
        item_code=item,
        hall=None,
        window=None,
        clerk=None,
        rated_on=day,
    )


def visit(
    level: int,
    department: str,
    item: str,
    hall: str,
    window: str,
    clerk: str,
    day: date,
    *,
    default: bool = False,
    excluded: bool = False,
) -> RatingFact:
    return RatingFact(
        level=level,
        is_default=default,
        channel="offline",
        department=department,
        item_code=item,
        hall=hall,
        window=window,
        clerk=clerk,
        rated_on=day,
        excluded=excluded,
    )


MAY, JUNE = 5, 6
# A 差评 excluded as malicious after appeal.
EXCLUDED = visit(1, MARKET, "SJ-01", YUELU, "1", "clerk-a", date(2026, MAY, 25), excluded=True)
# Numbered in the comments, which the tables below refer to. Three defaults (#3 13 20); both
# halls have a window "1", which the window board must keep apart.
RATINGS = [
    online(5, POLICE, "GA-01", date(2026, MAY, 6)),  # 1
    visit(4, POLICE, "GA-01", CENTRE, "1", "clerk-a", date(2026, MAY, 7)),  # 2
    online(3, POLICE, "GA-02", date(2026, MAY, 12), default=True),  # 3
    visit(2, POLICE, "GA-01", CENTRE, "1", "clerk-a", date(2026, MAY, 13)),  # 4
    visit(5, SOCIAL, "RS-01", CENTRE, "2", "clerk-b", date(2026, MAY, 14)),  # 5
    online(5, SOCIAL, "RS-01", date(2026, MAY, 15)),  # 6
    visit(4, SOCIAL, "RS-02", YUELU, "1", "clerk-b", date(2026, MAY, 20)),  # 7
    online(1, MARKET, "SJ-01", date(2026, MAY, 21)),  # 8
    visit(4, MARKET, "SJ-01", YUELU, "1", "clerk-a", date(2026, MAY, 22)),  # 9
    EXCLUDED,  # 10
    visit(5, POLICE, "GA-01", CENTRE, "1", "clerk-a", date(2026, JUNE, 2)),  # 11
    online(2, POLICE, "GA-02", date(2026, JUNE, 3)),  # 12
    visit(3, SOCIAL, "RS-01", CENTRE, "2", "clerk-b", date(2026, JUNE, 4), default=True),  # 13
    visit(2, SOCIAL, "RS-01", CENTRE, "2", "clerk-b", date(2026, JUNE, 5)),  # 14
    online(4, SOCIAL, "RS-02", date(2026, JUNE, 9)),  # 15
    visit(5, MARKET, "SJ-01", YUELU, "1", "clerk-b", date(2026, JUNE, 10)),  # 16
    visit(3, MARKET, "SJ-02", YUELU, "1", "clerk-a", date(2026, JUNE, 11)),  # 17
    visit(1, POLICE, "GA-01", CENTRE, "1", "clerk-a", date(2026, JUNE, 16)),  # 18
    online(4, MARKET, "SJ-02", date(2026, JUNE, 17)),  # 19
    online(3, SOCIAL, "RS-02", date(2026, JUNE, 23), default=True),  # 20
]


def ticket(
    department: str, outcome: str | None, callback: bool, satisfied: bool | None, day: date, overdue: bool
) -> TicketFact:
    return TicketFact(
        department=department,
        outcome=outcome,
        callback_done=callback,
        callback_satisfied=satisfied,
        opened_on=day,
        overdue=overdue,
    )


# One per 差评 above, named by its rating's number.
EXCLUDED_TICKET = ticket(MARKET, "excluded", True, False, date(2026, MAY, 25), True)  # rating 10
TICKETS = [
    ticket(POLICE, "rectified", True, True, date(2026, MAY, 13), False),  # rating 4
    ticket(MARKET, "explained", True, False, date(2026, MAY, 21), True),  # rating 8, closed late
    EXCLUDED_TICKET,
    ticket(POLICE, "rectified", True, None, date(2026, JUNE, 3), False),  # rating 12, callback unrated
    ticket(SOCIAL, None, False, None, date(2026, JUNE, 5), False),  # rating 14, open, no callback yet
    ticket(POLICE, None, True, True, date(2026, JUNE, 16), True),  # rating 18, open past its deadline
]


def test_national_metrics_match_the_hand_computed_table() -> None:
    # Counted ratings: 20 less the excluded rating 10 = 19.
    # Levels among them: 5 → #1 5 6 11 16 = 5; 4 → #2 7 9 15 19 = 5; 3 → #3 13 17 20 = 4;
    # 2 → #4 12 14 = 3; 1 → #8 18 = 2.  5 + 5 + 4 + 3 + 2 = 19.
    # Counted tickets: 6 less the excluded one (rating 10's) = 5.
    expected = NationalMetrics(
        ratings=19,
        active_ratings=16,  # 19 less the defaults #3 13 20
        satisfied_ratings=14,  # levels 3–5: 5 + 5 + 4
        bad_ratings=5,  # levels 1–2: 3 + 2
        active_rating_rate=pytest.approx(16 / 19),
        satisfaction_rate=pytest.approx(14 / 19),
        tickets=5,
        tickets_resolved=3,  # rectified #4 #12, explained #8; #14 and #18 still open
        rectification_rate=pytest.approx(3 / 5),
        callbacks=4,  # all but #14
        callback_rate=pytest.approx(4 / 5),
        callbacks_rated=3,  # #4 yes, #8 no, #18 yes; #12's citizen gave no answer
        callbacks_satisfied=2,  # #4 and #18
        callback_satisfaction=pytest.approx(2 / 3),
        overdue_tickets=2,  # #8 closed late, #18 open past its deadline; excluded #10's does not count
    )
    assert national_metrics(RATINGS, TICKETS) == expected


def test_the_department_board_matches_the_hand_computed_table() -> None:
    expected = [
        # 人社: #5 5, #6 5, #7 4, #13 3 (default), #14 2, #15 4, #20 3 (default).
        # 满意率 6/7 ≈ 0.857; 主动 7 − 2 defaults = 5/7.
        BoardRow(
            key=SOCIAL,
            levels=(0, 1, 2, 2, 2),
            total=7,
            defaults=2,
            satisfaction_rate=pytest.approx(6 / 7),
            active_rating_rate=pytest.approx(5 / 7),
            trend=(
                MonthPoint(month="2026-05", total=3, satisfaction_rate=pytest.approx(3 / 3)),  # #5 6 7
                MonthPoint(month="2026-06", total=4, satisfaction_rate=pytest.approx(3 / 4)),  # #13 14 15 20
            ),
        ),
        # 市场监管: #8 1, #9 4, #16 5, #17 3, #19 4; #10 is excluded. 满意率 4/5 = 0.8; no defaults.
        BoardRow(
            key=MARKET,
            levels=(1, 0, 1, 2, 1),
            total=5,
            defaults=0,
            satisfaction_rate=pytest.approx(4 / 5),
            active_rating_rate=pytest.approx(5 / 5),
            trend=(
                MonthPoint(month="2026-05", total=2, satisfaction_rate=pytest.approx(1 / 2)),  # #8 9
                MonthPoint(month="2026-06", total=3, satisfaction_rate=pytest.approx(3 / 3)),  # #16 17 19
            ),
        ),
        # 公安: #1 5, #2 4, #3 3 (default), #4 2, #11 5, #12 2, #18 1. 满意率 4/7 ≈ 0.571; 主动 6/7.
        BoardRow(
            key=POLICE,
            levels=(1, 2, 1, 1, 2),
            total=7,
            defaults=1,
            satisfaction_rate=pytest.approx(4 / 7),
            active_rating_rate=pytest.approx(6 / 7),
            trend=(
                MonthPoint(month="2026-05", total=4, satisfaction_rate=pytest.approx(3 / 4)),  # #1 2 3 4
                MonthPoint(month="2026-06", total=3, satisfaction_rate=pytest.approx(1 / 3)),  # #11 12 18
            ),
        ),
    ]
    assert board(RATINGS, "department") == expected


def test_the_clerk_board_matches_the_hand_computed_table() -> None:
    expected = [
        # clerk-b: #5 5, #7 4, #13 3 (default), #14 2, #16 5. 满意率 4/5; 主动 4/5.
        BoardRow(
            key="clerk-b",
            levels=(0, 1, 1, 1, 2),
            total=5,
            defaults=1,
            satisfaction_rate=pytest.approx(4 / 5),
            active_rating_rate=pytest.approx(4 / 5),
            trend=(
                MonthPoint(month="2026-05", total=2, satisfaction_rate=pytest.approx(2 / 2)),  # #5 7
                MonthPoint(month="2026-06", total=3, satisfaction_rate=pytest.approx(2 / 3)),  # #13 14 16
            ),
        ),
        # clerk-a: #2 4, #4 2, #9 4, #11 5, #17 3, #18 1; #10 is excluded. 满意率 4/6; 主动 6/6.
        BoardRow(
            key="clerk-a",
            levels=(1, 1, 1, 2, 1),
            total=6,
            defaults=0,
            satisfaction_rate=pytest.approx(4 / 6),
            active_rating_rate=pytest.approx(6 / 6),
            trend=(
                MonthPoint(month="2026-05", total=3, satisfaction_rate=pytest.approx(2 / 3)),  # #2 4 9
                MonthPoint(month="2026-06", total=3, satisfaction_rate=pytest.approx(2 / 3)),  # #11 17 18
            ),
        ),
    ]
    assert board(RATINGS, "clerk") == expected


def test_windows_are_named_with_their_hall_and_online_ratings_stay_off_the_board() -> None:
    totals = {row.key: row.total for row in board(RATINGS, "window")}
    # 市民之家/1: #2 4 11 18; 市民之家/2: #5 13 14; 岳麓/1: #7 9 16 17 (#10 excluded).
    assert totals == {f"{CENTRE}/1": 4, f"{CENTRE}/2": 3, f"{YUELU}/1": 4}


def _rated(level: int, key: str, *, default: bool = False) -> RatingFact:
    return online(level, key, "X-01", date(2026, MAY, 1), default=default)


def test_rows_order_by_satisfaction_then_total_then_key() -> None:
    ratings = [
        *(_rated(5, "b") for _ in range(2)),  # 2/2, total 2
        _rated(5, "c"),  # 1/1, total 1
        _rated(5, "a"),  # 1/1, total 1: ties with c, so the key decides
        _rated(1, "d"),  # 0/1
        _rated(4, "e"),
        _rated(2, "e"),  # 1/2
    ]
    assert [row.key for row in board(ratings, "department")] == ["b", "a", "c", "e", "d"]


def test_empty_inputs_give_no_rates_and_zero_counts() -> None:
    assert national_metrics([], []) == NationalMetrics(
        ratings=0,
        active_ratings=0,
        satisfied_ratings=0,
        bad_ratings=0,
        active_rating_rate=None,
        satisfaction_rate=None,
        tickets=0,
        tickets_resolved=0,
        rectification_rate=None,
        callbacks=0,
        callback_rate=None,
        callbacks_rated=0,
        callbacks_satisfied=0,
        callback_satisfaction=None,
        overdue_tickets=0,
    )
    assert board([], "department") == []


def test_only_excluded_ratings_and_tickets_are_as_good_as_none() -> None:
    assert national_metrics([EXCLUDED], [EXCLUDED_TICKET]) == national_metrics([], [])
    assert board([EXCLUDED], "clerk") == []


def test_all_default_ratings_have_no_active_rating() -> None:
    defaults = [_rated(3, POLICE, default=True) for _ in range(4)]
    metrics = national_metrics(defaults, [])
    assert (metrics.active_rating_rate, metrics.satisfaction_rate) == (0.0, 1.0)
    [row] = board(defaults, "department")
    assert (row.defaults, row.active_rating_rate) == (4, 0.0)


@pytest.mark.parametrize("by", ["department", "item", "hall", "window", "clerk"])
def test_an_excluded_rating_changes_nothing_but_its_own_removal(by: str) -> None:
    without = [r for r in RATINGS if r is not EXCLUDED]
    assert board(RATINGS, by) == board(without, by)
    assert national_metrics(RATINGS, TICKETS) == national_metrics(
        without, [t for t in TICKETS if t is not EXCLUDED_TICKET]
    )


def test_an_unknown_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="board is by one of"):
        board(RATINGS, "citizen")


@pytest.mark.parametrize("by", ["window", "clerk", "citizen"])
def test_the_public_board_refuses_anything_that_points_at_staff(by: str) -> None:
    with pytest.raises(ValueError, match="public board"):
        public_board(RATINGS, by)


@pytest.mark.parametrize("by", ["department", "item", "hall"])
def test_the_public_board_shows_departments_items_and_halls(by: str) -> None:
    assert public_board(RATINGS, by) == board(RATINGS, by)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"level": 0}, "1 to 5"),
        ({"level": 6}, "1 to 5"),
        ({"level": 4, "is_default": True}, "default rating"),
        ({"level": 3, "excluded": True}, "only a 差评"),
        ({"channel": "kiosk"}, "channel"),
    ],
)
def test_incoherent_ratings_are_refused(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "level": 2,
        "is_default": False,
        "channel": "online",
        "department": POLICE,
        "item_code": "GA-01",
        "hall": None,
        "window": None,
        "clerk": None,
        "rated_on": date(2026, MAY, 1),
    }
    with pytest.raises(ValueError, match=message):
        RatingFact(**{**fields, **change})  # type: ignore[arg-type]


def test_incoherent_tickets_are_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        ticket(POLICE, "appealed", False, None, date(2026, MAY, 1), False)
    with pytest.raises(ValueError, match="callback"):
        ticket(POLICE, None, False, True, date(2026, MAY, 1), False)


# Random facts that respect the invariants RatingFact and TicketFact enforce.
@st.composite
def rating_facts(draw: st.DrawFn) -> RatingFact:
    is_default = draw(st.booleans())
    level = 3 if is_default else draw(st.integers(1, 5))
    return RatingFact(
        level=level,
        is_default=is_default,
        channel=draw(st.sampled_from(["online", "offline"])),
        department=draw(st.sampled_from([POLICE, SOCIAL, MARKET])),
        item_code=draw(st.sampled_from(["GA-01", "RS-01", "SJ-01"])),
        hall=draw(st.none() | st.sampled_from([CENTRE, YUELU])),
        window=draw(st.none() | st.sampled_from(["1", "2"])),
        clerk=draw(st.none() | st.sampled_from(["clerk-a", "clerk-b"])),
        rated_on=draw(st.dates(date(2025, 11, 1), date(2026, 3, 31))),
        excluded=level <= 2 and draw(st.booleans()),
    )


@st.composite
def ticket_facts(draw: st.DrawFn) -> TicketFact:
    callback = draw(st.booleans())
    return ticket(
        draw(st.sampled_from([POLICE, SOCIAL, MARKET])),
        draw(st.sampled_from([None, "rectified", "explained", "excluded"])),
        callback,
        draw(st.none() | st.booleans()) if callback else None,
        date(2026, 1, 5),
        draw(st.booleans()),
    )


HAS: dict[str, Callable[[RatingFact], bool]] = {
    "department": lambda r: True,
    "item": lambda r: True,
    "hall": lambda r: r.hall is not None,
    "window": lambda r: r.hall is not None and r.window is not None,  # a window is known by its hall
    "clerk": lambda r: r.clerk is not None,
}


@given(st.lists(rating_facts(), max_size=40), st.lists(ticket_facts(), max_size=12))
def test_every_rate_lies_between_0_and_1(ratings: list[RatingFact], tickets: list[TicketFact]) -> None:
    m = national_metrics(ratings, tickets)
    rates = [
        m.active_rating_rate,
        m.satisfaction_rate,
        m.rectification_rate,
        m.callback_rate,
        m.callback_satisfaction,
    ]
    for by in HAS:
        for row in board(ratings, by):
            rates += [row.satisfaction_rate, row.active_rating_rate]
            rates += [point.satisfaction_rate for point in row.trend]
    assert all(0 <= rate <= 1 for rate in rates if rate is not None)


@given(st.lists(rating_facts(), max_size=40))
def test_board_totals_add_up_to_the_counted_ratings_having_the_dimension(ratings: list[RatingFact]) -> None:
    for by, has in HAS.items():
        rows = board(ratings, by)
        assert sum(row.total for row in rows) == sum(has(r) and not r.excluded for r in ratings)
        assert all(sum(row.levels) == row.total == sum(p.total for p in row.trend) for row in rows)


@given(st.lists(rating_facts(), max_size=40))
def test_national_satisfaction_is_the_weighted_mean_of_the_departments(ratings: list[RatingFact]) -> None:
    rows = board(ratings, "department")
    total = sum(row.total for row in rows)
    weighted = sum(row.total * row.satisfaction_rate for row in rows) / total if total else None
    assert national_metrics(ratings, []).satisfaction_rate == pytest.approx(weighted)
