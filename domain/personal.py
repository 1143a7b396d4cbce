"""Personal information (个人信息): typed values, their validation, and the masks shown by default.

Every subclass of `Personal` is personal information under the 个人信息保护法: the
store encrypts it at rest and APIs, logs and read models show `mask(value)`. Its
repr is masked too, so a value that slips into a log line stays masked. An
enterprise's 统一社会信用代码 is public (公示), so `CreditCode` is deliberately
not `Personal`; a legal representative's name is a `PersonName` and is.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import ClassVar, Self, TypeAlias

import msgspec


class PersonalDataError(ValueError):
    """A personal value is malformed; the message says what is wrong, never the value itself."""


class Sensitivity(StrEnum):
    PERSONAL = "personal"  # 个人信息
    SENSITIVE = "sensitive"  # 敏感个人信息: biometrics, minors' data (PIPL Art. 28)


class DocumentKind(StrEnum):
    PASSPORT = "护照"
    HK_MACAO_PERMIT = "港澳居民来往内地通行证"
    TAIWAN_PERMIT = "台湾居民来往大陆通行证"
    FOREIGN_PERMANENT_RESIDENT = "外国人永久居留身份证"


class Personal(msgspec.Struct, frozen=True, tag_field="type"):
    """Base of every personal value: encrypted at rest, masked by default.

    Each subclass names itself with a tag, so a union of them (`PersonalId`) decodes with msgspec.
    """

    sensitivity: ClassVar[Sensitivity] = Sensitivity.PERSONAL

    def __repr__(self) -> str:
        return f"{type(self).__name__}({mask(self)!r})"


# 居民身份证 (GB 11643-1999): 6-digit region, 8-digit birth date, 3-digit sequence, check character.
_ID_WEIGHTS = tuple(2 ** (17 - i) % 11 for i in range(17))
_ID_CHECK = "10X98765432"


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of an ID number."""
    return _ID_CHECK[sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def _birth_date(digits: str) -> date:
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise PersonalDataError("居民身份证号码 has no valid birth date in digits 7–14") from None


class IdNumber(Personal, frozen=True, tag="id_number"):
    """居民身份证号码, always 18 characters with an upper-case X check character."""

    number: str

    def __post_init__(self) -> None:
        n = self.number
        if len(n) != 18 or not n[:17].isascii() or not n[:17].isdigit():
            raise PersonalDataError("居民身份证号码 must be 17 digits and a check character")
        _birth_date(n[6:14])
        if n[17] != id_check_char(n[:17]):
            raise PersonalDataError("居民身份证号码 check character is wrong (GB 11643)")

    @classmethod
    def parse(cls, text: str) -> Self:
        """Accept user input: spaces and a lower-case x are fine; a legacy 15-digit number is upgraded."""
        n = "".join(text.split()).upper()
        if len(n) == 15 and n.isascii() and n.isdigit():
            # First-generation cards (invalid since 2013) omit the century and the check character.
            first17 = f"{n[:6]}19{n[6:]}"
            n = first17 + id_check_char(first17)
        return cls(n)

    @property
    def birth_date(self) -> date:
        return _birth_date(self.number[6:14])


def age_on(id_number: IdNumber, on: date) -> int:
    """Whole years of age on a given day; someone born on 29 February ages on 1 March in common years."""
    born = id_number.birth_date
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def is_minor(id_number: IdNumber, on: date) -> bool:
    """Under 18 on that day (民法典 Art. 17); everything about a minor is sensitive."""
    return age_on(id_number, on) < 18


def subject_sensitivity(id_number: IdNumber, on: date) -> Sensitivity:
    """How sensitive the data of the person with this ID number is on that day."""
    return Sensitivity.SENSITIVE if is_minor(id_number, on) else Sensitivity.PERSONAL


_DOCUMENT_FORMS = {
    DocumentKind.PASSPORT: re.compile(r"[A-Z0-9]{5,20}"),  # Chinese (E12345678, EA1234567) and foreign
    DocumentKind.HK_MACAO_PERMIT: re.compile(r"[HM]\d{8}(\d{2})?"),  # 回乡证: H/M + 8 digits (+2 old)
    DocumentKind.TAIWAN_PERMIT: re.compile(r"\d{8}(\d{2})?"),  # 台胞证: 8 digits (10 on old cards)
    # 永居证: 3 letters (nationality) + 12 digits until 2023, then 18 characters led by 9 like a 身份证.
    DocumentKind.FOREIGN_PERMANENT_RESIDENT: re.compile(r"[A-Z]{3}\d{12}|9\d{16}[\dX]"),
}


class IdDocument(Personal, frozen=True, tag="id_document"):
    """An identity document other than the 居民身份证: 护照, 港澳 or 台湾 permits, 外国人永久居留身份证."""

    kind: DocumentKind
    number: str

    def __post_init__(self) -> None:
        form = _DOCUMENT_FORMS.get(self.kind)
        if form is None:
            raise PersonalDataError(f"unknown identity document kind {self.kind!r}")
        if not form.fullmatch(self.number):
            raise PersonalDataError(f"{self.kind} number has the wrong form")

    @classmethod
    def parse(cls, kind: DocumentKind, text: str) -> Self:
        return cls(kind, "".join(text.split()).upper())


PersonalId: TypeAlias = IdNumber | IdDocument
"""How a natural person is identified: a 居民身份证号码, or another identity document."""


# 统一社会信用代码 (GB 32100-2015): 31 characters (no I, O, Z, S, V), weights 3^i mod 31.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = tuple(3**i % 31 for i in range(17))


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a 统一社会信用代码."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[-total % 31]


class CreditCode(msgspec.Struct, frozen=True):
    """统一社会信用代码 of an enterprise or institution: public, so neither masked nor encrypted."""

    code: str

    def __post_init__(self) -> None:
        c = self.code
        if len(c) != 18 or any(ch not in _USCC_CHARS for ch in c) or not c[2:8].isdigit():
            raise PersonalDataError(
                "统一社会信用代码 must be 18 characters of 0-9 and A-Y without I, O, S, V, Z, "
                "with a 6-digit region code in characters 3–8"
            )
        if c[17] != credit_code_check_char(c[:17]):
            raise PersonalDataError("统一社会信用代码 check character is wrong (GB 32100)")

    @classmethod
    def parse(cls, text: str) -> Self:
        return cls("".join(text.split()).upper())


_MOBILE = re.compile(r"1[3-9]\d{9}")
# Area codes: 010 and 02x have three digits, the rest four; local numbers never start with 0 or 1.
_LANDLINE = re.compile(r"(010|02\d|0[3-9]\d\d)-([2-9]\d{6,7})")


class Phone(Personal, frozen=True, tag="phone"):
    """A mainland mobile (13812341234) or landline with its area code (0731-88881234)."""

    number: str

    def __post_init__(self) -> None:
        if not (_MOBILE.fullmatch(self.number) or _LANDLINE.fullmatch(self.number)):
            raise PersonalDataError("phone must be a mainland mobile (1[3-9] + 9 digits) or 0AREA-LOCAL")

    @classmethod
    def parse(cls, text: str) -> Self:
        """Accept +86/0086 prefixes, spaces, hyphens and brackets; write landlines as 0AREA-LOCAL."""
        n = re.sub(r"[\s()（）-]", "", text).removeprefix("+86").removeprefix("0086")
        if len(n) == 13 and n.startswith("86"):
            n = n[2:]
        if n.startswith("0"):
            split = 3 if n.startswith(("010", "02")) else 4
            n = f"{n[:split]}-{n[split:]}"
        return cls(n)

    @property
    def is_mobile(self) -> bool:
        return "-" not in self.number


def _plain_text(what: str, text: str, longest: int) -> None:
    if text != text.strip() or not text.isprintable() or len(text) > longest:
        raise PersonalDataError(f"{what} must be printable, trimmed and at most {longest} characters")


class PersonName(Personal, frozen=True, tag="person_name"):
    """A natural person's name as on their document: 张三, 欧阳娜娜, 买买提·艾力, John SMITH."""

    name: str

    def __post_init__(self) -> None:
        if not self.name:
            raise PersonalDataError("name must not be empty")
        _plain_text("name", self.name, 64)
        if any(c.isdigit() for c in self.name):
            raise PersonalDataError("name must not contain digits")


# Administrative divisions down to district level: province (省), prefecture (市), district (区/县/市/旗).
_NAME = "(?:(?![省市区县旗])[\u4e00-\u9fff])"
_DIVISION = re.compile(
    rf"(?P<p>{_NAME}{{2,8}}?(?:省|自治区|特别行政区))?"
    rf"(?P<c>{_NAME}{{2,10}}?(?:市|自治州|地区|盟))?"
    # A residential compound (小区), community (社区) or campus (校区) is finer than a district.
    rf"(?P<d>{_NAME}{{1,12}}?(?:自治县|自治旗|林区|特区|新区|(?<![小社校园景片街厂])区|县|市|旗))?"
)


def split_division(text: str) -> tuple[str, str]:
    """Split an address after its district level; the division is empty unless a province or city leads."""
    m = _DIVISION.match(text)
    if m is None or not (m["p"] or m["c"]):
        return "", text
    return text[: m.end()], text[m.end() :]


class Address(Personal, frozen=True, tag="address"):
    """A postal address: the division up to district level (湖南省长沙市岳麓区), then the detail."""

    division: str
    detail: str

    def __post_init__(self) -> None:
        if not (self.division or self.detail):
            raise PersonalDataError("address must not be empty")
        if split_division(self.division) != (self.division, ""):
            raise PersonalDataError(
                "address division must be 省/市/区-level names only, down to the district"
            )
        _plain_text("address detail", self.detail, 200)

    @classmethod
    def parse(cls, text: str) -> Self:
        return cls(*split_division(text.strip()))

    @property
    def text(self) -> str:
        return self.division + self.detail


class Biometric(Personal, frozen=True, tag="biometric"):
    """A reference to biometric data (a face image for 人脸核验, a fingerprint template), by content hash."""

    sensitivity: ClassVar[Sensitivity] = Sensitivity.SENSITIVE

    modality: str  # "face", "fingerprint"
    sha256: str


# Masks keep the length (except an address's detail), so a mask still looks like what it hides.


def _keep(text: str, head: int, tail: int) -> str:
    return text[:head] + "*" * (len(text) - head - tail) + text[len(text) - tail :]


def mask_id(number: str) -> str:
    """430***********1234: first 3 and last 4 kept; shorter documents keep 1 and 3; under 8, nothing."""
    n = len(number)
    return _keep(number, 3, 4) if n >= 15 else _keep(number, 1, 3) if n >= 8 else "*" * n


def mask_phone(number: str) -> str:
    """138****1234 for mobiles; 0731-****1234 for landlines; under 8 characters, nothing is kept."""
    if m := _LANDLINE.fullmatch(number):
        return f"{m[1]}-{_keep(m[2], 0, 4)}"
    n = len(number)
    return _keep(number, 3, 4) if n >= 11 else _keep(number, 0, 4) if n >= 8 else "*" * n


def mask_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧***: only the first character, so compound surnames need no list."""
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else "*" * len(name)


def mask_address(text: str) -> str:
    """湖南省长沙市岳麓区******: the division is kept, the rest becomes six stars whatever its length."""
    division, detail = split_division(text)
    return division + ("******" if detail else "")


def mask(value: Personal | CreditCode) -> str:
    """The default display of a personal value (or of a credit code, which is public)."""
    match value:
        case IdNumber(number=n) | IdDocument(number=n):
            return mask_id(n)
        case Phone(number=n):
            return mask_phone(n)
        case PersonName(name=n):
            return mask_name(n)
        case Address(division=d, detail=rest):
            return d + ("******" if rest else "")
        case Biometric(modality=m):
            return f"{m}:******"
        case CreditCode(code=c):
            return c
    raise TypeError(f"no mask for {type(value).__qualname__}")


def plain(value: Personal | CreditCode) -> str:
    """The value itself, for the few readers entitled to it (auditors, scoped departments)."""
    match value:
        case IdNumber(number=n) | IdDocument(number=n) | Phone(number=n) | PersonName(name=n):
            return n
        case Address():
            return value.text
        case Biometric(modality=m):
            return f"{m}:******"  # a template is never shown, not even to an auditor
        case CreditCode(code=c):
            return c
    raise TypeError(f"no plain form for {type(value).__qualname__}")


_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)(\+?86[- ]?)?(1[3-9]\d{9})(?!\d)")


def scrub(text: str) -> str:
    """Mask any ID number or mobile number someone typed into free text (a reason, a comment, a complaint)."""
    text = _ID_IN_TEXT.sub(lambda m: mask_id(m[0]), text)
    return _MOBILE_IN_TEXT.sub(lambda m: (m[1] or "") + mask_phone(m[2]), text)
