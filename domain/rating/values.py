"""The vocabulary of 好差评: levels, occasions, indicator sets, and why a rating command was refused."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from types import MappingProxyType
from uuid import UUID, uuid5

# Fixed forever: every rating's and every 差评工单's id derives from it.
RATING_NAMESPACE = UUID("6b1e0f3a-7c2d-5a48-9e61-430100000006")


class Level(IntEnum):
    VERY_DISSATISFIED = 1  # 非常不满意
    DISSATISFIED = 2  # 不满意
    BASIC = 3  # 基本满意
    SATISFIED = 4  # 满意
    VERY_SATISFIED = 5  # 非常满意

    @property
    def label(self) -> str:
        return _LEVELS[self]

    @property
    def is_bad(self) -> bool:
        """差评: a rating of 1 or 2 opens a rectification ticket."""
        return self <= Level.DISSATISFIED


_LEVELS = {
    Level.VERY_DISSATISFIED: "非常不满意",
    Level.DISSATISFIED: "不满意",
    Level.BASIC: "基本满意",
    Level.SATISFIED: "满意",
    Level.VERY_SATISFIED: "非常满意",
}


class Channel(StrEnum):
    ONLINE = "online"  # 一事一评: one rating per case, after it concludes
    OFFLINE = "offline"  # 一次一评: one rating per hall visit, after it is served


# What each version of each channel's questionnaire asks, besides the overall level.
# A rating names the set it answered, so an old rating keeps its meaning when a set changes.
INDICATOR_SETS = MappingProxyType(
    {
        "online-v1": ("整体满意度", "办事效率", "办事指南精确度", "办事便捷度", "平台操作性"),
        "offline-v1": ("整体满意度", "服务效率", "服务水平", "服务态度"),
    }
)
CURRENT_SETS = MappingProxyType({Channel.ONLINE: "online-v1", Channel.OFFLINE: "offline-v1"})


def online_rating_id(case_id: UUID) -> UUID:
    """一事一评: one occasion per case."""
    return uuid5(RATING_NAMESPACE, f"rating:online:{case_id}")


def visit_rating_id(hall: str, day: str, ticket: str) -> UUID:
    """一次一评: one occasion per served ticket, which names the hall, the day and the visit."""
    return uuid5(RATING_NAMESPACE, f"rating:offline:{hall}:{day}:{ticket}")


def ticket_id(rating_id: UUID) -> UUID:
    """One 差评工单 per rating."""
    return uuid5(RATING_NAMESPACE, f"rectification:{rating_id}")


class RatingError(Exception):
    """Base of every refusal in 好差评; a refused command records nothing."""


class NotTheApplicantError(RatingError):
    """Only the applicant rates their own occasion; staff can neither rate nor change a rating."""


class AlreadyRatedError(RatingError):
    """The occasion has its rating (given, or the default after the window closed)."""


class RatingWindowClosedError(RatingError):
    """The window to rate this occasion has closed."""


class InvalidRatingError(RatingError):
    """A level, an indicator or a comment is not acceptable."""


class TicketStateError(RatingError):
    """The rectification ticket is not in a state for this command."""


class NotTheOwnerError(RatingError):
    """Only officers of the unit that owns the ticket handle it; an appeal is decided by another role."""
