"""The partner registry in the domain: what a partner is described by, its keys and their rotation."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import pytest

from domain.case import Actor, Role
from domain.case.checks import BEIJING
from domain.case.errors import InvalidCommandError
from domain.tongban import (
    Acceptance,
    InvalidPartnerError,
    InvalidPartnerKeyError,
    LastPartnerKeyError,
    NotPartnerAdministratorError,
    Partner,
    PartnerKeyConflictError,
    UnknownPartnerKeyError,
    partner_id,
)
from domain.tongban.terms import MAX_KEYS

pytestmark = pytest.mark.unit

ADMIN = Actor(id="admin-1", role=Role.SUPERVISOR, name="政务服务管理")
AT = datetime(2026, 3, 2, 9, 0, tzinfo=BEIJING)
ITEM = "11430200006182474N010100300000"
ACCEPTS = (Acceptance(item_code=ITEM, modes=("full_online", "remote_collect")),)


def key(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


def registered(*keys: tuple[str, str], **changes: Any) -> Partner:
    given: dict[str, Any] = {
        "region": "430200",
        "name": "株洲市",
        "base_url": "https://zwfw.zhuzhou.example/",
        "accepts": ACCEPTS,
        **changes,
    }
    partner = Partner.register(**given, keys=keys or (("zz-2026", key(1)),), actor=ADMIN, at=AT)
    partner.collect_events()
    return partner


def test_registration_records_the_partner_and_its_first_keys() -> None:
    partner = Partner.register(
        "430200", " 株洲市 ", "https://zwfw.zhuzhou.example/", ACCEPTS,
        [("zz-a", key(1)), ("zz-b", key(2))], actor=ADMIN, at=AT,
    )  # fmt: skip
    events = partner.collect_events()
    assert [type(e) for e in events] == [Partner.Registered, Partner.KeyAdded, Partner.KeyAdded]
    assert partner.id == partner_id("430200") != partner_id("430300")
    assert (partner.name, partner.base_url) == ("株洲市", "https://zwfw.zhuzhou.example")
    assert partner.keys == {"zz-a": key(1), "zz-b": key(2)}
    assert all(e.actor == ADMIN for e in events if hasattr(e, "actor"))


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"region": "43020"}, InvalidPartnerError),
        ({"region": "4302OO"}, InvalidPartnerError),
        ({"region": "４３０２００"}, InvalidPartnerError),  # full-width digits are digits to str.isdigit
        ({"name": "  "}, InvalidPartnerError),
        ({"name": "株" * 41}, InvalidPartnerError),
        ({"name": "株洲\n市"}, InvalidPartnerError),
        ({"base_url": "ftp://zz.example"}, InvalidPartnerError),
        ({"base_url": "zz.example"}, InvalidPartnerError),
        ({"base_url": "https://"}, InvalidPartnerError),
        ({"base_url": "https://user:secret@zz.example"}, InvalidPartnerError),
        ({"base_url": "https://zz.example/#top"}, InvalidPartnerError),
        ({"base_url": "https://zz.example/?a=1"}, InvalidPartnerError),
        ({"base_url": "https://zz.example:70000"}, InvalidPartnerError),
        ({"base_url": "https://zz.example/" + "a" * 200}, InvalidPartnerError),
        ({"base_url": "https://株洲.example"}, InvalidPartnerError),  # punycode it: xn--...
        ({"accepts": (Acceptance(item_code="", modes=("full_online",)),)}, InvalidPartnerError),
        ({"accepts": (Acceptance(item_code="A 1", modes=("full_online",)),)}, InvalidPartnerError),
        ({"accepts": (*ACCEPTS, *ACCEPTS)}, InvalidPartnerError),
        ({"accepts": (Acceptance(item_code=ITEM, modes=()),)}, InvalidPartnerError),
        ({"accepts": (Acceptance(item_code=ITEM, modes=("window",)),)}, InvalidPartnerError),  # type: ignore[arg-type]
        ({"accepts": (Acceptance(item_code=ITEM, modes=("multi_city", "multi_city")),)}, InvalidPartnerError),
        ({"accepts": (Acceptance(item_code=ITEM, modes=("full_online",), name="  "),)}, InvalidPartnerError),
        (
            {"accepts": (Acceptance(item_code=ITEM, modes=("full_online",), name="名" * 201),)},
            InvalidPartnerError,
        ),
        (
            {"accepts": (Acceptance(item_code=ITEM, modes=("full_online",), name="个体\n登记"),)},
            InvalidPartnerError,
        ),
    ],
)
def test_registration_refuses_a_malformed_description(
    changes: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        registered(**changes)


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ((), InvalidPartnerKeyError),  # a partner always has a key
        ((("zz 1", key(1)),), InvalidPartnerKeyError),
        ((("", key(1)),), InvalidPartnerKeyError),
        ((("zz-1", base64.b64encode(b"x" * 31).decode()),), InvalidPartnerKeyError),
        ((("zz-1", base64.b64encode(b"x" * 33).decode()),), InvalidPartnerKeyError),
        ((("zz-1", "not base64!"),), InvalidPartnerKeyError),
        ((("zz-1", key(1)), ("zz-1", key(2))), PartnerKeyConflictError),
        ((("zz-1", key(1)), ("zz-2", key(1))), PartnerKeyConflictError),
    ],
)
def test_registration_refuses_bad_keys(keys: tuple[tuple[str, str], ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        Partner.register("430200", "株洲市", "https://zz.example", ACCEPTS, keys, actor=ADMIN, at=AT)


def test_the_same_key_twice_at_registration_is_one_key() -> None:
    partner = registered(("zz-1", key(1)), ("zz-1", key(1)))
    assert partner.keys == {"zz-1": key(1)}


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.SUPERVISOR, True), (Role.MANAGER, False), (Role.OFFICER, False), (Role.PARTNER, False)],
)
def test_only_the_administration_configures_partners(role: Role, allowed: bool) -> None:
    actor = Actor(id="someone", role=role)
    partner = registered()
    commands = [
        lambda: Partner.register(
            "430300", "湘潭市", "https://xt.example", (), [("xt", key(9))], actor=actor, at=AT
        ),
        lambda: partner.reconfigure("株洲", "https://zz.example", (), actor=actor, at=AT),
        lambda: partner.add_key("zz-2027", key(2), actor=actor, at=AT),
    ]
    for command in commands:
        if allowed:
            command()
        else:
            with pytest.raises(NotPartnerAdministratorError):
                command()


def test_reconfiguring_records_only_a_change() -> None:
    partner = registered()
    assert not partner.reconfigure("株洲市", "https://zwfw.zhuzhou.example", ACCEPTS, actor=ADMIN, at=AT)
    assert partner.collect_events() == []
    assert partner.reconfigure("株洲市人民政府", "http://zz.example:8080/tongban/", (), actor=ADMIN, at=AT)
    (event,) = partner.collect_events()
    assert isinstance(event, Partner.Reconfigured) and event.base_url == "http://zz.example:8080/tongban"
    assert (partner.name, partner.accepts, partner.keys) == ("株洲市人民政府", (), {"zz-2026": key(1)})


def test_reconfiguring_refuses_a_bad_description_and_changes_nothing() -> None:
    partner = registered()
    with pytest.raises(InvalidPartnerError):
        partner.reconfigure("株洲市", "https://zz.example#x", ACCEPTS, actor=ADMIN, at=AT)
    assert partner.collect_events() == [] and partner.base_url == "https://zwfw.zhuzhou.example"


def test_rotation_adds_the_new_key_then_retires_the_old() -> None:
    partner = registered(("zz-2026", key(1)))
    assert partner.add_key("zz-2027", key(2), actor=ADMIN, at=AT)
    assert partner.keys == {"zz-2026": key(1), "zz-2027": key(2)}  # both valid while the partner switches
    assert partner.retire_key("zz-2026", actor=ADMIN, at=AT)
    assert partner.keys == {"zz-2027": key(2)}
    assert [type(e) for e in partner.collect_events()] == [Partner.KeyAdded, Partner.KeyRetired]


@pytest.mark.parametrize(
    ("kid", "public_key", "outcome"),
    [
        ("zz-2026", key(1), False),  # the same key again: nothing to record
        ("zz-2026", key(2), PartnerKeyConflictError),  # a key id never changes its key
        ("zz-old", key(3), PartnerKeyConflictError),  # retired, but its id stays bound to its key
        ("zz-old", key(7), True),  # a retired key added back, as itself
        ("zz-copy", key(1), PartnerKeyConflictError),  # one key under two ids
        ("zz-copy", key(7), PartnerKeyConflictError),  # ... retired ones included
        ("zz 2027", key(2), InvalidPartnerKeyError),
        ("zz-2027", "AAAA", InvalidPartnerKeyError),
        ("zz-2027", key(2), True),
    ],
)
def test_adding_a_key(kid: str, public_key: str, outcome: bool | type[Exception]) -> None:
    partner = registered(("zz-2026", key(1)), ("zz-old", key(7)))
    partner.retire_key("zz-old", actor=ADMIN, at=AT)
    partner.collect_events()
    if isinstance(outcome, bool):
        assert partner.add_key(kid, public_key, actor=ADMIN, at=AT) is outcome
        assert partner.keys[kid] == public_key
        assert len(partner.collect_events()) == int(outcome)
    else:
        with pytest.raises(outcome):
            partner.add_key(kid, public_key, actor=ADMIN, at=AT)
        assert partner.collect_events() == []


def test_a_public_key_is_recorded_in_canonical_base64() -> None:
    # The last character's unused bits differ: the same 32 bytes, written two ways.
    canonical = key(1)
    sloppy = canonical[:-2] + chr(ord(canonical[-2]) + 1) + "="
    assert base64.b64decode(sloppy) == base64.b64decode(canonical) and sloppy != canonical
    partner = registered(("zz-2026", sloppy))
    assert partner.keys == {"zz-2026": canonical}
    assert not partner.add_key("zz-2026", sloppy, actor=ADMIN, at=AT)


@pytest.mark.parametrize(
    ("kid", "outcome"),
    [
        ("zz-2026", LastPartnerKeyError),  # the only valid key
        ("zz-old", False),  # already retired: nothing to record
        ("zz-never", UnknownPartnerKeyError),
    ],
)
def test_retiring_a_key(kid: str, outcome: bool | type[Exception]) -> None:
    partner = registered(("zz-2026", key(1)), ("zz-old", key(7)))
    partner.retire_key("zz-old", actor=ADMIN, at=AT)
    partner.collect_events()
    if isinstance(outcome, bool):
        assert partner.retire_key(kid, actor=ADMIN, at=AT) is outcome
    else:
        with pytest.raises(outcome):
            partner.retire_key(kid, actor=ADMIN, at=AT)
    assert partner.collect_events() == [] and partner.keys == {"zz-2026": key(1)}


def test_keys_valid_at_once_are_bounded() -> None:
    partner = registered(*((f"k{n}", key(n)) for n in range(MAX_KEYS)))
    with pytest.raises(InvalidPartnerKeyError):
        partner.add_key("one-more", key(99), actor=ADMIN, at=AT)


def test_a_time_without_zone_is_refused() -> None:
    partner = registered()
    with pytest.raises(InvalidCommandError):
        partner.add_key("zz-2027", key(2), actor=ADMIN, at=datetime(2026, 3, 2, 9))
    assert partner.collect_events() == []


def test_an_item_name_is_kept_trimmed_and_may_be_left_out() -> None:
    named = Acceptance(item_code=ITEM, modes=("full_online",), name=" 食品经营许可 ")
    partner = registered(accepts=(named, Acceptance(item_code="OTHER-1", modes=("remote_collect",))))
    assert [a.name for a in partner.accepts] == ["食品经营许可", None]
