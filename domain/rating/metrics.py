"""The national 好差评 metrics and the rating boards, computed from plain facts with no clock and no I/O.

Every rate is a float in [0, 1], or None when nothing was there to divide by; each
comes with the two counts it was made from, so a board can show "14 of 19", not only 74%.

A rating excluded as malicious after appeal counts nowhere: not in a numerator, not in
a denominator, not on any board. Its 差评工单 (outcome "excluded") likewise counts
nowhere, overdue or not, so an abusive rating cannot drag a department's numbers down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

import msgspec

LEVELS = range(1, 6)  # 1 非常不满意, 2 不满意, 3 基本满意, 4 满意, 5 非常满意
DEFAULT_LEVEL = 3  # an occasion left unrated when its window closed is recorded as 基本满意
CHANNELS = frozenset({"online", "offline"})  # 一事一评 of a case, 一次一评 of a hall visit
OUTCOMES = frozenset({"rectified", "explained", "excluded"})
RESOLVED = frozenset({"rectified", "explained"})


class RatingFact(msgspec.Struct, frozen=True, kw_only=True):
    """One rating as the metrics see it: who was rated, how, and when; never who rated."""

    level: int
    is_default: bool
    channel: str
    department: str
    item_code: str
    hall: str | None
    window: str | None  # a window code is only unique within its hall
    clerk: str | None
    rated_on: date
    excluded: bool = False

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"a rating level is 1 to 5, not {self.level}")
        if self.is_default and self.level != DEFAULT_LEVEL:
            raise ValueError(f"a default rating is always level {DEFAULT_LEVEL}, not {self.level}")
        if self.excluded and self.level > 2:
            raise ValueError("only a 差评 (level 1 or 2) can be excluded as malicious")
        if self.channel not in CHANNELS:
            raise ValueError(f"channel must be 'online' or 'offline', not {self.channel!r}")


class TicketFact(msgspec.Struct, frozen=True, kw_only=True):
    """One 差评工单: how it ended (None while open), its 回访, and whether it ran past its deadline."""

    department: str
    outcome: str | None
    callback_done: bool
    callback_satisfied: bool | None
    opened_on: date
    overdue: bool

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(OUTCOMES)} or None, not {self.outcome!r}")
        if self.callback_satisfied is not None and not self.callback_done:
            raise ValueError("a callback cannot be rated before it took place")


class NationalMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """The five national indicators and the counts behind them."""

    ratings: int  # not excluded, defaults included
    active_ratings: int
    satisfied_ratings: int  # levels 3 to 5
    bad_ratings: int  # 差评: levels 1 and 2
    active_rating_rate: float | None  # 主动评价率
    satisfaction_rate: float | None  # 满意率
    tickets: int  # not excluded, open or closed
    tickets_resolved: int  # closed as rectified or explained
    rectification_rate: float | None  # 差评整改率
    callbacks: int
    callback_rate: float | None  # 回访率
    callbacks_rated: int
    callbacks_satisfied: int
    callback_satisfaction: float | None  # 回访满意度
    overdue_tickets: int  # still open past the deadline, or closed after it


class MonthPoint(msgspec.Struct, frozen=True, kw_only=True):
    month: str  # YYYY-MM
    total: int
    satisfaction_rate: float


class BoardRow(msgspec.Struct, frozen=True, kw_only=True):
    """One department, item, hall, window or clerk; a row exists only if it has a counted rating."""

    key: str
    levels: tuple[int, int, int, int, int]  # index 0 is level 1
    total: int
    defaults: int
    satisfaction_rate: float
    active_rating_rate: float
    trend: tuple[MonthPoint, ...]  # months ascending


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def national_metrics(ratings: Iterable[RatingFact], tickets: Iterable[TicketFact]) -> NationalMetrics:
    """The national indicators, each defined over non-excluded ratings and non-excluded tickets only.

    - 主动评价率 = ratings that are not defaults ÷ all ratings.
    - 满意率 = ratings of level 3, 4 or 5 (defaults are level 3, so they count) ÷ all ratings.
    - 差评整改率 = tickets whose outcome is rectified or explained ÷ all tickets, open ones included.
    - 回访率 = tickets with a callback recorded ÷ all tickets.
    - 回访满意度 = callbacks the citizen rated satisfied ÷ callbacks the citizen rated at all;
      a callback the citizen left unrated is in neither.
    - 差评 = ratings of level 1 or 2; overdue = tickets marked overdue, whether open or closed.
    """
    counted = [r for r in ratings if not r.excluded]
    active = sum(not r.is_default for r in counted)
    satisfied = sum(r.level >= 3 for r in counted)
    kept = [t for t in tickets if t.outcome != "excluded"]
    resolved = sum(t.outcome in RESOLVED for t in kept)
    callbacks = sum(t.callback_done for t in kept)
    rated = [t for t in kept if t.callback_done and t.callback_satisfied is not None]
    pleased = sum(t.callback_satisfied is True for t in rated)
    return NationalMetrics(
        ratings=len(counted),
        active_ratings=active,
        satisfied_ratings=satisfied,
        bad_ratings=sum(r.level <= 2 for r in counted),
        active_rating_rate=_rate(active, len(counted)),
        satisfaction_rate=_rate(satisfied, len(counted)),
        tickets=len(kept),
        tickets_resolved=resolved,
        rectification_rate=_rate(resolved, len(kept)),
        callbacks=callbacks,
        callback_rate=_rate(callbacks, len(kept)),
        callbacks_rated=len(rated),
        callbacks_satisfied=pleased,
        callback_satisfaction=_rate(pleased, len(rated)),
        overdue_tickets=sum(t.overdue for t in kept),
    )


def _window(r: RatingFact) -> str | None:
    # Window codes repeat from hall to hall ("1", "2" …), so a window is named with its hall.
    return f"{r.hall}/{r.window}" if r.hall is not None and r.window is not None else None


_DIMENSIONS: dict[str, Callable[[RatingFact], str | None]] = {
    "department": lambda r: r.department,
    "item": lambda r: r.item_code,
    "hall": lambda r: r.hall,
    "window": _window,
    "clerk": lambda r: r.clerk,
}
# Windows and clerks point at members of staff, so only these may leave the building.
PUBLIC_DIMENSIONS = frozenset({"department", "item", "hall"})


def _row(key: str, group: list[RatingFact]) -> BoardRow:
    levels = [0] * 5
    for r in group:
        levels[r.level - 1] += 1
    months: dict[str, list[RatingFact]] = {}
    for r in group:
        months.setdefault(r.rated_on.strftime("%Y-%m"), []).append(r)
    trend = tuple(
        MonthPoint(month=m, total=len(rs), satisfaction_rate=sum(r.level >= 3 for r in rs) / len(rs))
        for m, rs in sorted(months.items())
    )
    total = len(group)
    defaults = sum(r.is_default for r in group)
    return BoardRow(
        key=key,
        levels=(levels[0], levels[1], levels[2], levels[3], levels[4]),
        total=total,
        defaults=defaults,
        satisfaction_rate=sum(levels[2:]) / total,
        active_rating_rate=(total - defaults) / total,
        trend=trend,
    )


def board(ratings: Iterable[RatingFact], by: str) -> list[BoardRow]:
    """An internal board per department, item, hall, window (keyed "hall/window") or clerk.

    Rows use the definitions of `national_metrics`; a rating without the dimension (an
    online rating has no hall) is left off that board. Best 满意率 first, then the
    busiest, then by key, so the order is stable.
    """
    key_of = _DIMENSIONS.get(by)
    if key_of is None:
        raise ValueError(f"a board is by one of {sorted(_DIMENSIONS)}, not {by!r}")
    groups: dict[str, list[RatingFact]] = {}
    for r in ratings:
        key = key_of(r)
        if not r.excluded and key is not None:
            groups.setdefault(key, []).append(r)
    rows = [_row(key, group) for key, group in groups.items()]
    rows.sort(key=lambda row: (-row.satisfaction_rate, -row.total, row.key))
    return rows


def public_board(ratings: Iterable[RatingFact], by: str) -> list[BoardRow]:
    """The board the public may see: by department, item or hall only, never by window or clerk."""
    if by not in PUBLIC_DIMENSIONS:
        raise ValueError(f"the public board is by one of {sorted(PUBLIC_DIMENSIONS)}, not {by!r}")
    return board(ratings, by)
