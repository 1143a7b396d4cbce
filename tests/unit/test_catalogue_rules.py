"""Catalogue rules: a spec that breaks one is refused with every problem named; credit codes check out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from domain.catalogue import (
    BundleSpec,
    Department,
    DuplicateCodeError,
    InvalidBundleError,
    InvalidServiceItemError,
    Location,
    Material,
    ServiceItemSpec,
    TimeLimit,
    TongbanPartner,
    UnknownChildItemError,
    check_bundle,
    check_catalogue,
    check_item,
    is_valid_credit_code,
    is_valid_entry_code,
)

pytestmark = pytest.mark.unit

CREDIT = "11430100006182474N"  # format-valid (GB 32100), not a real agency's code
OTHER_CREDIT = "11430100006180524Q"
DEPARTMENT = Department(code="SCJGJ", name="长沙市市场监督管理局", credit_code=CREDIT)
_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def code(n: int, credit: str = CREDIT) -> str:
    return f"{credit}01{n:05d}00000"


def sample_item(n: int = 1, **changes: Any) -> ServiceItemSpec:
    spec = ServiceItemSpec(
        code=code(n),
        name=f"企业设立登记 {n}",
        department=DEPARTMENT,
        kind="licensing",
        summary="设立公司",
        conditions="材料齐全",
        audience=("enterprise",),
        materials=(
            Material(id="M01", name="申请书"),
            Material(id="M02", name="住所证明", requirement="minor", replaceable_by_elicence="不动产权证书"),
        ),
        statutory_limit=TimeLimit(3, "working_day"),
        promised_limit=TimeLimit(1, "working_day"),
        trips=0,
        modes=("full_online", "window", "remote_collect"),
        where=(Location(hall="长沙市政务服务中心", window="企业开办专区"),),
        basis="《中华人民共和国市场主体登记管理条例》",
        tongban=(TongbanPartner(region="430200", city="株洲市", mode="remote_collect"),),
    )
    return replace(spec, **changes)


def sample_bundle(children: tuple[str, ...] = (code(1), code(2)), **changes: Any) -> BundleSpec:
    spec = BundleSpec(
        code=f"{CREDIT}900000100000",
        name="企业开办一件事",
        lead_department=DEPARTMENT,
        summary="一表通填",
        children=children,
        target=TimeLimit(1, "working_day"),
        trips=0,
        modes=("full_online", "window"),
        materials=(Material(id="M01", name="一表通填申请表"),),
        where=(Location(hall="长沙市政务服务中心", window="企业开办专区"),),
        basis="国发〔2024〕3号",
    )
    return replace(spec, **changes)


def with_check(body: str) -> str:
    total = sum(_CHARS.index(c) * w for c, w in zip(body, _WEIGHTS, strict=True))
    return body + _CHARS[(31 - total % 31) % 31]


def test_the_sample_specs_are_valid() -> None:
    check_item(sample_item())
    check_bundle(sample_bundle())
    check_catalogue([sample_item(1), sample_item(2)], [sample_bundle()])


ITEM_CASES = [
    ("bad code", {"code": "SCJGJ-001"}, "code must be"),
    ("code with a bad check char", {"code": CREDIT[:-1] + "P" + "010000100000"}, "code must be"),
    ("empty name", {"name": "  "}, "name is empty"),
    ("no basis", {"basis": ""}, "legal basis"),
    ("no materials for a licence", {"materials": ()}, "at least one material"),
    (
        "repeated material ids",
        {"materials": (Material(id="M01", name="a"), Material(id="M01", name="b"))},
        "repeat",
    ),
    ("negative copies", {"materials": (Material(id="M01", name="a", copies=-1),)}, "negative"),
    (
        "blank e-licence",
        {"materials": (Material(id="M01", name="a", replaceable_by_elicence=" "),)},
        "e-licence",
    ),
    ("promise beyond the law", {"promised_limit": TimeLimit(5, "working_day")}, "承诺时限"),
    (
        "working-day promise beyond natural-day law",
        {"statutory_limit": TimeLimit(3, "natural_day"), "promised_limit": TimeLimit(4, "working_day")},
        "承诺时限",
    ),
    ("negative limit", {"promised_limit": TimeLimit(-1, "working_day")}, "negative"),
    ("two trips", {"trips": 2}, "trips must be 0 or 1"),
    ("零跑动 offline", {"modes": ("window",), "tongban": ()}, "零跑动 needs 全程网办"),
    ("秒批 offline", {"trips": 1, "modes": ("window", "instant_approval"), "tongban": ()}, "秒批 needs"),
    ("window nowhere", {"where": ()}, "needs at least one location"),
    ("no modes", {"modes": (), "trips": 1, "tongban": ()}, "modes must be non-empty"),
    ("repeated modes", {"modes": ("full_online", "full_online")}, "without repeats"),
    ("no audience", {"audience": ()}, "audience"),
    ("negative fee", {"fee": Decimal("-1")}, "fee"),
    ("fee below a fen", {"fee": Decimal("0.001")}, "fee"),
    ("fee not finite", {"fee": Decimal("NaN")}, "fee"),
    (
        "department credit code",
        {"department": replace(DEPARTMENT, credit_code=CREDIT[:-1] + "0")},
        "GB 32100",
    ),
    ("department code", {"department": replace(DEPARTMENT, code="scj")}, "capital letters"),
    (
        "通办 with ourselves",
        {"tongban": (TongbanPartner(region="430100", city="长沙市", mode="remote_collect"),)},
        "another city",
    ),
    (
        "通办 in a mode not offered",
        {"tongban": (TongbanPartner(region="430300", city="湘潭市", mode="multi_city"),)},
        "does not offer",
    ),
    (
        "通办 partner twice",
        {"tongban": (TongbanPartner("430200", "株洲市", "remote_collect"),) * 2},
        "repeat",
    ),
]


@pytest.mark.parametrize(("case", "changes", "problem"), ITEM_CASES, ids=[c[0] for c in ITEM_CASES])
def test_an_item_breaking_a_rule_is_refused(case: str, changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidServiceItemError) as caught:
        check_item(sample_item(**changes))
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_a_public_service_may_need_no_materials_and_other_units_are_not_compared() -> None:
    check_item(sample_item(kind="public_service", materials=()))
    # A promise in natural days against a law in working days is not comparable by number alone.
    check_item(
        sample_item(statutory_limit=TimeLimit(3, "working_day"), promised_limit=TimeLimit(20, "natural_day"))
    )


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidServiceItemError) as caught:
        check_item(sample_item(name="", basis="", trips=3))
    assert len(caught.value.problems) == 3
    assert str(caught.value).startswith(code(1))


BUNDLE_CASES = [
    ("one child", {"children": (code(1),)}, "at least two"),
    ("repeated child", {"children": (code(1), code(1))}, "repeat"),
    ("contains itself", {"children": (code(1), f"{CREDIT}900000100000")}, "itself"),
    ("no materials", {"materials": ()}, "one set of materials"),
    ("negative target", {"target": TimeLimit(-1, "working_day")}, "negative"),
    ("bad lead", {"lead_department": replace(DEPARTMENT, name="")}, "lead department name"),
]


@pytest.mark.parametrize(("case", "changes", "problem"), BUNDLE_CASES, ids=[c[0] for c in BUNDLE_CASES])
def test_a_bundle_breaking_a_rule_is_refused(case: str, changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidBundleError) as caught:
        check_bundle(sample_bundle(**changes))
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_catalogue_rules_across_entries() -> None:
    items = [sample_item(1), sample_item(2)]
    with pytest.raises(DuplicateCodeError):
        check_catalogue([*items, sample_item(1)], [])
    with pytest.raises(DuplicateCodeError):
        check_catalogue(items, [sample_bundle(code=code(1))])
    with pytest.raises(UnknownChildItemError):
        check_catalogue(items, [sample_bundle(children=(code(1), code(3)))])
    slow = sample_item(2, promised_limit=TimeLimit(2, "working_day"))
    with pytest.raises(InvalidBundleError, match="beyond the target"):
        check_catalogue([items[0], slow], [sample_bundle()])


@pytest.mark.parametrize(
    ("credit_code", "valid"),
    [
        ("11430100006182474N", True),
        ("12430100444881275F", True),
        ("91350100M000100Y43", True),  # the example in GB 32100 itself
        ("11430100006182474P", False),  # wrong check character
        ("1143010000618247", False),  # too short
        ("11430100006182474n", False),  # lower case
        ("114301000061824I4N", False),  # I is not in the character set
    ],
)
def test_credit_codes(credit_code: str, valid: bool) -> None:
    assert is_valid_credit_code(credit_code) is valid


def test_entry_codes() -> None:
    assert is_valid_entry_code(code(1))
    assert not is_valid_entry_code(code(1) + "0")
    assert not is_valid_entry_code(code(1)[:-1] + "A")


_BODY = st.text(alphabet=_CHARS, min_size=17, max_size=17).map(lambda s: "11" + "430100" + s[8:])


@given(_BODY, st.integers(0, 17), st.sampled_from(_CHARS))
def test_the_check_character_catches_any_single_substitution(body: str, at: int, char: str) -> None:
    good = with_check(body)
    assert is_valid_credit_code(good)
    bad = good[:at] + char + good[at + 1 :]
    if bad != good and bad[2:8].isdigit():
        assert not is_valid_credit_code(bad)
