"""The partner registry over real HTTP: register 株洲 with a key, rotate it, and our own published keys.

Each test registers a region of its own, so they share one server without stepping on each other.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest

from backend.federation.signing import SigningKey
from tests.e2e.case_journey_support import Headers, assert_problem, login, ok, wait_for

pytestmark = pytest.mark.e2e

ADMIN_PATH = "/api/v1/admin/partners"
ITEM = "11430200006182474N010100300000"


def public(n: int) -> str:
    return SigningKey.from_seed(f"k{n}", bytes([n]) * 32).public_text()


def description(name: str = "株洲市", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "baseUrl": "https://zwfw.zhuzhou.example/",
        "accepts": [{"itemCode": ITEM, "modes": ["full_online", "remote_collect"]}],
        **extra,
    }


@pytest.fixture
def admin(client: httpx.Client) -> Headers:
    return login(client, "admin-partners", "admin")


def listed(client: httpx.Client, admin: Headers, region: str, version: int) -> dict[str, Any]:
    """The partner in the read model once it has `version`."""

    def found() -> dict[str, Any] | None:
        response = client.get(f"{ADMIN_PATH}/{region}", headers=admin)
        return (
            response.json() if response.status_code == 200 and response.json()["version"] >= version else None
        )

    return wait_for(found, f"partner {region} at version {version}")


def test_our_published_keys_are_the_dev_key_of_our_region(client: httpx.Client) -> None:
    body = ok(client.get("/federation/v1/keys"))  # no token: partners' admins read it
    seed = hashlib.sha256(b"citypass-dev-federation/430100").digest()
    expected = SigningKey.from_seed("dev-430100", seed).public_text()
    assert body == {
        "region": "430100",
        "keys": [{"kid": "dev-430100", "publicKey": expected, "signing": True}],
    }
    assert len(base64.b64decode(expected)) == 32


def test_register_zhuzhou_and_rotate_its_key(client: httpx.Client, admin: Headers) -> None:
    zhuzhou = f"{ADMIN_PATH}/430200"
    keys = [{"kid": "zz-2026", "publicKey": public(1)}]
    first = ok(client.put(zhuzhou, json=description(publicKeys=keys), headers=admin))
    assert first["changed"] is True
    assert first["partner"] | {"updatedAt": None} == {
        "region": "430200", "name": "株洲市", "baseUrl": "https://zwfw.zhuzhou.example",
        "accepts": [{"itemCode": ITEM, "modes": ["full_online", "remote_collect"], "name": None}],
        "keys": [{"kid": "zz-2026", "publicKey": public(1)}], "version": 2, "updatedAt": None,
    }  # fmt: skip
    assert listed(client, admin, "430200", 2)["keys"] == [{"kid": "zz-2026", "publicKey": public(1)}]
    assert "430200" in [p["region"] for p in ok(client.get(ADMIN_PATH, headers=admin))]

    # Rotation: the new key beside the old, both valid while 株洲 switches to signing with it.
    added = client.post(f"{zhuzhou}/keys", json={"kid": "zz-2027", "publicKey": public(2)}, headers=admin)
    assert ok(added, 201)["partner"]["version"] == 3
    again = client.post(f"{zhuzhou}/keys", json={"kid": "zz-2027", "publicKey": public(2)}, headers=admin)
    assert ok(again)["changed"] is False  # a retry: 200, nothing recorded
    both = listed(client, admin, "430200", 3)["keys"]
    assert both == [{"kid": "zz-2026", "publicKey": public(1)}, {"kid": "zz-2027", "publicKey": public(2)}]

    retired = ok(client.delete(f"{zhuzhou}/keys/zz-2026", headers=admin))
    assert retired["changed"] is True and retired["partner"]["keys"] == [
        {"kid": "zz-2027", "publicKey": public(2)}
    ]
    assert listed(client, admin, "430200", 4)["keys"] == [{"kid": "zz-2027", "publicKey": public(2)}]
    assert ok(client.delete(f"{zhuzhou}/keys/zz-2026", headers=admin))["changed"] is False

    last = assert_problem(client.delete(f"{zhuzhou}/keys/zz-2027", headers=admin), 409, "partner-last-key")
    assert "zz-2027" in last["detail"]
    assert_problem(client.delete(f"{zhuzhou}/keys/zz-2000", headers=admin), 404, "partner-key-not-found")
    assert (
        ok(client.put(zhuzhou, json=description("株洲市人民政府"), headers=admin))["partner"]["version"] == 5
    )


def test_only_admins_reach_the_registry(client: httpx.Client) -> None:
    for role, scope in (("citizen", {}), ("manager", {"hall": "SMZJ"}), ("partner", {"region": "430200"})):
        who = login(client, f"not-admin-{role}", role, **scope)
        assert_problem(client.get(ADMIN_PATH, headers=who), 403, "forbidden")
        assert_problem(client.put(f"{ADMIN_PATH}/430400", json=description(), headers=who), 403, "forbidden")
        body = {"kid": "x", "publicKey": public(3)}
        assert_problem(client.post(f"{ADMIN_PATH}/430200/keys", json=body, headers=who), 403, "forbidden")
        assert_problem(client.delete(f"{ADMIN_PATH}/430200/keys/zz-2026", headers=who), 403, "forbidden")
    assert_problem(client.get(ADMIN_PATH), 401, "unauthenticated")


def test_bad_input_changes_nothing(client: httpx.Client, admin: Headers) -> None:
    xiangtan = f"{ADMIN_PATH}/430300"
    key = [{"kid": "xt-1", "publicKey": public(4)}]

    def put(name: str, **extra: Any) -> httpx.Response:
        return client.put(xiangtan, json=description(name, **extra), headers=admin)

    refused = [
        (put("湘潭市"), 422, "partner-key-invalid"),  # a partner is registered with a key
        (put("湘潭市", publicKeys=key, extra=1), 400, "validation"),
        (put("湘潭市", publicKeys=[{"kid": "xt-1", "publicKey": "AAAA"}]), 422, "partner-key-invalid"),
        (put("湘潭市", publicKeys=key, baseUrl="https://u:p@xt.example"), 422, "partner-invalid"),
        (put("湘潭市", publicKeys=key, accepts=[{"itemCode": ITEM, "modes": ["window"]}]),
         422, "partner-invalid"),  # 窗口办理 is not a 通办 mode
        (client.put(f"{ADMIN_PATH}/4303", json=description("湘潭市", publicKeys=key), headers=admin),
         422, "partner-invalid"),
        (client.put(f"{ADMIN_PATH}/430100", json=description("长沙市", publicKeys=key), headers=admin),
         422, "partner-invalid"),  # our own region
        (client.post(f"{xiangtan}/keys", json={"kid": "xt-2", "publicKey": public(5)}, headers=admin),
         404, "partner-not-found"),
        (client.get(xiangtan, headers=admin), 404, "partner-not-found"),
    ]  # fmt: skip
    for response, status, slug in refused:
        assert_problem(response, status, slug)

    registered = ok(put("湘潭市", publicKeys=key))
    assert registered["partner"]["version"] == 2  # nothing before it was recorded
    refused = [
        (client.post(f"{xiangtan}/keys", json={"kid": "xt-1", "publicKey": public(5)}, headers=admin),
         409, "partner-key-conflict"),  # a key id never changes its key
        (client.post(f"{xiangtan}/keys", json={"kid": "xt 2", "publicKey": public(5)}, headers=admin),
         422, "partner-key-invalid"),
        (client.post(f"{xiangtan}/keys", json={"kid": "xt-2", "publicKey": public(5), "x": 1}, headers=admin),
         400, "validation"),
        (put("湘潭市", publicKeys=[{"kid": "xt-2", "publicKey": public(5)}]),
         422, "partner-key-invalid"),  # keys change through /keys only
        (put(""), 422, "partner-invalid"),
    ]  # fmt: skip
    for response, status, slug in refused:
        assert_problem(response, status, slug)
    renamed = ok(put("湘潭市人民政府"))
    assert renamed["changed"] and renamed["partner"]["version"] == 3  # the refusals recorded nothing
    assert renamed["partner"]["keys"] == key


def test_the_registry_is_documented_under_tongban(client: httpx.Client) -> None:
    paths = ok(client.get("/schema/openapi.json"))["paths"]
    assert paths["/federation/v1/keys"]["get"]["tags"] == ["通办"]
    assert paths["/federation/v1/keys"]["get"]["security"] == [{}]
    for path in (ADMIN_PATH, f"{ADMIN_PATH}/{{region}}", f"{ADMIN_PATH}/{{region}}/keys/{{kid}}"):
        assert all(op["tags"] == ["通办"] for op in paths[path].values()), path
