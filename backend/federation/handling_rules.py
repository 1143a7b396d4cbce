"""办理地: whether this city takes a 通办 handoff on, and the application rebuilt as domain values.

Pure: the handler (handling.py) reads the catalogue and hands what it found here. A
refusal is a HandoffNotTaken whose text is the reason sent back to the receiving city,
in Chinese for its window and the applicant and in English for its engineers. A reason
names the field at fault, never a personal value.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar

from backend.federation.kinds import Material, Party
from domain.case import (
    Agent,
    Applicant,
    Enterprise,
    IdType,
    MaterialSource,
    Person,
    UploadedFile,
    parse_credit_code,
    parse_person_id,
)
from domain.catalogue_spec import MODE_LABELS, TongbanMode
from domain.personal import (
    Address,
    PersonalDataError,
    PersonName,
    Phone,
)
from projections.catalogue import ServiceGuide

T = TypeVar("T")

# Never change it: the cases already opened for handoffs were named under it.
HANDLED_CASES = uuid.UUID("2b0f8f64-5d1e-5a3c-8e27-0c4d9b7a6e13")


class HandoffNotTaken(Exception):
    """This city does not take the handoff on; str() is the reason sent back."""


def handled_case_id(partner: str, handoff: uuid.UUID) -> uuid.UUID:
    """Our case for a partner's handoff: the same however often the request is applied.

    The sender's region is part of the name, so a handoff id another city happens to
    reuse can never land on a case that is not its own.
    """
    return uuid.uuid5(HANDLED_CASES, f"{partner}/{handoff}")


def served_item(code: str, mode: TongbanMode, guide: ServiceGuide | None, *, is_bundle: bool) -> ServiceGuide:
    """The catalogue entry, if it is an active single item whose 通办 list offers `mode`.

    The tongban list names partner cities from our catalogue's point of view; which city
    sent the handoff is the partner registry's business (its keys), not the item's.
    """
    if is_bundle:
        raise HandoffNotTaken(
            f"本市暂不跨城受理一件事 {code} / bundle {code} is not taken across cities here"
        )
    if guide is None or guide.status != "active":
        raise HandoffNotTaken(f"本市事项清单中没有在办事项 {code} / no active item {code} in our catalogue")
    if not any(partner.mode == mode for partner in guide.spec.tongban):
        raise HandoffNotTaken(
            f"本市不以{MODE_LABELS[mode]}受理事项 {code}（{guide.spec.name}）"
            f" / item {code} is not served in mode {mode} here"
        )
    return guide


def parties(applicant: Party, agent: Party | None) -> tuple[Applicant, Agent | None]:
    """The applicant and agent as domain values, parsed as the API parses its own."""
    return _applicant(applicant), None if agent is None else _agent(agent)


def materials(given: Sequence[Material]) -> dict[str, MaterialSource]:
    """The materials by id, each a file referenced by its sha256.

    The message carries only the references; the handler fetches the files themselves
    from the receiving city (material_files.py) before it opens the case.
    """
    by_id: dict[str, MaterialSource] = {}
    for material in given:
        if material.material_id in by_id:
            raise HandoffNotTaken(
                f"材料 {material.material_id} 重复提交 / material {material.material_id} is listed twice"
            )
        by_id[material.material_id] = UploadedFile(material.sha256)
    return by_id


def _applicant(party: Party) -> Applicant:
    address = _field("applicant", "address", lambda: Address.parse(_present(party.address)))
    phone = _field("applicant", "phone", lambda: Phone.parse(party.phone))
    if party.kind == "enterprise":
        code = _field("applicant", "idNumber", lambda: _identity(parse_credit_code, party))
        return Enterprise(name=party.name.strip(), identity=code, phone=phone, address=address)
    name = _field("applicant", "name", lambda: PersonName(party.name.strip()))
    identity = _field("applicant", "idNumber", lambda: _identity(parse_person_id, party))
    return Person(name=name, identity=identity, phone=phone, address=address)


def _agent(party: Party) -> Agent:
    if party.kind != "person":
        raise HandoffNotTaken("经办人须为自然人 / the agent must be a natural person")
    name = _field("agent", "name", lambda: PersonName(party.name.strip()))
    identity = _field("agent", "idNumber", lambda: _identity(parse_person_id, party))
    phone = _field("agent", "phone", lambda: Phone.parse(party.phone))
    return Agent(name=name, identity=identity, phone=phone)


_WHO = {"applicant": "申请人", "agent": "经办人"}


def _field(who: str, field: str, parse: Callable[[], T]) -> T:
    try:
        return parse()
    except PersonalDataError as exc:  # its message never holds the value
        raise HandoffNotTaken(f"{_WHO[who]}信息无效（{who}.{field}）/ invalid {who}.{field}: {exc}") from None


def _present(address: str | None) -> str:
    if address is None:
        raise PersonalDataError("an address is required")
    return address


def _id_type(text: str) -> IdType:
    try:
        return IdType(text)
    except ValueError:
        raise PersonalDataError(f"no identity document type {text!r}") from None


def _identity(parse: Callable[[IdType, str], T], party: Party) -> T:
    return parse(_id_type(party.id_type), party.id_number)
