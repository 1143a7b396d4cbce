"""The wire shapes of the partner registry and of our published keys; camelCase on the wire.

Fields are plain strings on purpose: the domain checks their values and answers with
the registry's own problem types (422 partner-invalid, partner-key-invalid), one place
for the rules. Only the shape is checked here, and unknown fields are refused (400).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, cast

from msgspec import Meta

from domain.catalogue_spec import TongbanMode
from domain.tongban import Acceptance
from miniapp_api.schemas import ApiStruct
from projections.partners import PartnerInfo

Mode = Annotated[
    str, Meta(description="full_online 全程网办, remote_collect 异地代收代办 or multi_city 多地联办")
]
PublicKeyText = Annotated[
    str, Meta(description="base64 of the 32 raw bytes of an Ed25519 public key", examples=["O2onvM62pC1i…="])
]


class AcceptanceIn(ApiStruct, forbid_unknown_fields=True):
    item_code: str  # the partner's 事项编码
    modes: list[Mode]
    name: str | None = None  # the item's name there (个体工商户设立登记): notices name the item by it

    def to_domain(self) -> Acceptance:
        # Unknown modes are the domain's to refuse, with a 422 that names them.
        modes = cast(tuple[TongbanMode, ...], tuple(self.modes))
        return Acceptance(item_code=self.item_code, modes=modes, name=self.name)


class PublicKeyIn(ApiStruct, forbid_unknown_fields=True):
    kid: str
    public_key: PublicKeyText


class PartnerIn(ApiStruct, forbid_unknown_fields=True):
    """A partner city as our administration describes it; its keys only when it is first registered."""

    name: Annotated[str, Meta(examples=["株洲市"])]
    base_url: Annotated[str, Meta(examples=["https://zwfw.zhuzhou.gov.cn"])]
    accepts: list[AcceptanceIn]
    public_keys: list[PublicKeyIn] | None = None

    def domain_accepts(self) -> tuple[Acceptance, ...]:
        return tuple(a.to_domain() for a in self.accepts)

    def domain_keys(self) -> list[tuple[str, str]] | None:
        return None if self.public_keys is None else [(k.kid, k.public_key) for k in self.public_keys]


class AcceptanceOut(ApiStruct):
    item_code: str
    modes: list[str]
    name: str | None


class PublicKeyOut(ApiStruct):
    kid: str
    public_key: str


class PartnerOut(ApiStruct):
    region: str
    name: str
    base_url: str
    accepts: list[AcceptanceOut]
    keys: list[PublicKeyOut]  # the keys valid now, by key id
    version: int
    updated_at: datetime


class PartnerChangeOut(ApiStruct):
    changed: bool  # False: the partner already was as asked, and nothing was recorded
    partner: PartnerOut


def partner_out(info: PartnerInfo) -> PartnerOut:
    return PartnerOut(
        region=info.region,
        name=info.name,
        base_url=info.base_url,
        accepts=[
            AcceptanceOut(item_code=a.item_code, modes=list(a.modes), name=a.name) for a in info.accepts
        ],
        keys=[PublicKeyOut(kid=kid, public_key=key) for kid, key in sorted(info.keys.items())],
        version=info.version,
        updated_at=info.updated_at,
    )


class PublishedKey(ApiStruct):
    """One of our own keys, as a partner's administration pastes it into their registry."""

    kid: str
    public_key: str
    signing: bool  # the one we sign with now; the others are still valid for a rotation


class PublishedKeysOut(ApiStruct):
    region: str  # ours
    keys: list[PublishedKey]
