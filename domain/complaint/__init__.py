"""请你来找茬 / 办不成事: complaints not tied to one case, routed to a department and tracked to closure."""

from domain.complaint.complaint import Complaint
from domain.complaint.values import (
    ComplaintCategory,
    ComplaintError,
    ComplaintState,
    ComplaintStateError,
    InvalidComplaintError,
    LightColour,
    NotAuthorisedError,
    Report,
    Routing,
)

__all__ = [
    "Complaint",
    "ComplaintCategory",
    "ComplaintError",
    "ComplaintState",
    "ComplaintStateError",
    "InvalidComplaintError",
    "LightColour",
    "NotAuthorisedError",
    "Report",
    "Routing",
]
