"""Argument checks shared by the case commands; each raises InvalidCommandError with what was wrong."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from domain.case.errors import InvalidCommandError
from domain.case.values import (
    Agent,
    Applicant,
    ELicenceRef,
    Enterprise,
    JsonValue,
    MaterialIssue,
    MaterialSource,
    Person,
    UploadedFile,
)
from domain.personal import Address, CreditCode, IdDocument, IdNumber, PersonName, Phone

# Every date in Chinese administrative law (受理日, 补正期限, 办结日) is a Beijing date, so every
# moment is kept at UTC+8. A fixed offset, not a zoneinfo, so the event store can write it exactly.
BEIJING = timezone(timedelta(hours=8))

_SHA256 = re.compile(r"[0-9a-f]{64}")


def beijing_time(at: datetime) -> datetime:
    """The same instant at UTC+8; a naive datetime is refused, since its instant is unknown."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidCommandError(f"time {at.isoformat()} has no time zone")
    return at.astimezone(BEIJING)


def text(value: str, what: str) -> str:
    if not value.strip():
        raise InvalidCommandError(f"{what} is required")
    return value


def sha256(value: str, what: str) -> str:
    if not _SHA256.fullmatch(value):
        raise InvalidCommandError(f"{what} must be a lower-case hex sha256, got {value!r}")
    return value


def password_hash(value: str) -> str:
    # Only the hash of the 查询密码 may reach the case. A short value is almost surely the password itself.
    if len(value) < 32 or any(c.isspace() for c in value):
        raise InvalidCommandError("query_password_hash must be a password hash, never the password")
    return value


def materials(given: Mapping[str, MaterialSource], *, allow_empty: bool) -> dict[str, MaterialSource]:
    if not given and not allow_empty:
        raise InvalidCommandError("at least one material is required")
    for material_id, source in given.items():
        text(material_id, "material id")
        if isinstance(source, UploadedFile):
            sha256(source.sha256, f"material {material_id}")
        elif isinstance(source, ELicenceRef):
            text(source.licence_number, f"e-licence number of material {material_id}")
        else:
            raise InvalidCommandError(f"material {material_id} is neither a file nor an e-licence")
    return dict(given)


# The type each personal field must hold. msgspec does not check types on construction, and the
# store seals personal values by their type: a plain str in one of these would be kept in clear.
_PARTY_FIELDS: dict[type, dict[str, tuple[type, ...]]] = {
    Person: {
        "name": (PersonName,),
        "identity": (IdNumber, IdDocument),
        "phone": (Phone,),
        "address": (Address,),
    },
    Enterprise: {"name": (str,), "identity": (CreditCode,), "phone": (Phone,), "address": (Address,)},
    Agent: {"name": (PersonName,), "identity": (IdNumber, IdDocument), "phone": (Phone,)},
}


def parties(applicant: Applicant, agent: Agent | None) -> None:
    """The applicant and the agent carry typed personal values, never bare strings."""
    _typed(applicant, "applicant", (Person, Enterprise))
    if agent is not None:
        _typed(agent, "agent", (Agent,))
    if isinstance(applicant, Enterprise):
        text(applicant.name, "enterprise name")


def _typed(party: object, what: str, kinds: tuple[type, ...]) -> None:
    if type(party) not in kinds:
        raise InvalidCommandError(f"the {what} cannot be a {type(party).__name__}")
    for field, types in _PARTY_FIELDS[type(party)].items():
        if not isinstance(getattr(party, field), types):
            names = " or ".join(t.__name__ for t in types)
            raise InvalidCommandError(f"the {what}'s {field} must be a {names}")


def issues(given: Iterable[MaterialIssue]) -> tuple[MaterialIssue, ...]:
    """一次性告知: one complete list, each material once, each with its reason."""
    listed = tuple(given)
    if not listed:
        raise InvalidCommandError("a 补正告知 must list what is missing or incorrect")
    seen: set[str] = set()
    for issue in listed:
        text(issue.material_id, "material id")
        text(issue.reason, f"reason for material {issue.material_id}")
        if issue.material_id in seen:
            raise InvalidCommandError(f"material {issue.material_id} is listed twice; give one reason")
        seen.add(issue.material_id)
    return listed


def json_object(form: Mapping[str, Any]) -> dict[str, JsonValue]:
    """Form data must survive a JSON round trip unchanged."""
    _json(dict(form), "form")
    return copy.deepcopy(dict(form))  # the caller keeps its own objects; the event must never change


def _json(value: Any, path: str) -> None:
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidCommandError(f"{path} is not a finite number")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _json(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidCommandError(f"{path} has a key that is not a string: {key!r}")
            _json(item, f"{path}.{key}")
    else:
        raise InvalidCommandError(f"{path} holds a {type(value).__name__}, which JSON cannot carry")
