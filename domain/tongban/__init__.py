"""跨城通办: the partner cities we hand cases to and take them from, and the keys their messages carry."""

from domain.tongban.errors import (
    InvalidPartnerError,
    InvalidPartnerKeyError,
    LastPartnerKeyError,
    NotPartnerAdministratorError,
    PartnerError,
    PartnerKeyConflictError,
    UnknownPartnerError,
    UnknownPartnerKeyError,
)
from domain.tongban.partner import PARTNER_NAMESPACE, Partner, partner_id
from domain.tongban.terms import Acceptance

__all__ = [
    "PARTNER_NAMESPACE",
    "Acceptance",
    "InvalidPartnerError",
    "InvalidPartnerKeyError",
    "LastPartnerKeyError",
    "NotPartnerAdministratorError",
    "Partner",
    "PartnerError",
    "PartnerKeyConflictError",
    "UnknownPartnerError",
    "UnknownPartnerKeyError",
    "partner_id",
]
