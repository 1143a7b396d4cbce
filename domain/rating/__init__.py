"""好差评: ratings, rectification tickets (差评工单) and complaints."""

from domain.rating.rating import Answer, Occasion, Rating
from domain.rating.ticket import Callback, RectificationTicket, TicketState
from domain.rating.values import (
    CURRENT_SETS,
    INDICATOR_SETS,
    AlreadyRatedError,
    Channel,
    InvalidRatingError,
    Level,
    NotTheApplicantError,
    NotTheOwnerError,
    RatingError,
    RatingWindowClosedError,
    TicketStateError,
    online_rating_id,
    ticket_id,
    visit_rating_id,
)

__all__ = [
    "CURRENT_SETS",
    "INDICATOR_SETS",
    "AlreadyRatedError",
    "Answer",
    "Callback",
    "Channel",
    "InvalidRatingError",
    "Level",
    "NotTheApplicantError",
    "NotTheOwnerError",
    "Occasion",
    "Rating",
    "RatingError",
    "RatingWindowClosedError",
    "RectificationTicket",
    "TicketState",
    "TicketStateError",
    "online_rating_id",
    "ticket_id",
    "visit_rating_id",
]
