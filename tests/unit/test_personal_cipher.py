"""Personal values are sealed in stored events, open only with the right key, and survive key rotation."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import pytest
from eventsourcing.domain import Aggregate, Snapshot, event
from eventsourcing.persistence import Mapper, MapperDeserialisationError
from hypothesis import given
from hypothesis import strategies as st

from backend.store.personal_cipher import (
    DEV_KID,
    DecryptionError,
    Encrypted,
    KeyringError,
    PersonalCipher,
    ProtectingTranscoder,
    UnknownKeyError,
    dev_data_keys,
    generate_data_key,
    parse_data_keys,
)
from backend.store.transcoder import MsgspecTranscoder
from domain.personal import (
    Address,
    CreditCode,
    DocumentKind,
    IdDocument,
    IdNumber,
    PersonName,
    Phone,
)

pytestmark = pytest.mark.unit

K1 = ("k1", bytes(range(32)))
K2 = ("k2", bytes(range(32, 64)))
ID = IdNumber("430102199003071234")
PHONE = Phone("13812341234")
NAME = PersonName("欧阳娜娜")
HOME = Address("湖南省长沙市岳麓区", "麓山南路932号")
PASSPORT = IdDocument(DocumentKind.PASSPORT, "E12345678")
COMPANY = CreditCode("91430100MA4L12340T")


class Applicant(msgspec.Struct, frozen=True):
    name: PersonName
    id_number: IdNumber
    phones: tuple[Phone, ...]
    company: CreditCode | None = None


def nested() -> dict[str, Any]:
    return {
        "applicant": Applicant(NAME, ID, (PHONE, Phone("0731-88881234")), COMPANY),
        "agents": [{"name": PersonName("张三"), "document": PASSPORT}],
        "contacts": {PHONE, Phone("13912341234")},
        "by_id": {ID: HOME},
        "untouched": ["受理", 3, None, b"\x00"],
    }


def stored_json(value: Any, cipher: PersonalCipher) -> bytes:
    return MsgspecTranscoder().encode(cipher.protect(value))


def test_nested_state_round_trips_through_the_transcoder() -> None:
    cipher = PersonalCipher([K1])
    transcoder = ProtectingTranscoder(MsgspecTranscoder(), cipher)
    state = nested()

    data = transcoder.encode(state)

    assert transcoder.decode(data) == state
    for secret in ["欧阳", "430102199003071234", "13812341234", "88881234", "麓山南路", "E12345678"]:
        assert secret.encode() not in data
    assert b"91430100MA4L12340T" in data and "受理".encode() in data  # public and plain fields stay readable


def test_protect_leaves_its_input_alone_and_shares_what_it_does_not_change() -> None:
    cipher = PersonalCipher([K1])
    state = nested()
    protected = cipher.protect(state)

    assert state == nested()
    assert protected["untouched"] is state["untouched"]
    assert isinstance(protected["applicant"].name, Encrypted)
    assert protected["applicant"].company is COMPANY  # a credit code is public, so it is not sealed


@given(st.recursive(st.sampled_from([ID, PHONE, NAME, HOME, PASSPORT, COMPANY, "x", 1]), st.lists))
def test_any_nesting_round_trips(value: Any) -> None:
    cipher = PersonalCipher([K1])
    assert cipher.reveal(MsgspecTranscoder().decode(stored_json(value, cipher))) == value


def test_two_seals_of_one_value_differ() -> None:
    cipher = PersonalCipher([K1])
    a, b = cipher.seal(ID), cipher.seal(ID)
    assert a.nonce != b.nonce and a.data != b.data
    assert cipher.open(a) == cipher.open(b) == ID


def test_an_unknown_key_id_is_named() -> None:
    sealed = PersonalCipher([K2]).seal(ID)
    with pytest.raises(UnknownKeyError, match="no data key 'k2'"):
        PersonalCipher([K1]).open(sealed)


def test_the_wrong_key_under_the_right_id_does_not_open() -> None:
    sealed = PersonalCipher([K1]).seal(ID)
    with pytest.raises(DecryptionError, match="does not open"):
        PersonalCipher([("k1", K2[1])]).open(sealed)


def test_a_tampered_ciphertext_does_not_open() -> None:
    cipher = PersonalCipher([K1])
    sealed = cipher.seal(PHONE)
    flipped = bytes([sealed.data[0] ^ 1]) + sealed.data[1:]
    with pytest.raises(DecryptionError, match="altered"):
        cipher.open(msgspec.structs.replace(sealed, data=flipped))


def test_an_envelope_relabelled_as_another_type_does_not_open() -> None:
    # The associated data binds the ciphertext to its kind: a phone cannot be passed off as a name.
    cipher = PersonalCipher([K1])
    sealed = cipher.seal(PersonName("张三"))
    relabelled = msgspec.structs.replace(sealed, kind=cipher.seal(PHONE).kind)
    with pytest.raises(DecryptionError, match=r"domain\.personal:Phone"):
        cipher.open(relabelled)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("os:system", "not a personal value type"), ("domain.personal:Nope", "no known type")],
)
def test_an_envelope_claiming_a_non_personal_kind_is_refused(kind: str, reason: str) -> None:
    cipher = PersonalCipher([K1])
    with pytest.raises(DecryptionError, match=reason):
        cipher.open(msgspec.structs.replace(cipher.seal(ID), kind=kind))


# Key rotation and the keyring.


def test_after_rotation_old_values_open_with_the_old_key_and_new_ones_use_the_new() -> None:
    before = PersonalCipher([K1])
    old_data = stored_json({"id": ID}, before)

    after = PersonalCipher([K2, K1])  # k2 put first: it is current now, k1 still opens
    new_data = stored_json({"id": ID}, after)

    transcoder = ProtectingTranscoder(MsgspecTranscoder(), after)
    assert transcoder.decode(old_data) == transcoder.decode(new_data) == {"id": ID}
    assert b'"kid":"k1"' in old_data and b'"kid":"k2"' in new_data
    with pytest.raises(UnknownKeyError):
        ProtectingTranscoder(MsgspecTranscoder(), PersonalCipher([K2])).decode(old_data)


def test_data_keys_are_read_from_the_setting_text() -> None:
    k1, k2 = base64.b64encode(K1[1]).decode(), base64.b64encode(K2[1]).decode()
    assert parse_data_keys(f" k2:{k2}, k1:{k1} ,") == [K2, K1]
    assert PersonalCipher(parse_data_keys(generate_data_key("2026-01"))).current_kid == "2026-01"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "at least one"),
        ("k1", "KID:BASE64"),
        ("bad id:AAAA", "must match"),
        ("k1:not base64!", "not valid base64"),
        (f"k1:{base64.b64encode(bytes(16)).decode()}", "32 bytes"),
        (f"k1:{base64.b64encode(bytes(32)).decode()},k1:{base64.b64encode(bytes(32)).decode()}", "twice"),
    ],
)
def test_bad_data_keys_are_refused(text: str, reason: str) -> None:
    with pytest.raises(KeyringError, match=reason):
        parse_data_keys(text)
    with pytest.raises(KeyringError, match="32 bytes"):
        PersonalCipher([("k1", bytes(31))])


def test_the_development_key_is_fixed_and_named() -> None:
    assert dev_data_keys() == dev_data_keys() and dev_data_keys()[0][0] == DEV_KID
    assert PersonalCipher(dev_data_keys()).current_kid == DEV_KID


# Through eventsourcing's Mapper, with a real aggregate and its snapshot.


class Registration(Aggregate):
    @event("Registered")
    def __init__(self, applicant: Applicant, address: Address) -> None:
        self.applicant = applicant
        self.address = address

    @event("Moved")
    def move(self, address: Address) -> None:
        self.address = address


def test_the_mapper_stores_sealed_events_and_restores_them() -> None:
    mapper: Mapper[Any] = Mapper(ProtectingTranscoder(MsgspecTranscoder(), PersonalCipher([K1])))
    reg = Registration(Applicant(NAME, ID, (PHONE,)), HOME)
    reg.move(Address("湖南省株洲市天元区", "黄河北路1号"))
    events = reg.collect_events()

    stored = [mapper.to_stored_event(e) for e in events]

    assert [mapper.to_domain_event(s) for s in stored] == events
    assert all(b"430102199003071234" not in s.state and "黄河北路".encode() not in s.state for s in stored)
    snapshot = mapper.to_stored_event(Snapshot.take(reg))
    assert "欧阳".encode() not in snapshot.state
    assert mapper.to_domain_event(snapshot).mutate(None) == reg  # type: ignore[attr-defined]


def test_the_mapper_names_the_event_it_cannot_open() -> None:
    right: Mapper[Any] = Mapper(ProtectingTranscoder(MsgspecTranscoder(), PersonalCipher([K1])))
    stored = right.to_stored_event(Registration(Applicant(NAME, ID, ()), HOME).collect_events()[0])
    wrong: Mapper[Any] = Mapper(ProtectingTranscoder(MsgspecTranscoder(), PersonalCipher([K2])))
    with pytest.raises(MapperDeserialisationError, match="Registered") as raised:
        wrong.to_domain_event(stored)
    assert isinstance(raised.value.__cause__, UnknownKeyError)
