"""Partner cities' items, filed here for them (异地代收代办 at a window, 全程网办 online).

An item missing from our catalogue may still be one a registered partner city takes
from us (the registry's `accepts`). Such a case is filed under "partner:<region>"
instead of a catalogue version, with no bundle children; once accepted at a window it
is handed off to the partner, which decides it (backend/cases/handoffs.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from backend.cases.access import CaseServiceError, UnknownServiceItemError
from backend.cases.terms import Catalogue, item_terms
from domain.case import BundleChild, Role
from projections.partners import PartnerInfo

PARTNER_FILING = "partner:"  # + the partner's region: the catalogue version of a partner's item

# 异地代收代办 and 多地联办 (both accepted at our window first) wherever the application arrives;
# 全程网办 only online, where the partner serves the applicant.
_FILING_MODES: dict[Role, tuple[str, ...]] = {
    Role.CLERK: ("remote_collect", "multi_city"),
    Role.CITIZEN: ("remote_collect", "multi_city", "full_online"),
    Role.AGENT: ("remote_collect", "multi_city", "full_online"),
}


class PartnerRegistry(Protocol):
    """projections.partners.PartnerQueries is the real one."""

    async def find(self, region: str) -> PartnerInfo | None: ...

    async def accepting(self, item_code: str) -> Sequence[PartnerInfo]: ...


class HandoffNotAcceptedError(CaseServiceError):
    """The partner city is not registered, or does not take the case's item in that mode."""


@dataclass(frozen=True, slots=True)
class Filing:
    """What a new case is filed under."""

    version: str  # the catalogue version, or PARTNER_FILING + region
    children: tuple[BundleChild, ...] = ()
    online_partner: str | None = None  # 全程网办: handed to this partner city as soon as it is submitted


def takes(partner: PartnerInfo | None, item_code: str, modes: Sequence[str]) -> bool:
    """Whether the partner takes the item from us in one of `modes`."""
    if partner is None:
        return False
    return any(a.item_code == item_code and set(a.modes) & set(modes) for a in partner.accepts)


async def filing_terms(
    catalogue: Catalogue, partners: PartnerRegistry | None, item_code: str, role: Role
) -> Filing:
    """What a new case of `item_code` is filed under.

    Our own catalogue first; then a partner city taking the item in a mode open to the
    caller: one serving it 全程网办 for an online applicant (the case goes straight to it),
    else the first by region (the case waits for our window); else the catalogue's
    UnknownServiceItemError.
    """
    try:
        terms = await item_terms(catalogue, item_code)
    except UnknownServiceItemError:
        modes = _FILING_MODES.get(role, ())
        candidates = await partners.accepting(item_code) if partners is not None and modes else ()
        found = [p for p in candidates if takes(p, item_code, modes)]
        if not found:
            raise
        online = next(
            (p for p in found if "full_online" in modes and takes(p, item_code, ("full_online",))), None
        )
        if online is not None:
            return Filing(f"{PARTNER_FILING}{online.region}", online_partner=online.region)
        return Filing(f"{PARTNER_FILING}{found[0].region}")
    return Filing(str(terms.version), terms.children)


def check_taken(partner: PartnerInfo | None, region: str, item_code: str, mode: str) -> None:
    """Refuse a hand-off the partner city would not take."""
    if partner is None:
        raise HandoffNotAcceptedError(f"no partner city {region} is registered")
    if not takes(partner, item_code, (mode,)):
        raise HandoffNotAcceptedError(f"{partner.name} ({region}) does not take item {item_code} as {mode}")
