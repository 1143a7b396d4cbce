"""The values a case is made of: who acted and through which channel, for whom, with which materials.

An applicant's and an agent's personal fields are `domain.personal` values: whole
here, because the domain needs them whole, and sealed at rest and masked in read
models by the edges, which find them by their type. Plain `str` would slip past both.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, TypeAlias

import msgspec

from domain.personal import (
    Address,
    CreditCode,
    DocumentKind,
    IdDocument,
    IdNumber,
    PersonalDataError,
    PersonalId,
    PersonName,
    Phone,
)


class Role(StrEnum):
    CITIZEN = "citizen"  # 自然人, applying for themselves
    AGENT = "agent"  # 经办人, acting for an enterprise (法人) or for another person
    CLERK = "clerk"  # 综合窗口: the front desk that receives and accepts (前台综合受理)
    OFFICER = "officer"  # department back office: 承办 → 审核 → 批准
    SYSTEM = "system"  # timers, 秒批 rules, defaults
    PARTNER = "partner"  # another city's deployment, for 通办
    MANAGER = "manager"  # 大厅管理员: a hall's windows, slots and queue
    SUPERVISOR = "supervisor"  # 政务服务管理 / 好差评 administration: decides 差评 appeals
    AUDITOR = "auditor"  # 电子监察: reads everything, and every personal read is recorded


class Channel(StrEnum):
    MINIAPP = "miniapp"
    HALL_WINDOW = "hall_window"
    KIOSK = "kiosk"  # self-service terminal in a hall
    PARTNER_CITY = "partner_city"
    SYSTEM = "system"


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Whoever issued a command; every event records one."""

    id: str
    role: Role
    name: str | None = None
    department: str | None = None  # officers sign for one department; tasks check it
    hall: str | None = None  # clerks sit in one hall (行政服务中心, 便民服务中心)


class ApplicantKind(StrEnum):
    PERSON = "person"  # 自然人
    ENTERPRISE = "enterprise"  # 法人 and other organisations, always through an agent


class IdType(StrEnum):
    """The kind of 证件 an applicant is identified by, as the API and the 一人一档 key name it."""

    RESIDENT_ID = "resident_id"  # 居民身份证
    PASSPORT = "passport"
    HK_MACAO_PERMIT = "hk_macao_permit"  # 港澳居民来往内地通行证
    TAIWAN_PERMIT = "taiwan_permit"  # 台湾居民来往大陆通行证
    FOREIGN_PERMANENT_RESIDENT = "foreign_permanent_resident"  # 外国人永久居留身份证
    USCC = "uscc"  # 统一社会信用代码, for enterprises


DOCUMENT_KINDS: Mapping[IdType, DocumentKind] = MappingProxyType(
    {
        IdType.PASSPORT: DocumentKind.PASSPORT,
        IdType.HK_MACAO_PERMIT: DocumentKind.HK_MACAO_PERMIT,
        IdType.TAIWAN_PERMIT: DocumentKind.TAIWAN_PERMIT,
        IdType.FOREIGN_PERMANENT_RESIDENT: DocumentKind.FOREIGN_PERMANENT_RESIDENT,
    }
)
_ID_TYPES = {kind: id_type for id_type, kind in DOCUMENT_KINDS.items()}


def id_type_of(identity: PersonalId | CreditCode) -> IdType:
    match identity:
        case IdNumber():
            return IdType.RESIDENT_ID
        case IdDocument(kind=kind):
            return _ID_TYPES[kind]
        case CreditCode():
            return IdType.USCC
    raise TypeError(f"{type(identity).__qualname__} identifies nobody")


def parse_person_id(id_type: IdType, text: str) -> PersonalId:
    """A natural person's identity from typed-in text: the inverse of id_type_of; PersonalDataError if bad."""
    if id_type is IdType.RESIDENT_ID:
        return IdNumber.parse(text)
    kind = DOCUMENT_KINDS.get(id_type)
    if kind is None:
        raise PersonalDataError(
            "a natural person is identified by an identity document, not a 统一社会信用代码"
        )
    return IdDocument.parse(kind, text)


def parse_credit_code(id_type: IdType, text: str) -> CreditCode:
    """An enterprise's 统一社会信用代码 from typed-in text; PersonalDataError if bad."""
    if id_type is not IdType.USCC:
        raise PersonalDataError("an enterprise is identified by its 统一社会信用代码 (idType uscc)")
    return CreditCode.parse(text)


# The parties are tagged by kind, so `Applicant` decodes with msgspec (a 通办 handoff carries one).


class Person(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag=ApplicantKind.PERSON.value):
    """自然人 applying for themselves (or through an agent): every field is personal information."""

    kind: ClassVar[ApplicantKind] = ApplicantKind.PERSON

    name: PersonName
    identity: PersonalId
    phone: Phone
    address: Address

    @property
    def id_type(self) -> IdType:
        return id_type_of(self.identity)


class Enterprise(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag=ApplicantKind.ENTERPRISE.value
):
    """法人 or another organisation: its name and 统一社会信用代码 are public (公示), its contacts are not."""

    kind: ClassVar[ApplicantKind] = ApplicantKind.ENTERPRISE

    name: str
    identity: CreditCode
    phone: Phone  # a contact's number
    address: Address

    @property
    def id_type(self) -> IdType:
        return IdType.USCC


Applicant: TypeAlias = Person | Enterprise


class Agent(msgspec.Struct, frozen=True, kw_only=True):
    """经办人: the natural person who applies on the applicant's behalf."""

    name: PersonName
    identity: PersonalId
    phone: Phone

    @property
    def id_type(self) -> IdType:
        return id_type_of(self.identity)


class BundleChild(msgspec.Struct, frozen=True, kw_only=True):
    """One item of an 一件事 bundle and the department that handles it."""

    item_code: str
    department: str


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """按责转办: the items one department is responsible for in this case."""

    department: str
    item_codes: tuple[str, ...]


class UploadedFile(msgspec.Struct, frozen=True, tag="file"):
    """A material uploaded by the applicant, referenced by the sha256 of its bytes."""

    sha256: str


class ELicenceRef(msgspec.Struct, frozen=True, tag="e_licence"):
    """A material proven by an existing 电子证照 instead of a file."""

    licence_number: str
    issuer: str | None = None


MaterialSource: TypeAlias = UploadedFile | ELicenceRef


class MaterialIssue(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a 补正告知: which material, and what is missing or wrong with it."""

    material_id: str
    reason: str


class DayUnit(StrEnum):
    WORKING_DAY = "working_day"  # 工作日
    NATURAL_DAY = "natural_day"  # 自然日


class Duration(msgspec.Struct, frozen=True):
    """An amount of days as the law states it; the calendar turns it into dates elsewhere."""

    amount: int
    unit: DayUnit


JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
