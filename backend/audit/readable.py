"""Events and aggregates as plain JSON values for auditors, with every personal value revealed.

Everywhere else personal values are masked (430***********1234); an auditor reads them
whole, which is why every audit view is recorded as an access first. The conversion is
generic, so an event added later shows in full without a line here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from domain.personal import Address, Biometric, IdDocument, IdNumber, Personal, PersonName, Phone

# What every stored event carries besides its own facts; audit views show these apart.
ENVELOPE = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "actor", "channel"}
)
_sort_key = msgspec.json.Encoder(order="deterministic").encode


def reveal(value: Personal) -> str:
    """The whole value, as written on the document: 430102199003071234, 湖南省长沙市岳麓区麓山南路1号."""
    match value:
        case IdNumber(number=text) | Phone(number=text) | PersonName(name=text):
            return text
        case IdDocument(kind=kind, number=number):
            return f"{kind} {number}"  # 护照 E12345678: the number alone would not say which document
        case Address():
            return value.text
        case Biometric(modality=modality, sha256=digest):
            return f"{modality}:{digest}"  # a reference to the template, never the template
    # A personal type added later still shows, field by field, rather than failing an audit.
    return " ".join(str(getattr(value, name)) for name in value.__struct_fields__)


def readable(value: Any) -> Any:
    """JSON-ready builtins: Structs as dicts (tag first, fields in order), times in ISO 8601, sets sorted."""
    return msgspec.to_builtins(_revealed(value))


def event_facts(event: Any) -> dict[str, Any]:
    """What an event adds to its envelope (who, when, through which channel), revealed."""
    facts: dict[str, Any] = readable({k: v for k, v in vars(event).items() if k not in ENVELOPE})
    return facts


def aggregate_state(aggregate: Any) -> dict[str, Any]:
    """Every public attribute of a rebuilt aggregate, revealed (the library's `_id`, `_version` left out)."""
    state: dict[str, Any] = readable({k: v for k, v in vars(aggregate).items() if not k.startswith("_")})
    return state


def _revealed(v: Any) -> Any:
    if isinstance(v, Personal):
        return reveal(v)
    if isinstance(v, msgspec.Struct):
        config = v.__struct_config__
        fields = {name: _revealed(getattr(v, name)) for name in v.__struct_fields__}
        return {config.tag_field: config.tag, **fields} if config.tag_field else fields
    if isinstance(v, dict):
        return {_key(k): _revealed(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_revealed(x) for x in v]
    if isinstance(v, set | frozenset):
        return sorted((readable(x) for x in v), key=_sort_key)
    return v  # a leaf msgspec knows: str, numbers, times, enums, UUIDs, bytes


def _key(k: Any) -> str:
    return k if isinstance(k, str) else str(msgspec.to_builtins(k))
