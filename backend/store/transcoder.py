"""Event state as compact UTF-8 JSON that carries its own types, so the Mapper can rebuild events exactly.

eventsourcing's Mapper hands the transcoder a bare dict and gets a bare dict back,
with no schema in between, so every value that plain JSON would blur is written
as a one-key object whose key names its type. Auditors' exports contain this
format; it is stable, and may only grow new tags.

Plain JSON stays plain: str, int (any size), finite float, bool, None, list, and
dicts whose keys are all str (in insertion order). Everything else is tagged:

    {"$tuple": [v, ...]}              tuple
    {"$set": [v, ...]}                set        elements in a canonical order, so
    {"$frozenset": [v, ...]}          frozenset  equal sets give identical bytes
    {"$dict": [[k, v], ...]}          dict with any non-str key, in insertion order
    {"$esc": {"$k": v}}               a user dict whose only key starts with "$"
    {"$bytes": "aGk="}                bytes, standard base64 with padding
    {"$float": "nan"}                 non-finite float: "nan", "inf" or "-inf"
    {"$uuid": "0f0c…-…"}              uuid.UUID, canonical hyphenated lower case
    {"$datetime": "2024-05-01T08:30:00.000001+08:00"}   datetime.isoformat(); naive has no offset
    {"$date": "2024-05-01"}           date.isoformat()
    {"$time": "08:30:00+08:00"}       time.isoformat()
    {"$timedelta": [d, s, us]}        timedelta(days, seconds, microseconds), normalised
    {"$decimal": "1.50E+3"}           str(Decimal): exact digits, exponent and sign
    {"$enum": ["topic", value]}       Enum member: its class's topic and its value
    {"$struct": ["topic", {f: v}]}    msgspec.Struct: its topic and every field by attribute name

Values inside tags are encoded recursively by the same rules. A topic is
eventsourcing's `module:QualName`, resolved with `resolve_topic`, so a moved class
keeps working once its old topic is registered. Datetimes and times may be naive
or carry a fixed-offset `datetime.timezone`; other tzinfo kinds (zoneinfo) are
refused rather than silently flattened to an offset.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import get_topic, resolve_topic

_PLAIN = frozenset({str, int, bool, type(None)})  # passed through untouched, the common case
_sort_key = msgspec.json.Encoder().encode  # canonical order of set elements: by their own JSON


# Encoding: Python value -> msgspec-encodable value, tags included.


def _walk(v: Any) -> Any:
    t = type(v)
    if t in _PLAIN:
        return v
    encode = _ENCODERS.get(t) or _learn(t)
    return encode(v)


def _enc_dict(d: dict[Any, Any]) -> Any:
    out = {}
    for k, v in d.items():
        if type(k) is not str:
            return {"$dict": [[_walk(k), _walk(v)] for k, v in d.items()]}
        out[k] = v if type(v) in _PLAIN else _walk(v)
    if len(out) == 1 and next(iter(out)).startswith("$"):
        return {"$esc": out}
    return out


def _enc_list(vs: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [v if type(v) in _PLAIN else _walk(v) for v in vs]


def _enc_set(vs: set[Any] | frozenset[Any]) -> list[Any]:
    # A set's iteration order depends on hashing (and PYTHONHASHSEED); sorting keeps the bytes stable.
    return sorted(_enc_list(list(vs)), key=_sort_key)


def _enc_float(v: float) -> Any:
    return v if math.isfinite(v) else {"$float": repr(v)}


def _check_tz(v: datetime | time) -> None:
    tz = v.tzinfo
    if tz is not None and type(tz) is not timezone:
        raise TypeError(
            f"cannot encode {type(v).__name__} with tzinfo {type(tz).__qualname__} ({tz!r}): "
            "only naive values or fixed-offset datetime.timezone round-trip exactly"
        )


def _enc_datetime(v: datetime) -> Any:
    _check_tz(v)
    return {"$datetime": v.isoformat()}


def _enc_time(v: time) -> Any:
    _check_tz(v)
    return {"$time": v.isoformat()}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    dict: _enc_dict,
    list: _enc_list,
    float: _enc_float,
    tuple: lambda v: {"$tuple": _enc_list(v)},
    set: lambda v: {"$set": _enc_set(v)},
    frozenset: lambda v: {"$frozenset": _enc_set(v)},
    bytes: lambda v: {"$bytes": v},  # msgspec writes bytes as base64 itself
    UUID: lambda v: {"$uuid": v},  # ... and UUIDs in canonical form
    datetime: _enc_datetime,
    date: lambda v: {"$date": v.isoformat()},
    time: _enc_time,
    timedelta: lambda v: {"$timedelta": [v.days, v.seconds, v.microseconds]},
    Decimal: lambda v: {"$decimal": str(v)},
}


def _topic(cls: type) -> str:
    topic = get_topic(cls)
    if "<locals>" in topic:
        # It would resolve in this process only; another process could never read the event back.
        raise TypeError(f"cannot encode {cls.__qualname__}: a class defined inside a function has no topic")
    return topic


def _learn(t: type) -> Callable[[Any], Any]:
    """Build the encoder for an Enum, UUID subclass or Struct class once, and remember it by exact type."""
    if issubclass(t, Enum):
        enum_topic = _topic(t)

        def encode(v: Any) -> Any:
            return {"$enum": [enum_topic, _walk(v.value)]}

    elif issubclass(t, UUID):
        # asyncpg's own UUID subclass: the id of every aggregate loaded from the store is one,
        # and a command that records another aggregate's id (a seat's appointment) passes it on.
        def encode(v: Any) -> Any:
            return {"$uuid": UUID(bytes=v.bytes)}

    elif issubclass(t, msgspec.Struct):
        struct_topic, fields = _topic(t), t.__struct_fields__

        def encode(v: Any) -> Any:
            out = {}
            for f in fields:
                x = getattr(v, f)
                out[f] = x if type(x) in _PLAIN else _walk(x)
            return {"$struct": [struct_topic, out]}

    else:
        raise TypeError(f"MsgspecTranscoder cannot encode values of type {t.__module__}.{t.__qualname__}")
    _ENCODERS[t] = encode
    return encode


# Decoding: msgspec's plain objects -> Python values. Fresh from the decoder, so mutated in place.


def _unwalk(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return _dec_dict(v)
    if t is list:
        return _dec_list(v)
    return v


def _dec_values(d: dict[str, Any]) -> dict[str, Any]:
    for k, v in d.items():
        t = type(v)
        if t is dict:
            d[k] = _dec_dict(v)
        elif t is list:
            _dec_list(v)
    return d


def _dec_dict(d: dict[str, Any]) -> Any:
    if len(d) == 1:
        ((k, v),) = d.items()
        if k.startswith("$"):
            try:
                decode = _DECODERS[k]
            except KeyError:
                raise ValueError(f"unknown transcoder tag {k!r}") from None
            return decode(v)
    return _dec_values(d)


def _dec_list(vs: list[Any]) -> list[Any]:
    for i, v in enumerate(vs):
        t = type(v)
        if t is dict:
            vs[i] = _dec_dict(v)
        elif t is list:
            _dec_list(v)
    return vs


_classes: dict[tuple[str, type], Any] = {}
C = TypeVar("C", Enum, msgspec.Struct)


def _resolve(topic: str, base: type[C]) -> type[C]:
    # Checking the base keeps a forged topic from calling an arbitrary function.
    cls: type[C] | None = _classes.get((topic, base))
    if cls is None:
        found = resolve_topic(topic)
        if not (isinstance(found, type) and issubclass(found, base)):
            raise ValueError(f"topic {topic!r} is not a {base.__qualname__} class")
        cls = _classes[topic, base] = found
    return cls


def _dec_enum(v: list[Any]) -> Enum:
    topic, value = v
    return _resolve(topic, Enum)(_unwalk(value))


def _dec_struct(v: list[Any]) -> msgspec.Struct:
    topic, fields = v
    return _resolve(topic, msgspec.Struct)(**_dec_values(fields))


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$esc": _dec_values,
    "$tuple": lambda v: tuple(_dec_list(v)),
    "$set": lambda v: set(_dec_list(v)),
    "$frozenset": lambda v: frozenset(_dec_list(v)),
    "$dict": lambda v: {_unwalk(k): _unwalk(x) for k, x in v},
    "$bytes": lambda v: base64.b64decode(v, validate=True),
    "$float": float,
    "$uuid": lambda v: msgspec.convert(v, UUID),  # three times faster than UUID(v)
    "$datetime": datetime.fromisoformat,
    "$date": date.fromisoformat,
    "$time": time.fromisoformat,
    "$timedelta": lambda v: timedelta(*v),
    "$decimal": Decimal,
    "$enum": _dec_enum,
    "$struct": _dec_struct,
}


class MsgspecTranscoder(Transcoder):
    """Encodes event state as tagged JSON (see the module docstring) and decodes it exactly."""

    def __init__(self) -> None:
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder().decode

    def encode(self, obj: Any) -> bytes:
        return self._encode(_walk(obj))

    def decode(self, data: bytes) -> Any:
        return _unwalk(self._decode(data))
