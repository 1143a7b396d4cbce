"""The transcoder gives back exactly what it was given (value and type), in bytes that never vary."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import msgspec
import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.domain import Aggregate, Snapshot, event
from eventsourcing.utils import Environment
from hypothesis import given
from hypothesis import strategies as st

from backend.store.mapper import make_mapper
from backend.store.transcoder import MsgspecTranscoder

pytestmark = pytest.mark.unit

T = MsgspecTranscoder()
CST = timezone(timedelta(hours=8))
ID = UUID("0f0c6a9e-3b1d-4c2a-9d7e-5a4b3c2d1e0f")
HERE = "tests.unit.test_transcoder"


class Light(Enum):
    GREEN = "green"
    YELLOW = ("yellow", 3)


class Priority(IntEnum):
    NORMAL = 1
    URGENT = 2


class Channel(StrEnum):
    SMS = "sms"
    WECHAT = "wechat"


class Applicant(msgspec.Struct, frozen=True):
    name: str
    id_number: str


class Fee(msgspec.Struct):
    amount: Decimal
    paid_at: datetime | None = None
    receipt_id: UUID | None = None


class Bundle(msgspec.Struct):
    applicant: Applicant
    fees: list[Fee]
    body: Any = None


def assert_same(got: Any, want: Any) -> None:
    """Equal, and of the same type all the way down (so 1 is not True, a tuple is not a list)."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, dict):
        assert list(got) == list(want)  # insertion order survives too
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
            assert_same(got[g], want[w])
    elif isinstance(want, list | tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
    elif isinstance(want, set | frozenset):
        assert got == want
        by_value = {g: g for g in got}
        for w in want:
            assert_same(by_value[w], w)
    elif isinstance(want, msgspec.Struct):
        for f in want.__struct_fields__:
            assert_same(getattr(got, f), getattr(want, f))
    elif isinstance(want, Enum):
        assert got is want
    elif isinstance(want, float) and math.isnan(want):
        assert math.isnan(got)
    elif isinstance(want, Decimal):
        assert got.as_tuple() == want.as_tuple()  # 1.0 and 1.00 are equal but not the same
    elif isinstance(want, datetime | time):
        assert got == want and got.utcoffset() == want.utcoffset()
        assert (got.tzinfo is None) == (want.tzinfo is None)
    else:
        assert got == want


def round_trip(value: Any) -> Any:
    return T.decode(T.encode(value))


ROUND_TRIPS = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "negative int": -17,
    "big int": 2**200,
    "big negative int": -(10**80) - 1,
    "float": 0.1,
    "integral float": 2.0,
    "negative zero": -0.0,
    "tiny float": 5e-324,
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "str": "长沙通 ✓",
    "str like a tag": "$uuid",
    "bytes": b"\x00\xffhi",
    "empty bytes": b"",
    "list": [1, "a", None],
    "tuple": (1, (2, 3), [4]),
    "empty tuple": (),
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", "b"}),
    "empty set": set(),
    "set of frozensets": {frozenset({1}), frozenset({1, 2})},
    "dict": {"a": 1, "b": [True, None]},
    "empty dict": {},
    "int keys": {1: "one", 2: "two"},
    "mixed keys": {"a": 1, 2: "b", ID: 3, date(2024, 5, 1): 4, (1, 2): 5},
    "bool and int keys": {True: "t", 2: "two"},
    "escaped": {"$uuid": "not a uuid"},
    "escaped unknown tag": {"$anything": {"$nested": 1}},
    "escaped empty key": {"$": 1},
    "two dollar keys stay plain": {"$a": 1, "$b": 2},
    "uuid": ID,
    "aware datetime": datetime(2024, 5, 1, 8, 30, 0, 123456, tzinfo=CST),
    "utc datetime": datetime(2024, 5, 1, 0, 0, tzinfo=UTC),
    "odd offset datetime": datetime(
        2024, 5, 1, tzinfo=timezone(-timedelta(hours=3, seconds=7, microseconds=1))
    ),
    "naive datetime": datetime(1, 1, 1, 0, 0, 0, 1),
    "date": date(2024, 2, 29),
    "time": time(8, 30, 0, 5),
    "aware time": time(23, 59, 59, 999999, tzinfo=CST),
    "timedelta": timedelta(days=5),
    "negative timedelta": timedelta(microseconds=-1),
    "decimal": Decimal("12.50"),
    "decimal exponent": Decimal("1.5E+3"),
    "decimal negative exponent": Decimal("-7E-12"),
    "decimal negative zero": Decimal("-0.00"),
    "decimal nan": Decimal("NaN"),
    "decimal snan": Decimal("-sNaN12"),
    "decimal infinity": Decimal("-Infinity"),
    "enum": Light.GREEN,
    "enum with tuple value": Light.YELLOW,
    "int enum": Priority.URGENT,
    "str enum": Channel.WECHAT,
    "enum keys": {Channel.SMS: 1, Channel.WECHAT: 2},
    "struct": Applicant("张三", "430102199001011234"),
    "nested structs": Bundle(
        Applicant("李四", "430102199001015678"),
        [Fee(Decimal("10.00"), datetime(2024, 5, 1, 9, tzinfo=CST), ID), Fee(Decimal("0"))],
        body={"pages": (1, 2), "light": Light.GREEN},
    ),
    "struct holding a dollar dict": Bundle(Applicant("a", "b"), [], body={"$struct": 1}),
}


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_round_trip_keeps_value_and_type(value: Any) -> None:
    assert_same(round_trip(value), value)
    assert_same(round_trip({"state": value}), {"state": value})
    assert_same(round_trip([value, (value,)]), [value, (value,)])


