"""Personal values refuse malformed input, and their masks keep only what DOMAIN.md allows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.personal import (
    Address,
    Biometric,
    CreditCode,
    DocumentKind,
    IdDocument,
    IdNumber,
    Personal,
    PersonalDataError,
    PersonName,
    Phone,
    Sensitivity,
    age_on,
    is_minor,
    mask,
    mask_address,
    mask_id,
    mask_name,
    mask_phone,
    subject_sensitivity,
)

pytestmark = pytest.mark.unit

# Reference check characters, written out from the standards rather than computed like the module does.
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
USCC = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def id_check(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def uscc_check(first17: str) -> str:
    r = 31 - sum(USCC.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True)) % 31
    return USCC[0 if r == 31 else r]


# ID numbers and credit codes.


@pytest.mark.parametrize(
    "number",
    [
        "11010519491231002X",  # the example in GB 11643
        "440524188001010014",  # born 1880
        "430102199003071234",
        "430102200802290041",  # born on 29 February
    ],
)
def test_valid_id_numbers_are_accepted(number: str) -> None:
    assert id_check(number[:17]) == number[17]
    assert IdNumber(number).number == number


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("430102199003071235", "check character"),  # last digit changed
        ("430102199003071243", "check character"),  # two digits swapped
        ("11010519491231002x", "check character"),  # the constructor wants the canonical upper-case X
        ("430102199002301236", "birth date"),  # 30 February
        ("43010219900307123", "17 digits"),
        ("4301021990030712345", "17 digits"),
        ("43010219900307A234", "17 digits"),
        ("４３０１０２１９９００３０７１２３４", "17 digits"),  # full-width digits
        ("", "17 digits"),
    ],
)
def test_invalid_id_numbers_are_refused_with_the_reason(number: str, reason: str) -> None:
    with pytest.raises(PersonalDataError, match=reason) as raised:
        IdNumber(number)
    assert number[:6] not in str(raised.value) or not number  # the message never echoes the value


@pytest.mark.parametrize(
    ("text", "number"),
    [
        (" 11010519491231002x ", "11010519491231002X"),
        ("430102 19900307 1234", "430102199003071234"),
        ("430102900307123", "430102199003071234"),  # a first-generation 15-digit number, upgraded
    ],
)
def test_parse_normalises_user_input(text: str, number: str) -> None:
    assert IdNumber.parse(text) == IdNumber(number)


@pytest.mark.parametrize("code", ["91430100MA4L12340T", "91430104MA4PQ8RT0D", "12430000444885765J"])
def test_valid_credit_codes_are_accepted(code: str) -> None:
    assert uscc_check(code[:17]) == code[17]
    assert CreditCode(code).code == code == CreditCode.parse(f" {code.lower()} ").code


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91430100MA4L12340U", "check character"),
        ("91430100MA4L1234T0", "check character"),
        ("91430100MI4L12340T", "without I"),  # I is not in the GB 32100 alphabet
        ("914301A0MA4L12340T", "region code"),
        ("91430100MA4L1234", "18 characters"),
    ],
)
def test_invalid_credit_codes_are_refused(code: str, reason: str) -> None:
    with pytest.raises(PersonalDataError, match=reason):
        CreditCode(code)


@pytest.mark.parametrize(
    ("kind", "number", "ok"),
    [
        (DocumentKind.PASSPORT, "E12345678", True),
        (DocumentKind.PASSPORT, "EA1234567", True),
        (DocumentKind.PASSPORT, "E123", False),
        (DocumentKind.HK_MACAO_PERMIT, "H12345678", True),
        (DocumentKind.HK_MACAO_PERMIT, "M1234567801", True),
        (DocumentKind.HK_MACAO_PERMIT, "C12345678", False),
        (DocumentKind.TAIWAN_PERMIT, "12345678", True),
        (DocumentKind.TAIWAN_PERMIT, "1234567", False),
        (DocumentKind.FOREIGN_PERMANENT_RESIDENT, "USA110062080120", True),  # until 2023
        (DocumentKind.FOREIGN_PERMANENT_RESIDENT, "93384019900101123X", True),  # since 2023
        (DocumentKind.FOREIGN_PERMANENT_RESIDENT, "US1110062080120", False),
        (DocumentKind.FOREIGN_PERMANENT_RESIDENT, "830840199001011234", False),
    ],
)
def test_other_documents_have_their_own_forms(kind: DocumentKind, number: str, ok: bool) -> None:
    if ok:
        assert IdDocument.parse(kind, number.lower()).number == number
    else:
        with pytest.raises(PersonalDataError, match=kind.value):
            IdDocument(kind, number)


# Phones, names, addresses.


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("13812341234", "13812341234"),
        ("+86 138-1234-1234", "13812341234"),
        ("0086 19912341234", "19912341234"),
        ("0731-88881234", "0731-88881234"),
        ("(0731) 8888 1234", "0731-88881234"),
        ("01062345678", "010-62345678"),
        ("020-2345678", "020-2345678"),
    ],
)
def test_phones_are_parsed_to_one_form(text: str, number: str) -> None:
    assert Phone.parse(text).number == number


@pytest.mark.parametrize(
    "text", ["12812341234", "1381234123", "138123412345", "0731-08881234", "88881234", ""]
)
def test_bad_phones_are_refused(text: str) -> None:
    with pytest.raises(PersonalDataError, match="mobile"):
        Phone.parse(text)


@pytest.mark.parametrize("name", ["", " 张三", "张三\n", "张3", "x" * 65])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(PersonalDataError, match="name"):
        PersonName(name)


@pytest.mark.parametrize(
    ("text", "division", "detail"),
    [
        ("湖南省长沙市岳麓区麓山南路932号", "湖南省长沙市岳麓区", "麓山南路932号"),
        ("北京市朝阳区建国路88号", "北京市朝阳区", "建国路88号"),
        ("湖南省长沙市浏阳市集里街道", "湖南省长沙市浏阳市", "集里街道"),  # a county-level city
        ("湖南省长沙县星沙街道", "湖南省长沙县", "星沙街道"),
        ("内蒙古自治区呼和浩特市土默特左旗", "内蒙古自治区呼和浩特市土默特左旗", ""),
        ("新疆维吾尔自治区伊犁哈萨克自治州伊宁市解放路", "新疆维吾尔自治区伊犁哈萨克自治州伊宁市", "解放路"),
        ("广东省东莞市南城街道鸿福路106号", "广东省东莞市", "南城街道鸿福路106号"),  # no districts
        ("湖南省长沙市阳光小区5栋", "湖南省长沙市", "阳光小区5栋"),  # a 小区 is not a district
        ("阳光小区5栋", "", "阳光小区5栋"),
        ("岳麓区麓山南路932号", "", "岳麓区麓山南路932号"),  # a district alone is not trusted
        ("221B Baker Street, London", "", "221B Baker Street, London"),
    ],
)
def test_addresses_split_after_the_district(text: str, division: str, detail: str) -> None:
    address = Address.parse(text)
    assert (address.division, address.detail) == (division, detail)
    assert address.text == text


def test_an_address_division_must_be_only_divisions() -> None:
    with pytest.raises(PersonalDataError, match="division"):
        Address("湖南省长沙市岳麓区麓山南路", "932号")


# Masks: table-driven first, then properties.


@pytest.mark.parametrize(
    ("fn", "text", "masked"),
    [
        (mask_id, "430102199003071234", "430***********1234"),
        (mask_id, "11010519491231002X", "110***********002X"),
        (mask_id, "430102900307123", "430********7123"),  # 15 digits
        (mask_id, "E12345678", "E*****678"),  # a passport keeps less
        (mask_id, "1234567", "*******"),
        (mask_id, "", ""),
        (mask_phone, "13812341234", "138****1234"),
        (mask_phone, "0731-88881234", "0731-****1234"),
        (mask_phone, "020-2345678", "020-***5678"),
        (mask_phone, "88881234", "****1234"),
        (mask_phone, "1234", "****"),
        (mask_name, "张三", "张*"),
        (mask_name, "王小明", "王**"),
        (mask_name, "欧阳娜娜", "欧***"),
        (mask_name, "买买提·艾力", "买*****"),
        (mask_name, "张", "*"),
        (mask_name, "", ""),
        (mask_address, "湖南省长沙市岳麓区麓山南路932号", "湖南省长沙市岳麓区******"),
        (mask_address, "湖南省长沙市岳麓区", "湖南省长沙市岳麓区"),
        (mask_address, "阳光小区5栋", "******"),
        (mask_address, "", ""),
    ],
)
def test_masks(fn: Callable[[str], str], text: str, masked: str) -> None:
    assert fn(text) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        (IdNumber("430102199003071234"), "430***********1234"),
        (IdDocument(DocumentKind.PASSPORT, "E12345678"), "E*****678"),
        (Phone("13812341234"), "138****1234"),
        (PersonName("张三"), "张*"),
        (Address("湖南省长沙市岳麓区", "麓山南路932号"), "湖南省长沙市岳麓区******"),
        (Biometric("face", "ab" * 32), "face:******"),
        (CreditCode("91430100MA4L12340T"), "91430100MA4L12340T"),  # public, never masked
    ],
)
def test_mask_dispatches_on_the_type(value: Personal | CreditCode, masked: str) -> None:
    assert mask(value) == masked


def test_personal_values_show_masked_in_logs() -> None:
    applicant = {"name": PersonName("欧阳娜娜"), "id": IdNumber("430102199003071234")}
    assert repr(applicant) == "{'name': PersonName('欧***'), 'id': IdNumber('430***********1234')}"
    assert "娜娜" not in f"{applicant}" and "19900307" not in f"{applicant}"


def test_values_are_validated_when_decoded_at_the_boundary() -> None:
    with pytest.raises(msgspec.ValidationError, match="check character"):
        msgspec.json.decode(b'{"number": "430102199003071235"}', type=IdNumber)


def revealed(original: str, masked: str) -> list[int]:
    assert len(masked) == len(original)
    positions = [i for i, c in enumerate(masked) if c != "*"]
    assert all(masked[i] == original[i] for i in positions)
    return positions


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    born = draw(st.dates(date(1900, 1, 1), date(2099, 12, 31)))
    first17 = f"{draw(st.integers(110000, 829999))}{born:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    return first17 + id_check(first17)


@given(id_numbers())
def test_id_masks_keep_exactly_the_first_3_and_last_4(number: str) -> None:
    assert revealed(number, mask_id(IdNumber(number).number)) == [0, 1, 2, 14, 15, 16, 17]


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_mobile_masks_keep_exactly_the_first_3_and_last_4(number: str) -> None:
    assert revealed(number, mask(Phone(number))) == [0, 1, 2, 7, 8, 9, 10]


@given(st.text(alphabet=st.characters(exclude_characters="*-"), max_size=40))
def test_no_mask_reveals_more_than_its_ends(text: str) -> None:
    n = len(text)
    for fn in (mask_id, mask_phone):
        shown = revealed(text, fn(text))
        assert all(i < 3 or i >= n - 4 for i in shown) and len(shown) <= 7
        assert not shown or n >= 8
    assert revealed(text, mask_name(text)) == ([0] if n > 1 else [])


ADDRESS_PARTS = ["湖南省", "长沙", "市", "岳麓区", "县", "小区", "自治州", "阳光", "5栋", " ", "*", "Street"]


@given(st.lists(st.sampled_from(ADDRESS_PARTS), max_size=8).map("".join) | st.text(max_size=30))
def test_an_address_mask_shows_at_most_the_division(text: str) -> None:
    masked = mask_address(text)
    division = masked.removesuffix("******")
    assert text.startswith(division)
    if division:
        assert Address(division, "").division == division  # only division names, nothing finer


# Minors and sensitivity.


@pytest.mark.parametrize(
    ("number", "on", "age"),
    [
        ("430104201206150023", date(2030, 6, 14), 17),
        ("430104201206150023", date(2030, 6, 15), 18),
        ("430102200802290041", date(2026, 2, 28), 17),  # born 29 February: 18 on 1 March in a common year
        ("430102200802290041", date(2026, 3, 1), 18),
        ("430102200802290041", date(2028, 2, 29), 20),
    ],
)
def test_age_and_minority_follow_the_reference_date(number: str, on: date, age: int) -> None:
    id_number = IdNumber(number)
    assert age_on(id_number, on) == age
    assert is_minor(id_number, on) is (age < 18)
    assert subject_sensitivity(id_number, on) is (Sensitivity.SENSITIVE if age < 18 else Sensitivity.PERSONAL)


def anniversary(born: date, years: int) -> date:
    try:
        return born.replace(year=born.year + years)
    except ValueError:  # 29 February in a common year
        return date(born.year + years, 3, 1)


@given(id_numbers(), st.integers(0, 120 * 366))
def test_age_counts_the_birthdays_passed(number: str, days: int) -> None:
    id_number = IdNumber(number)
    born = id_number.birth_date
    on = born + timedelta(days=days)
    age = age_on(id_number, on)
    assert anniversary(born, age) <= on < anniversary(born, age + 1)
    assert is_minor(id_number, on) is (on < anniversary(born, 18))


def test_biometrics_are_sensitive_and_other_personal_data_is_personal() -> None:
    assert Biometric.sensitivity is Sensitivity.SENSITIVE
    assert PersonName.sensitivity is Phone.sensitivity is IdNumber.sensitivity is Sensitivity.PERSONAL
