"""收件地 of 跨城通办 without a database: what a handoff carries, its id, which partner takes what."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import pytest

from backend.cases.access import UnknownServiceItemError
from backend.cases.handoffs import handoff_id
from backend.cases.partner_items import Filing, HandoffNotAcceptedError, check_taken, filing_terms, takes
from backend.federation.handoff_request import encoded, handoff_requested
from backend.federation.kinds import HandoffRequested, Material, Party, PayloadError, decode_payload
from domain.case import Case, ELicenceRef, Role, UploadedFile
from domain.tongban import Acceptance
from projections.catalogue import BundleGuide, ServiceGuide
from projections.partners import PartnerInfo
from tests.unit.case_builders import (
    CLERK,
    ENTERPRISE,
    ENTERPRISE_AGENT,
    ITEM,
    PASSWORD_HASH,
    STEP,
    WINDOW,
    sha,
    submit,
)

HANDOFF = UUID(int=42)
PARTNER_ITEM = "11430200006182474N010100300000"
ONLINE_ONLY = "11430200006182474N010100400000"


def partner(region: str, *accepts: Acceptance) -> PartnerInfo:
    return PartnerInfo(
        region=region, name=f"city {region}", base_url="https://partner.example", keys={},
        accepts=accepts, version=1, updated_at=datetime(2026, 5, 6),
    )  # fmt: skip


ZHUZHOU = partner(
    "430200",
    Acceptance(item_code=PARTNER_ITEM, modes=("remote_collect", "full_online")),
    Acceptance(item_code=ONLINE_ONLY, modes=("full_online",)),
)
XIANGTAN = partner("430300", Acceptance(item_code=PARTNER_ITEM, modes=("remote_collect",)))


def handed_off(**overrides: object) -> Case:
    case = submit(**overrides)
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-0001", query_password_hash=PASSWORD_HASH)
    case.hand_off(CLERK, WINDOW, STEP, partner="430200", mode="remote_collect", handoff=HANDOFF)
    return case


def test_a_handoff_carries_the_case_and_the_applicant_in_the_clear() -> None:
    case = handed_off()
    request = decode_payload("handoff.requested", encoded(handoff_requested(case)))  # as the partner reads it
    assert isinstance(request, HandoffRequested)
    assert case.acceptance is not None
    assert (request.mode, request.item_code, request.origin_case_id, request.origin_number) == (
        "remote_collect", case.item_code, case.id, case.number,
    )  # fmt: skip
    assert request.accepted_at == case.acceptance.accepted_at
    assert request.applicant == Party(
        kind="person", name="张三", id_type="resident_id", id_number="430102199003071234",
        phone="13812341234", address="长沙市岳麓区麓山南路1号",
    )  # fmt: skip
    assert request.agent is None and request.form == case.form
    assert request.materials == [
        Material(material_id="id-card", sha256=sha(1)),
        Material(material_id="lease", sha256=sha(2)),
    ]


def test_an_enterprise_goes_with_its_agent() -> None:
    request = handoff_requested(handed_off(applicant=ENTERPRISE, agent=ENTERPRISE_AGENT))
    assert (request.applicant.kind, request.applicant.name, request.applicant.id_type) == (
        "enterprise", "长沙星城科技有限公司", "uscc",
    )  # fmt: skip
    assert request.applicant.id_number == "91430100MA4L00000F"
    assert request.agent == Party(
        kind="person", name="王五", id_type="resident_id", id_number="430103198502021110", phone="13900001111"
    )


@pytest.mark.parametrize(
    ("case", "fault"),
    [
        (lambda: submit(), "not accepted and handed off"),
        (lambda: handed_off(materials={"licence": ELicenceRef("D430100-1")}), "e-licence"),
        (lambda: handed_off(materials={"营业执照": UploadedFile(sha(1))}), "materialId"),  # not a code
    ],
)
def test_what_a_handoff_cannot_carry_is_refused_before_it_is_sent(case: object, fault: str) -> None:
    with pytest.raises(PayloadError, match=fault):
        encoded(handoff_requested(case()))  # type: ignore[operator]


def test_a_handoff_id_is_one_per_case_version_and_region() -> None:
    case = UUID(int=1)
    assert handoff_id("430100", case, 3) == handoff_id("430100", case, 3)
    ids = {handoff_id("430100", case, 3), handoff_id("430100", case, 5), handoff_id("430100", UUID(int=2), 3)}
    assert len(ids | {handoff_id("430200", case, 3)}) == 4


@pytest.mark.parametrize(
    ("found", "region", "item", "mode", "error"),
    [
        (ZHUZHOU, "430200", PARTNER_ITEM, "remote_collect", None),
        (ZHUZHOU, "430200", ONLINE_ONLY, "full_online", None),
        (ZHUZHOU, "430200", ONLINE_ONLY, "remote_collect", "does not take"),
        (ZHUZHOU, "430200", PARTNER_ITEM, "multi_city", "does not take"),
        (XIANGTAN, "430300", ONLINE_ONLY, "full_online", "does not take"),
        (None, "430900", PARTNER_ITEM, "remote_collect", "no partner city 430900"),
    ],
)
def test_a_partner_takes_only_its_items_in_its_modes(
    found: PartnerInfo | None, region: str, item: str, mode: str, error: str | None
) -> None:
    assert takes(found, item, (mode,)) is (error is None)
    if error is None:
        check_taken(found, region, item, mode)
    else:
        with pytest.raises(HandoffNotAcceptedError, match=error):
            check_taken(found, region, item, mode)


class NoCatalogue:
    """A catalogue that lists nothing: every item is a partner's, or unknown."""

    async def service(self, code: str) -> ServiceGuide | None:
        return None

    async def bundle(self, code: str) -> BundleGuide | None:
        return None

    async def item_departments(self) -> dict[str, str]:
        return {}