ENCODINGS = [
    ({"a": 1, "b": "中", "c": [1.5, None, True]}, '{"a":1,"b":"中","c":[1.5,null,true]}'),
    (2**70, "1180591620717411303424"),
    ((1, 2), '{"$tuple":[1,2]}'),
    ({"b", "a"}, '{"$set":["a","b"]}'),
    (frozenset({2, 1}), '{"$frozenset":[1,2]}'),
    ({1: "x"}, '{"$dict":[[1,"x"]]}'),
    ({"$uuid": 1}, '{"$esc":{"$uuid":1}}'),
    (b"hi", '{"$bytes":"aGk="}'),
    (math.nan, '{"$float":"nan"}'),
    (-math.inf, '{"$float":"-inf"}'),
    (ID, '{"$uuid":"0f0c6a9e-3b1d-4c2a-9d7e-5a4b3c2d1e0f"}'),
    (datetime(2024, 5, 1, 8, 30, 0, 1, tzinfo=CST), '{"$datetime":"2024-05-01T08:30:00.000001+08:00"}'),
    (datetime(2024, 5, 1, 8, 30), '{"$datetime":"2024-05-01T08:30:00"}'),
    (date(2024, 5, 1), '{"$date":"2024-05-01"}'),
    (time(8, 30, tzinfo=CST), '{"$time":"08:30:00+08:00"}'),
    (timedelta(days=-1, seconds=5, microseconds=7), '{"$timedelta":[-1,5,7]}'),
    (Decimal("1.50E+3"), '{"$decimal":"1.50E+3"}'),
    (Priority.URGENT, f'{{"$enum":["{HERE}:Priority",2]}}'),
    (Light.YELLOW, f'{{"$enum":["{HERE}:Light",{{"$tuple":["yellow",3]}}]}}'),
    (Applicant("张三", "1"), f'{{"$struct":["{HERE}:Applicant",{{"name":"张三","id_number":"1"}}]}}'),
]


@pytest.mark.parametrize(("value", "text"), ENCODINGS, ids=[t for _, t in ENCODINGS])
def test_the_stored_format_is_the_documented_one(value: Any, text: str) -> None:
    """Auditors' exports contain these bytes, so they must not drift."""
    assert T.encode(value) == text.encode("utf-8")


@dataclass
class Receipt:
    number: str


def test_unsupported_types_are_refused_by_name() -> None:
    cases = [
        (object(), "builtins.object"),
        (bytearray(b"x"), "builtins.bytearray"),
        (1 + 2j, "builtins.complex"),
        (OrderedDict(a=1), "collections.OrderedDict"),
        (Receipt("1"), "Receipt"),
        ({"nested": [{"deep": (Receipt("1"),)}]}, "Receipt"),
        (msgspec.UNSET, "UnsetType"),
        (datetime(2024, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai")), "ZoneInfo"),
        (time(8, tzinfo=ZoneInfo("Asia/Shanghai")), "ZoneInfo"),
    ]
    for value, named in cases:
        with pytest.raises(TypeError, match=named):
            T.encode(value)


def test_a_class_without_a_resolvable_topic_is_refused() -> None:
    class Local(Enum):
        A = 1

    with pytest.raises(TypeError, match="inside a function"):
        T.encode(Local.A)


@pytest.mark.parametrize(
    "data",
    [
        b'{"$nope":1}',
        b'{"$enum":["os:system","echo pwned"]}',
        b'{"$struct":["builtins:dict",{"a":1}]}',
        b'{"$bytes":"not base64!"}',
    ],
)
def test_bad_or_forged_tags_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        T.decode(data)


def test_equal_sets_give_identical_bytes_whatever_the_hash_seed() -> None:
    """The hash chain is verified in other processes, where str hashes, and so set order, differ."""
    program = (
        "import sys; from backend.store.transcoder import MsgspecTranscoder as T; "
        "sys.stdout.buffer.write(T().encode({'tags': {f'材料{i}' for i in range(50)}}))"
    )
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program],
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outputs == {T.encode({"tags": {f"材料{i}" for i in reversed(range(50))}})}


# Properties over arbitrary nestings of every supported type.

# Whole minutes: real UTC offsets are, and ISO 8601 (hence the stored form) has no finer offsets.
offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(lambda m: timedelta(minutes=m))
fixed_zones = st.one_of(st.none(), st.just(UTC), st.builds(timezone, offsets))
hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
    st.uuids(),
    st.datetimes(timezones=fixed_zones),
    st.dates(),
    st.times(timezones=fixed_zones),
    st.timedeltas(),
    st.decimals(allow_nan=False),
    st.sampled_from([*Light, *Priority, *Channel]),
    st.builds(Applicant, st.text(), st.text()),
)
leaves = st.one_of(hashable_leaves, st.floats(), st.decimals())
hashables = st.recursive(
    hashable_leaves, lambda kids: st.one_of(st.lists(kids).map(tuple), st.frozensets(kids)), max_leaves=5
)
keys = st.one_of(st.text(), st.text().map("$".__add__))


