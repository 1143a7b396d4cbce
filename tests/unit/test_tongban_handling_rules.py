"""办理地: which handoffs this city takes on, and the application rebuilt as domain values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from backend.catalogue import read_catalogue
from backend.federation.handling_rules import (
    HandoffNotTaken,
    handled_case_id,
    materials,
    parties,
    served_item,
)
from backend.federation.kinds import Material, Party
from domain.case import Agent, Enterprise, Person, UploadedFile
from domain.personal import CreditCode, IdDocument, IdNumber
from projections.catalogue import ServiceGuide

SOURCE = read_catalogue()
ITEMS = {item.code: item for item in SOURCE.items}
FOOD = "11430100006182474N010100300000"  # 食品经营许可: no 通办
SOLE_TRADER = "11430100006182474N010100200000"  # 个体工商户设立登记: 异地代收代办 with 株洲, 湘潭
JOBLESS = "114301000061839447050400200000"  # 失业保险金申领: 全程网办 with 株洲, 湘潭

ZHANG = Party(
    kind="person", name="张三", id_type="resident_id", id_number="430102199003071234",
    phone="138 1234 1234", address="湖南省长沙市岳麓区麓山南路1号",
)  # fmt: skip
STAR = Party(
    kind="enterprise", name="长沙星城科技有限公司", id_type="uscc", id_number="91430100MA4L0000X9",
    phone="0731-88880000", address="湖南省长沙市天心区",
)  # fmt: skip
WANG = Party(kind="person", name="王五", id_type="passport", id_number="e12345678", phone="+86 13700001111")


def guide(code: str, status: str = "active") -> ServiceGuide:
    return ServiceGuide(
        spec=ITEMS[code], version=3, status=status, updated_at=datetime(2026, 5, 1, tzinfo=UTC), part_of=[]
    )  # type: ignore[arg-type]


def test_an_item_is_taken_in_a_mode_its_tongban_list_offers() -> None:
    assert served_item(SOLE_TRADER, "remote_collect", guide(SOLE_TRADER), is_bundle=False).version == 3
    assert served_item(JOBLESS, "full_online", guide(JOBLESS), is_bundle=False).spec.code == JOBLESS


@pytest.mark.parametrize(
    ("code", "mode", "found", "is_bundle", "reason"),
    [
        (FOOD, "remote_collect", guide(FOOD), False, "本市不以异地代收代办受理事项 " + FOOD),
        (SOLE_TRADER, "full_online", guide(SOLE_TRADER), False, "is not served in mode full_online here"),
        (JOBLESS, "multi_city", guide(JOBLESS), False, "本市不以多地联办受理事项"),
        (SOLE_TRADER, "remote_collect", guide(SOLE_TRADER, "withdrawn"), False, "no active item"),
        ("NOPE", "remote_collect", None, False, "本市事项清单中没有在办事项 NOPE"),
        ("BUNDLE", "remote_collect", None, True, "bundle BUNDLE is not taken across cities"),
    ],
)
def test_what_is_not_taken_is_refused_with_a_reason(
    code: str, mode: Any, found: ServiceGuide | None, is_bundle: bool, reason: str
) -> None:
    with pytest.raises(HandoffNotTaken, match=reason):
        served_item(code, mode, found, is_bundle=is_bundle)


def test_the_parties_become_domain_values() -> None:
    applicant, agent = parties(ZHANG, WANG)
    assert isinstance(applicant, Person) and applicant.identity == IdNumber("430102199003071234")
    assert applicant.phone.number == "13812341234" and applicant.address.division == "湖南省长沙市岳麓区"
    assert isinstance(agent, Agent) and isinstance(agent.identity, IdDocument)
    assert agent.identity.number == "E12345678" and agent.phone.number == "13700001111"
    company, none = parties(STAR, None)
    assert isinstance(company, Enterprise) and company.identity == CreditCode("91430100MA4L0000X9")
    assert none is None


@pytest.mark.parametrize(
    ("applicant", "agent", "field"),
    [
        ({"id_number": "430102199003071235"}, None, "applicant.idNumber"),  # wrong check character
        ({"id_type": "uscc"}, None, "applicant.idNumber"),  # a person is not a credit code
        ({"id_type": "library_card"}, None, "applicant.idNumber"),
        ({"phone": "12345"}, None, "applicant.phone"),
        ({"address": None}, None, "applicant.address"),
        ({"name": "张3"}, None, "applicant.name"),
        ({"kind": "enterprise"}, None, "applicant.idNumber"),  # an enterprise is named by its uscc
        ({}, {"id_number": "E1"}, "agent.idNumber"),
        ({}, {"kind": "enterprise"}, "the agent must be a natural person"),
    ],
)
def test_an_invalid_party_is_refused_naming_the_field_not_the_value(
    applicant: dict[str, Any], agent: dict[str, Any] | None, field: str
) -> None:
    bad_agent = None if agent is None else msgspec.structs.replace(WANG, **agent)
    with pytest.raises(HandoffNotTaken, match=field) as refused:
        parties(msgspec.structs.replace(ZHANG, **applicant), bad_agent)
    reason = str(refused.value)
    assert "430102199003071235" not in reason and "12345" not in reason and "张3" not in reason


def test_materials_are_file_references_each_listed_once() -> None:
    given = [Material(material_id="M01", sha256="a" * 64), Material(material_id="M02", sha256="b" * 64)]
    assert materials(given) == {"M01": UploadedFile("a" * 64), "M02": UploadedFile("b" * 64)}
    with pytest.raises(HandoffNotTaken, match="M01"):
        materials([*given, Material(material_id="M01", sha256="c" * 64)])


def test_a_handoff_has_one_case_here_per_sending_city() -> None:
    handoff = uuid.uuid4()
    assert handled_case_id("430200", handoff) == handled_case_id("430200", handoff)
    assert handled_case_id("430200", handoff) != handled_case_id("430300", handoff)
    assert handled_case_id("430200", handoff) != handled_case_id("430200", uuid.uuid4())