class Registry:
    def __init__(self, *partners: PartnerInfo) -> None:
        self.partners = partners

    async def find(self, region: str) -> PartnerInfo | None:
        return next((p for p in self.partners if p.region == region), None)

    async def accepting(self, item_code: str) -> Sequence[PartnerInfo]:
        return [p for p in self.partners if any(a.item_code == item_code for a in p.accepts)]


@pytest.mark.parametrize(
    ("partners", "item", "role", "filed", "online"),
    [
        ((ZHUZHOU, XIANGTAN), PARTNER_ITEM, Role.CLERK, "partner:430200", None),  # the first by region
        ((XIANGTAN, ZHUZHOU), PARTNER_ITEM, Role.CLERK, "partner:430300", None),
        # 全程网办 for an online applicant: straight to the partner serving it that way.
        ((XIANGTAN, ZHUZHOU), PARTNER_ITEM, Role.CITIZEN, "partner:430200", "430200"),
        ((XIANGTAN,), PARTNER_ITEM, Role.CITIZEN, "partner:430300", None),  # waits for our window
        ((ZHUZHOU, XIANGTAN), ONLINE_ONLY, Role.CITIZEN, "partner:430200", "430200"),
        ((ZHUZHOU, XIANGTAN), ONLINE_ONLY, Role.AGENT, "partner:430200", "430200"),
        ((ZHUZHOU, XIANGTAN), ONLINE_ONLY, Role.CLERK, None, None),
        ((ZHUZHOU, XIANGTAN), PARTNER_ITEM, Role.PARTNER, None, None),  # a partner files only its own
        ((ZHUZHOU, XIANGTAN), ITEM, Role.CITIZEN, None, None),  # nobody takes it
    ],
)
async def test_an_item_missing_here_is_filed_under_the_partner_that_takes_it(
    partners: tuple[PartnerInfo, ...], item: str, role: Role, filed: str | None, online: str | None
) -> None:
    registry = Registry(*partners)
    if filed is None:
        with pytest.raises(UnknownServiceItemError, match="no active service item"):
            await filing_terms(NoCatalogue(), registry, item, role)
    else:
        assert await filing_terms(NoCatalogue(), registry, item, role) == Filing(filed, online_partner=online)


async def test_without_a_registry_only_the_catalogue_counts() -> None:
    with pytest.raises(UnknownServiceItemError):
        await filing_terms(NoCatalogue(), None, PARTNER_ITEM, Role.CLERK)
