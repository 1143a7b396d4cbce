"""The shipped 长沙 catalogue passes every rule and has what the product promises (DOMAIN.md)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.catalogue import DEFAULT_CATALOGUE, CatalogueSource, CatalogueSourceError, read_catalogue
from domain.catalogue import KIND_LABELS, CatalogueError, is_valid_credit_code

pytestmark = pytest.mark.unit

# 事项类型代码 used in the 12-digit 基本编码 of this file.
KIND_CODES = {"licensing": "01", "levy": "04", "benefit": "05", "confirmation": "07", "other_power": "10"}
KIND_CODES["public_service"] = "20"


@pytest.fixture(scope="module")
def source() -> CatalogueSource:
    return read_catalogue(DEFAULT_CATALOGUE)  # runs every domain rule


def org_code_ok(code: str) -> bool:
    """GB 11714: the 9-character 组织机构代码 inside a credit code has its own check character."""
    body, check = code[8:16], code[16]
    values = [int(c) if c.isdigit() else ord(c) - 55 for c in body]
    remainder = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return check == {10: "X", 11: "0"}.get(remainder, str(remainder))


def test_counts(source: CatalogueSource) -> None:
    assert source.region == "430100" and source.city == "长沙市"
    assert len(source.items) >= 25
    assert len({i.department.code for i in source.items}) >= 8
    assert len(source.bundles) >= 3
    assert {i.kind for i in source.items} >= {"licensing", "public_service", "confirmation", "benefit"}


def test_credit_codes_and_entry_codes(source: CatalogueSource) -> None:
    departments = {i.department for i in source.items} | {b.lead_department for b in source.bundles}
    for d in departments:
        assert is_valid_credit_code(d.credit_code) and org_code_ok(d.credit_code), d
        assert d.credit_code[2:8] == "430100", d  # registered in 长沙
    assert len({d.credit_code for d in departments}) == len({d.code for d in departments}) == len(departments)
    for item in source.items:
        assert item.code.startswith(item.department.credit_code), item.code
        assert item.code[18:20] == KIND_CODES[item.kind], item.code
    for bundle in source.bundles:
        assert bundle.code.startswith(bundle.lead_department.credit_code)


def test_enterprise_start_up_bundle(source: CatalogueSource) -> None:
    [bundle] = [b for b in source.bundles if b.name.startswith("企业开办")]
    items = {i.code: i for i in source.items}
    children = [items[c] for c in bundle.children]
    assert bundle.target.amount == 1 and bundle.target.unit == "working_day"
    assert len(children) == 5
    by_department = {c.department.name: c.name for c in children}
    assert "设立登记" in by_department["长沙市市场监督管理局"]
    assert "印章" in by_department["长沙市公安局"]
    assert "发票" in by_department["国家税务总局长沙市税务局"]
    assert "社会保险登记" in by_department["长沙市人力资源和社会保障局"]
    bank = [c for c in children if "银行" in c.name]
    assert len(bank) == 1 and bank[0].kind == "public_service"


def test_other_bundles(source: CatalogueSource) -> None:
    names = {b.name for b in source.bundles}
    assert "新生儿出生一件事" in names and "二手房转移登记一件事" in names
    for bundle in source.bundles:
        departments = {i.department.code for i in source.items if i.code in bundle.children}
        assert len(departments) >= 2, bundle.name  # across departments, or it is not a bundle


def test_tongban_with_zhuzhou_and_xiangtan(source: CatalogueSource) -> None:
    regions = Counter(p.region for i in source.items for p in i.tongban)
    assert regions["430200"] >= 3 and regions["430300"] >= 3
    assert {p.city for i in source.items for p in i.tongban} == {"株洲市", "湘潭市"}


def test_materials_and_promises(source: CatalogueSource) -> None:
    materials = [m for i in source.items for m in i.materials]
    assert any(m.requirement == "minor" for m in materials)
    assert any(m.replaceable_by_elicence for m in materials)
    assert any(i.trips == 0 for i in source.items) and any(i.trips == 1 for i in source.items)
    assert any("instant_approval" in i.modes for i in source.items)
    assert any("commitment" in i.modes for i in source.items)
    assert any(i.fee > 0 for i in source.items)
    assert sum(i.fee == 0 for i in source.items) > len(source.items) * 3 // 4  # most are free
    assert all(i.kind in KIND_LABELS for i in source.items)


def test_the_file_is_plain_json_with_department_references() -> None:
    raw = json.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    codes = {d["code"] for d in raw["departments"]}
    assert all(i["department"] in codes for i in raw["items"])


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda raw: raw["items"][0].update(department="NOPE"), "unknown department 'NOPE'"),
        (lambda raw: raw["items"][0].update(colour="red"), "colour"),
        (lambda raw: raw["items"][0].update(fee="免费"), "decimal"),
        (lambda raw: raw["items"][1].update(code=raw["items"][0]["code"]), "more than once"),
        (lambda raw: raw["bundles"][0]["children"].append("11430100006182474N019999900000"), "no item"),
        (lambda raw: raw["items"][0].update(trips=3), "trips must be 0 or 1"),
        (lambda raw: raw["departments"].append(raw["departments"][0]), "listed twice"),
    ],
)
def test_a_bad_file_is_refused_with_a_reason(
    tmp_path: Path, mangle: Callable[[Any], Any], message: str
) -> None:
    raw = json.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    mangle(raw)
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(CatalogueError, match=message):
        read_catalogue(path)


def test_an_unreadable_file_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(CatalogueSourceError):
        read_catalogue(tmp_path / "broken.json")
    with pytest.raises(CatalogueSourceError):
        read_catalogue(tmp_path / "missing.json")
