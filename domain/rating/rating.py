"""A rating occasion (一事一评 or 一次一评): invited, then rated by the applicant or defaulted; never edited.

The occasion records everything the boards group by (department, item, hall, window,
clerk) when it is invited, so a rating carries no more than the applicant's answer.
Nobody can change a rating once given: there is no command for it. An appeal upheld on
the 差评工单 marks the rating excluded (it then counts nowhere), which is the only
change a rating can undergo, and it is recorded as one more event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate

from domain.case.checks import beijing_time
from domain.case.values import Actor, Role
from domain.case.values import Channel as ActorChannel
from domain.rating.values import (
    INDICATOR_SETS,
    AlreadyRatedError,
    Channel,
    InvalidRatingError,
    Level,
    NotTheApplicantError,
    RatingWindowClosedError,
)


class Occasion(msgspec.Struct, frozen=True, kw_only=True):
    """What was done, where and by whom: the dimensions of the boards."""

    channel: Channel
    department: str  # the unit that handled the case: it owns a 差评工单
    item_code: str
    case_id: UUID | None = None
    case_number: str | None = None
    hall: str | None = None
    window: str | None = None
    clerk: str | None = None  # the staff account that served; boards only, never shown to the public
    applicant_name: str | None = None  # masked (张*), or an enterprise's public name: for the notices


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    level: Level
    indicators: dict[str, int]  # indicator -> 1..5, of the occasion's set
    comment: str | None
    is_default: bool


class Rating(Aggregate):
    class Invited(Aggregate.Created):
        occasion: Occasion
        applicant: str  # the account that may rate: the case's applicant, the ticket's holder
        indicator_set: str
        closes_on: date  # the last day a rating is taken

    class Reminded(Aggregate.Event):
        def apply(self, rating: Rating) -> None:
            rating.reminded = True

    class Rated(Aggregate.Event):
        answer: Answer
        channel: ActorChannel

        def apply(self, rating: Rating) -> None:
            rating.answer = self.answer

    class Defaulted(Aggregate.Event):
        """The window closed unrated: 基本满意, marked as the system's, kept out of the active rate."""

        answer: Answer

        def apply(self, rating: Rating) -> None:
            rating.answer = self.answer

    class Excluded(Aggregate.Event):
        """An appeal against this 差评 was upheld: it counts in no metric or board."""

        reasons: str
        decided_by: str

        def apply(self, rating: Rating) -> None:
            rating.excluded = True

    class ApplicantDisclosed(Aggregate.Event):
        """An auditor read who rated: recorded, since nobody else may ever learn it."""

        by: str
        reason: str

    @classmethod
    def invite(
        cls,
        rating_id: UUID,
        *,
        occasion: Occasion,
        applicant: str,
        indicator_set: str,
        closes_on: date,
        at: datetime,
    ) -> Rating:
        if indicator_set not in INDICATOR_SETS:
            raise InvalidRatingError(f"no indicator set {indicator_set}")
        if not applicant:
            raise InvalidRatingError("a rating occasion needs the account that may rate it")
        return cls._create(
            cls.Invited,
            id=rating_id,
            occasion=occasion,
            applicant=applicant,
            indicator_set=indicator_set,
            closes_on=closes_on,
            timestamp=beijing_time(at),
        )

    def __init__(self, occasion: Occasion, applicant: str, indicator_set: str, closes_on: date) -> None:
        self.occasion, self.applicant = occasion, applicant
        self.indicator_set, self.closes_on = indicator_set, closes_on
        self.answer: Answer | None = None
        self.reminded = False
        self.excluded = False

    @property
    def is_open(self) -> bool:
        return self.answer is None

    def rate(
        self,
        level: int,
        *,
        actor: Actor,
        channel: ActorChannel,
        at: datetime,
        indicators: Mapping[str, int] | None = None,
        comment: str | None = None,
    ) -> bool:
        """The applicant's rating; False when this very answer was already given (a client's retry)."""
        if actor.role not in (Role.CITIZEN, Role.AGENT) or actor.id != self.applicant:
            raise NotTheApplicantError("only the applicant rates this occasion")
        answer = self._answer(level, indicators or {}, comment)
        if self.answer is not None:
            if self.answer == answer:
                return False
            raise AlreadyRatedError(f"this occasion was rated already ({self.answer.level.label})")
        at = beijing_time(at)
        if at.date() > self.closes_on:
            raise RatingWindowClosedError(f"ratings for this occasion closed on {self.closes_on}")
        self.trigger_event(self.Rated, answer=answer, channel=channel, timestamp=at)
        return True

    def remind(self, *, at: datetime) -> bool:
        """The reminder after 3 days; once, and only while unrated."""
        if not self.is_open or self.reminded:
            return False
        self.trigger_event(self.Reminded, timestamp=beijing_time(at))
        return True

    def default(self, *, at: datetime) -> bool:
        """The window timer: an occasion still unrated after its last day is 基本满意 by default."""
        at = beijing_time(at)
        if not self.is_open or at.date() <= self.closes_on:
            return False
        answer = Answer(level=Level.BASIC, indicators={}, comment=None, is_default=True)
        self.trigger_event(self.Defaulted, answer=answer, timestamp=at)
        return True

    def exclude(self, reasons: str, *, decided_by: str, at: datetime) -> bool:
        if self.excluded:
            return False
        if self.answer is None or not self.answer.level.is_bad:
            raise InvalidRatingError("only a 差评 can be excluded")
        self.trigger_event(self.Excluded, reasons=reasons, decided_by=decided_by, timestamp=beijing_time(at))
        return True

    def disclose_applicant(self, *, actor: Actor, reason: str, at: datetime) -> str:
        """Who rated, for an auditor (电子监察) only, and only with a stated reason; each read is an event."""
        if actor.role is not Role.AUDITOR:
            raise NotTheApplicantError("only an auditor may learn who rated, and the read is recorded")
        if not reason.strip():
            raise InvalidRatingError("an auditor states why they need to know who rated")
        self.trigger_event(
            self.ApplicantDisclosed, by=actor.id, reason=reason.strip(), timestamp=beijing_time(at)
        )
        return self.applicant

    def _answer(self, level: int, indicators: Mapping[str, int], comment: str | None) -> Answer:
        try:
            checked = Level(level)
        except ValueError:
            raise InvalidRatingError(f"a rating is 1 to 5, not {level}") from None
        asked = INDICATOR_SETS[self.indicator_set]
        if unknown := sorted(set(indicators) - set(asked)):
            raise InvalidRatingError(f"not asked on this occasion: {', '.join(unknown)}")
        if any(not 1 <= v <= 5 for v in indicators.values()):
            raise InvalidRatingError("every indicator is rated 1 to 5")
        overall = indicators.get("整体满意度")
        if overall is not None and overall != checked:
            raise InvalidRatingError("整体满意度 is the overall level: they must agree")
        text = (comment or "").strip() or None
        if text is not None and len(text) > 500:
            raise InvalidRatingError("a comment is at most 500 characters")
        if checked.is_bad and text is None:
            # A 差评 opens a ticket; the unit must know what went wrong to put it right.
            raise InvalidRatingError("a rating of 1 or 2 needs a word on what went wrong")
        return Answer(level=checked, indicators=dict(indicators), comment=text, is_default=False)
