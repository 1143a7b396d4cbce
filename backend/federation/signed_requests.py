"""A partner city's signed request, checked as every federation endpoint checks it; refusals recorded.

The inbox (messages) and the material files (handoffs' files) both start here: the
signing headers must be well formed, the claimed region a partner of ours, and the
signature one of that partner's valid keys over this method, path, body and id, made
within the freshness window. What fails is a FederationRefusal, recorded by the caller
with `record_refused` once it has run its own checks too.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from datetime import datetime

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from backend.federation.directory import Partner, PartnerDirectory
from backend.federation.refusals import (
    BY_SIGNATURE_ERROR,
    FederationRefusal,
    PartnerUnknown,
    Refused,
    record_refusal,
)
from backend.federation.signing import (
    MESSAGE_HEADER,
    REGION_HEADER,
    SignatureError,
    SignedBy,
    parse_public_key,
    read_headers,
    verify,
)

log = logging.getLogger(__name__)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def partner_keys(partner: Partner) -> dict[str, Ed25519PublicKey]:
    """The partner's valid keys by id; one that does not parse is left out (and logged)."""
    keys = {}
    for kid, text in partner.keys.items():
        try:
            keys[kid] = parse_public_key(text)
        except ValueError as exc:
            log.error("federation: partner %s key %r is not usable: %s", partner.region, kid, exc)
    return keys


async def authenticate(
    directory: PartnerDirectory,
    method: str,
    path: str,  # as sent, with its query
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: int,  # Unix seconds
    freshness: int,
) -> SignedBy:
    """Who signed the request, a partner of ours; the FederationRefusal of the first check it fails."""
    try:
        region = read_headers(headers).region
        partner = await directory.find(region)
        if partner is None:
            raise PartnerUnknown(f"{region} is not a partner city of this deployment")
        return verify(headers, method, path, body, partner_keys(partner), now, freshness)
    except SignatureError as exc:
        raise BY_SIGNATURE_ERROR[exc.kind](str(exc)) from None


async def record_refused(
    pool: asyncpg.Pool,
    at: datetime,
    headers: Mapping[str, str],
    refusal: FederationRefusal,
    remote: str | None,
) -> None:
    """Record the refusal with what the request claimed: its region and message id, unverified."""
    region = _header(headers, REGION_HEADER)
    claimed_id = _header(headers, MESSAGE_HEADER)
    message_id = uuid.UUID(claimed_id) if claimed_id and _UUID.match(claimed_id) else None
    await record_refusal(pool, Refused(at, region, message_id, refusal.kind, str(refusal), remote))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return headers.get(name) or headers.get(name.lower())