def containers(kids: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(kids),
        st.lists(kids).map(tuple),
        st.dictionaries(keys, kids),
        st.dictionaries(keys, kids, min_size=1, max_size=1),
        st.dictionaries(hashables, kids),
        st.sets(hashables),
        st.frozensets(hashables),
        st.builds(
            Bundle,
            st.builds(Applicant, st.text(), st.text()),
            st.lists(st.builds(Fee, st.decimals(), st.datetimes(timezones=fixed_zones), st.uuids())),
            kids,
        ),
    )


values = st.recursive(leaves, containers, max_leaves=20)


@given(values)
def test_any_nesting_round_trips_exactly(value: Any) -> None:
    assert_same(round_trip(value), value)


@given(values)
def test_bytes_are_stable_and_plain_json(value: Any) -> None:
    encoded = T.encode(value)
    assert T.encode(value) == encoded
    assert T.encode(T.decode(encoded)) == encoded  # re-encoding a read event reproduces its hash input
    json.loads(encoded)  # any JSON tool can read an export


plain_json = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
    ),
    lambda kids: st.one_of(
        st.lists(kids), st.dictionaries(st.text().filter(lambda k: not k.startswith("$")), kids)
    ),
)


@given(plain_json)
def test_plain_json_stays_plain(value: Any) -> None:
    assert T.encode(value) == msgspec.json.encode(value)


# A full trip through eventsourcing's Mapper, with a real aggregate.


class Case(Aggregate):
    @event("Submitted")
    def __init__(self, service_item_id: UUID, applicant: Applicant, fee: Decimal, due_on: date) -> None:
        self.service_item_id = service_item_id
        self.applicant = applicant
        self.fee = fee
        self.due_on = due_on
        self.missing: tuple[str, ...] = ()
        self.light = Light.GREEN

    @event("MaterialsRequested")
    def request_materials(self, missing: tuple[str, ...], due_on: date, light: Light) -> None:
        self.missing = missing
        self.due_on = due_on
        self.light = light


def submitted_case() -> Case:
    case = Case(uuid4(), Applicant("王五", "430102199001019999"), Decimal("25.00"), date(2024, 5, 6))
    case.request_materials(("户口簿", "身份证复印件"), date(2024, 5, 13), Light.YELLOW)
    return case


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_mapper_round_trips_aggregate_events(encrypted: bool) -> None:
    cipher = AESCipher(Environment(env={"CIPHER_KEY": AESCipher.create_key(16)})) if encrypted else None
    mapper = make_mapper(cipher)
    case = submitted_case()
    events = case.collect_events()

    stored = [mapper.to_stored_event(e) for e in events]
    restored = [mapper.to_domain_event(s) for s in stored]

    assert restored == events
    for got, want in zip(restored, events, strict=True):
        assert type(got) is type(want)
        # The Mapper puts originator_id and originator_version back last, so compare in the original order.
        assert_same({k: vars(got)[k] for k in vars(want)}, vars(want))
    rebuilt = None
    for e in restored:
        rebuilt = e.mutate(rebuilt)
    assert rebuilt == case
    assert (b'"$decimal":"25.00"' in stored[0].state) is not encrypted


def test_mapper_round_trips_a_snapshot() -> None:
    mapper = make_mapper()
    case = submitted_case()
    case.collect_events()

    snapshot = mapper.to_domain_event(mapper.to_stored_event(Snapshot.take(case)))

    assert snapshot.mutate(None) == case


def test_a_uuid_subclass_such_as_asyncpgs_is_written_as_a_plain_uuid() -> None:
    # Aggregates loaded from the store carry asyncpg's UUID type as their id.
    from asyncpg.pgproto.pgproto import UUID as DriverUUID

    value = DriverUUID(str(ID))
    transcoder = MsgspecTranscoder()
    decoded = transcoder.decode(transcoder.encode({"id": value}))
    assert decoded == {"id": ID} and type(decoded["id"]) is UUID
