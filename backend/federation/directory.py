"""What the messaging side needs to know of a partner city; projections/partners.py answers it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Partner(Protocol):
    """A partner city as configured: where it listens, and the public keys valid for it now."""

    @property
    def region(self) -> str: ...  # 6-digit 区划代码, e.g. 430200 for 株洲

    @property
    def base_url(self) -> str: ...  # where its /federation/v1/... is served, e.g. https://zwfw.zhuzhou.gov.cn

    @property
    def keys(self) -> Mapping[str, str]: ...  # key id -> base64 of the 32-byte Ed25519 public key


class PartnerDirectory(Protocol):
    async def find(self, region: str) -> Partner | None:
        """The partner of that region, or None when no partner of that region is configured."""
