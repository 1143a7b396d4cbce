"""The applicant and the agent of a submission: wire text checked into domain.personal values.

Each field is parsed by its domain type and kept as that type, so the store seals it
and the read models mask it. A failure is named by its field and never echoes the
value; one 400 lists every bad field at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from litestar.exceptions import ValidationException

from domain.case import (
    Agent,
    Applicant,
    ApplicantKind,
    Enterprise,
    Person,
    parse_credit_code,
    parse_person_id,
)
from domain.personal import (
    Address,
    PersonalDataError,
    PersonName,
    Phone,
)
from miniapp_api.case_schemas import AgentIn, ApplicantIn

T = TypeVar("T")


class PersonalFields:
    """Collects per-field failures, so every bad field is reported, not only the first."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def check(self, field: str, parse: Callable[[], T]) -> T | None:
        try:
            return parse()
        except PersonalDataError as exc:
            self.errors.append({"key": field, "message": str(exc), "source": "body"})
            return None

    def failure(self) -> ValidationException:
        names = ", ".join(e["key"] for e in self.errors)
        return ValidationException(f"invalid personal data: {names}", extra=self.errors)


def parse_parties(applicant: ApplicantIn, agent: AgentIn | None) -> tuple[Applicant, Agent | None]:
    """The submission's applicant and agent, or a ValidationException naming each invalid field."""
    fields = PersonalFields()
    parsed = _applicant(applicant, fields)
    parsed_agent = None if agent is None else _agent(agent, fields)
    if parsed is None or (agent is not None and parsed_agent is None):
        raise fields.failure()
    return parsed, parsed_agent


def _applicant(body: ApplicantIn, fields: PersonalFields) -> Applicant | None:
    if body.kind is ApplicantKind.ENTERPRISE:
        code = fields.check("applicant.idNumber", lambda: parse_credit_code(body.id_type, body.id_number))
        phone = fields.check("applicant.phone", lambda: Phone.parse(body.phone))
        address = fields.check("applicant.address", lambda: Address.parse(body.address))
        if code is None or phone is None or address is None:
            return None
        # Public (公示), so a plain str; the case refuses a blank one.
        return Enterprise(name=body.name.strip(), identity=code, phone=phone, address=address)
    name = fields.check("applicant.name", lambda: PersonName(body.name.strip()))
    identity = fields.check("applicant.idNumber", lambda: parse_person_id(body.id_type, body.id_number))
    phone = fields.check("applicant.phone", lambda: Phone.parse(body.phone))
    address = fields.check("applicant.address", lambda: Address.parse(body.address))
    if name is None or identity is None or phone is None or address is None:
        return None
    return Person(name=name, identity=identity, phone=phone, address=address)


def _agent(body: AgentIn, fields: PersonalFields) -> Agent | None:
    name = fields.check("agent.name", lambda: PersonName(body.name.strip()))
    identity = fields.check("agent.idNumber", lambda: parse_person_id(body.id_type, body.id_number))
    phone = fields.check("agent.phone", lambda: Phone.parse(body.phone))
    if name is None or identity is None or phone is None:
        return None
    return Agent(name=name, identity=identity, phone=phone)
