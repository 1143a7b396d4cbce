"""The applicant and the agent: typed personal values only, decodable by their tags, with derived ID types."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import msgspec
import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from backend.store.mapper import make_mapper
from domain.case import (
    DOCUMENT_KINDS,
    Agent,
    Applicant,
    Case,
    Enterprise,
    IdType,
    InvalidCommandError,
    Person,
    id_type_of,
)
from domain.personal import Address, CreditCode, DocumentKind, IdDocument, IdNumber, PersonName, Phone
from tests.unit.case_builders import CITIZEN, ENTERPRISE, ENTERPRISE_AGENT, MINIAPP, PERSON, T0, submission

pytestmark = pytest.mark.unit

VISITOR = Person(
    name=PersonName("John SMITH"),
    identity=IdDocument(DocumentKind.HK_MACAO_PERMIT, "H12345678"),
    phone=Phone("0731-88881234"),
    address=Address.parse("湖南省长沙市开福区湘江中路1号"),
)


@pytest.mark.parametrize("applicant", [PERSON, ENTERPRISE, VISITOR], ids=["person", "enterprise", "permit"])
def test_an_applicant_decodes_with_msgspec_by_its_tags(applicant: Applicant) -> None:
    data = msgspec.json.encode(applicant)
    assert msgspec.json.decode(data, type=Applicant) == applicant
    assert msgspec.json.decode(msgspec.json.encode(ENTERPRISE_AGENT), type=Agent) == ENTERPRISE_AGENT


@pytest.mark.parametrize(
    ("identity", "id_type"),
    [
        (IdNumber("430102199003071234"), IdType.RESIDENT_ID),
        (IdDocument(DocumentKind.PASSPORT, "E12345678"), IdType.PASSPORT),
        (IdDocument(DocumentKind.HK_MACAO_PERMIT, "H12345678"), IdType.HK_MACAO_PERMIT),
        (IdDocument(DocumentKind.TAIWAN_PERMIT, "12345678"), IdType.TAIWAN_PERMIT),
        (
            IdDocument(DocumentKind.FOREIGN_PERMANENT_RESIDENT, "USA110062080120"),
            IdType.FOREIGN_PERMANENT_RESIDENT,
        ),
        (CreditCode("91430100MA4L00000F"), IdType.USCC),
    ],
)
def test_the_id_type_follows_from_the_document(identity: Any, id_type: IdType) -> None:
    assert id_type_of(identity) is id_type
    assert (
        id_type not in DOCUMENT_KINDS
        or IdDocument.parse(DOCUMENT_KINDS[id_type], identity.number) == identity
    )


def test_every_id_type_but_two_names_a_document_kind() -> None:
    assert set(IdType) - set(DOCUMENT_KINDS) == {IdType.RESIDENT_ID, IdType.USCC}
    assert set(DOCUMENT_KINDS.values()) == set(DocumentKind)


def test_kinds_and_id_types_of_the_parties() -> None:
    assert (str(PERSON.kind), PERSON.id_type) == ("person", IdType.RESIDENT_ID)
    assert (str(ENTERPRISE.kind), ENTERPRISE.id_type) == ("enterprise", IdType.USCC)
    assert (str(VISITOR.kind), VISITOR.id_type) == ("person", IdType.HK_MACAO_PERMIT)
    assert ENTERPRISE_AGENT.id_type is IdType.RESIDENT_ID


# msgspec does not check types on construction: a plain str would reach the event and stay in clear.
BARE = {
    "name": msgspec.structs.replace(PERSON, name="张三"),
    "identity": msgspec.structs.replace(PERSON, identity="430102199003071234"),
    "phone": msgspec.structs.replace(PERSON, phone="13812341234"),
    "address": msgspec.structs.replace(PERSON, address="长沙市岳麓区麓山南路1号"),
    "enterprise name": msgspec.structs.replace(ENTERPRISE, name=" "),
    "credit code": msgspec.structs.replace(ENTERPRISE, identity="91430100MA4L00000F"),
}


@pytest.mark.parametrize("applicant", BARE.values(), ids=BARE.keys())
def test_submit_refuses_a_bare_string_in_a_personal_field(applicant: Any) -> None:
    agent = ENTERPRISE_AGENT if isinstance(applicant, Enterprise) else None
    with pytest.raises(InvalidCommandError) as refused:
        Case.submit(CITIZEN, MINIAPP, T0, **submission(applicant=applicant, agent=agent))
    assert "430102" not in str(refused.value) and "138" not in str(refused.value)  # no value echoed


@pytest.mark.parametrize(
    ("applicant", "agent"),
    [
        (ENTERPRISE, msgspec.structs.replace(ENTERPRISE_AGENT, phone="13900001111")),
        (ENTERPRISE, PERSON),  # an agent is an Agent, not an applicant
        (ENTERPRISE_AGENT, None),  # and an applicant is not an Agent
    ],
)
def test_submit_refuses_a_party_of_the_wrong_shape(applicant: Any, agent: Any) -> None:
    with pytest.raises(InvalidCommandError):
        Case.submit(CITIZEN, MINIAPP, T0, **submission(applicant=applicant, agent=agent))


def test_a_submission_in_the_plain_string_shape_is_refused_loudly() -> None:
    """Before personal fields were typed, Submitted held a plain-str Applicant. None was ever stored
    outside a test schema (no deployment, no demo cases), so no upcaster: such state must fail to
    load rather than come back half typed and be re-saved in clear in a snapshot."""
    old = {
        "kind": {"$enum": ["domain.case.values:ApplicantKind", "person"]},
        "name": "张三",
        "id_type": {"$enum": ["domain.case.values:IdType", "resident_id"]},
        "id_number": "430102199003071234",
        "phone": "13812341234",
        "address": "湖南省长沙市岳麓区麓山南路1号",
    }
    state = {"applicant": {"$struct": ["domain.case.values:Applicant", old]}, "agent": None}
    stored = StoredEvent(uuid4(), 1, "domain.case.aggregate:Case.Submitted", msgspec.json.encode(state))
    with pytest.raises(MapperDeserialisationError):
        make_mapper().to_domain_event(stored)
