"""Bearer tokens: who may call, what a bad token gets, and the development login."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from miniapp_api.app import create_app
from miniapp_api.auth import CurrentPrincipal, VerifiedTokens, require_path_scope, require_roles
from miniapp_api.config import ApiConfig
from miniapp_api.principal import Principal, Role, region_covers
from miniapp_api.problems import PROBLEM_BASE
from miniapp_api.schemas import HealthReport
from miniapp_api.tokens import ISSUER, TokenError, decode_token, issue_token


def config(*, dev_login: bool = False, secret: str = "s" * 48) -> ApiConfig:
    return ApiConfig(jwt_secret=secret, token_ttl_seconds=900, dev_login=dev_login, max_body_bytes=4096)


CONFIG = config()
CLERK = Principal(subject="clerk-7", role=Role.CLERK, name="王五", hall="furong-01", region="430102")
CITIZEN = Principal(subject="citizen-1", role=Role.CITIZEN)


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


@get("/queue", guards=[require_roles(Role.CLERK, Role.OFFICER)])
async def work_queue(principal: CurrentPrincipal) -> dict[str, str]:
    return {"servedBy": principal.subject}


@get("/halls/{hall:str}/display", guards=[require_roles(Role.CLERK), require_path_scope("hall")])
async def hall_display(hall: FromPath[str]) -> dict[str, str]:
    return {"hall": hall}


def make_client(cfg: ApiConfig) -> TestClient[Litestar]:
    app = create_app(
        cfg, health=healthy, registry=CollectorRegistry(), route_handlers=[work_queue, hall_display]
    )
    return TestClient(app)


@pytest.fixture
def client() -> Iterator[TestClient[Litestar]]:
    with make_client(CONFIG) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthenticated(response) -> dict:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "unauthenticated"
    return body


def test_right_role_passes_and_sees_itself(client):
    response = client.get("/queue", headers=bearer(issue_token(CONFIG, CLERK)))
    assert response.status_code == 200
    assert response.json() == {"servedBy": "clerk-7"}


def test_no_token_is_401_with_challenge(client):
    body = assert_unauthenticated(client.get("/queue"))
    assert body["detail"] == "missing bearer token"


def test_expired_token_is_401(client):
    stale = issue_token(CONFIG, CLERK, now=datetime.now(UTC) - timedelta(hours=1))
    response = client.get("/queue", headers=bearer(stale))
    assert assert_unauthenticated(response)["detail"] == "token expired"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_token_signed_with_another_secret_is_401(client):
    forged = issue_token(config(secret="x" * 48), CLERK)
    assert assert_unauthenticated(client.get("/queue", headers=bearer(forged)))["detail"] == ("token invalid")


@pytest.mark.parametrize("header", ["Bearer not.a.jwt", "Bearer ", "Basic dXNlcjpwYXNz", "clerk-7"])
def test_malformed_authorization_is_401(client, header):
    assert_unauthenticated(client.get("/queue", headers={"Authorization": header}))


def test_unsigned_token_is_401(client):
    claims = {"iss": ISSUER, "sub": "x", "role": "admin", "iat": 0, "exp": 2**40, "jti": "1"}
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    assert_unauthenticated(client.get("/queue", headers=bearer(unsigned)))


def test_token_with_unknown_role_is_401(client):
    now = datetime.now(UTC)
    claims = {"iss": ISSUER, "sub": "x", "role": "emperor", "iat": now, "jti": "1"}
    token = jwt.encode({**claims, "exp": now + timedelta(minutes=5)}, CONFIG.jwt_secret)
    body = assert_unauthenticated(client.get("/queue", headers=bearer(token)))
    assert body["detail"] == "token claims invalid"


def test_wrong_role_is_403(client):
    response = client.get("/queue", headers=bearer(issue_token(CONFIG, CITIZEN)))
    assert response.status_code == 403
    assert response.json()["type"] == PROBLEM_BASE + "forbidden"


def test_path_scope_guard_admits_only_the_callers_hall(client):
    token = bearer(issue_token(CONFIG, CLERK))
    assert client.get("/halls/furong-01/display", headers=token).status_code == 200
    other = client.get("/halls/yuelu-02/display", headers=token)
    assert other.status_code == 403
    assert other.json()["detail"] == "outside the caller's hall"


def test_token_round_trips_the_principal():
    assert decode_token(CONFIG, issue_token(CONFIG, CLERK)) == CLERK
    with pytest.raises(TokenError, match="invalid"):
        decode_token(config(secret="y" * 48), issue_token(CONFIG, CLERK))


def test_dev_login_is_absent_when_disabled(client):
    response = client.post("/api/v1/auth/dev-login", json={"subject": "a", "role": "admin"})
    assert response.status_code == 404
    assert response.json()["type"] == PROBLEM_BASE + "not-found"


def test_dev_login_token_round_trips_through_me():
    with make_client(config(dev_login=True)) as client:
        login = client.post(
            "/api/v1/auth/dev-login",
            json={"subject": "officer-3", "role": "officer", "department": "91430100MA4L0000XX"},
        )
        assert login.status_code == 200, login.text
        body = login.json()
        expires = datetime.fromisoformat(body["expiresAt"])
        assert timedelta(seconds=890) < expires - datetime.now(UTC) <= timedelta(seconds=900)
        me = client.get("/api/v1/auth/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json() == {
        "subject": "officer-3",
        "role": "officer",
        "name": None,
        "department": "91430100MA4L0000XX",
        "hall": None,
        "region": None,
        "personalData": False,
    }
    assert me.headers["cache-control"] == "no-store"


def test_the_personal_data_grant_travels_in_the_token():
    with make_client(config(dev_login=True)) as client:
        body = {"subject": "officer-4", "role": "officer", "department": "GAJ", "personalData": True}
        token = client.post("/api/v1/auth/dev-login", json=body).json()["token"]
        me = client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.json()["personalData"] is True


def test_dev_login_rejects_a_bad_region_code():
    with make_client(config(dev_login=True)) as client:
        response = client.post(
            "/api/v1/auth/dev-login", json={"subject": "c", "role": "citizen", "region": "43"}
        )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["region"]


def test_me_needs_a_token(client):
    assert_unauthenticated(client.get("/api/v1/auth/me"))


@pytest.mark.parametrize(
    ("scope", "region", "covered"),
    [
        ("430000", "430102", True),  # province covers a district
        ("430100", "430102", True),  # prefecture covers its district
        ("430102", "430102", True),
        ("430100", "430202", False),  # 株洲 is not in 长沙
        ("430102", "430103", False),
        ("430000", "440305", False),
    ],
)
def test_region_covers(scope, region, covered):
    assert region_covers(scope, region) is covered


def test_require_roles_needs_a_role():
    with pytest.raises(ValueError):
        require_roles()


def test_config_refuses_a_short_secret():
    with pytest.raises(ValueError, match="jwt_secret"):
        config(secret="short")


def test_guards_are_async_so_no_thread_runs_them():
    assert inspect.iscoroutinefunction(require_roles(Role.CLERK))
    assert inspect.iscoroutinefunction(require_path_scope("hall"))


def test_a_kept_token_is_refused_once_it_expires(client):
    # Issued so that it lives one or two seconds more (exp is whole seconds).
    issued = datetime.now(UTC) - timedelta(seconds=CONFIG.token_ttl_seconds - 2)
    short = issue_token(CONFIG, CLERK, now=issued)
    expires = jwt.decode(short, options={"verify_signature": False})["exp"]
    assert client.get("/queue", headers=bearer(short)).status_code == 200  # decoded, then kept
    assert client.get("/queue", headers=bearer(short)).status_code == 200  # from the kept ones
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    assert assert_unauthenticated(client.get("/queue", headers=bearer(short)))["detail"] == "token expired"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_verified_tokens_keep_each_until_its_expiry_and_stay_bounded():
    clock = Clock()
    kept = VerifiedTokens(size=2, clock=clock)
    tokens = [issue_token(CONFIG, Principal(subject=f"c-{n}", role=Role.CITIZEN)) for n in range(3)]
    expires = jwt.decode(tokens[0], options={"verify_signature": False})["exp"]
    for token in tokens[:2]:
        kept.keep(token, decode_token(CONFIG, token))
    assert kept.get(tokens[0]) is not None  # now the most recently used
    kept.keep(tokens[2], decode_token(CONFIG, tokens[2]))  # so the second goes
    assert kept.get(tokens[1]) is None
    assert kept.get(tokens[2]) == Principal(subject="c-2", role=Role.CITIZEN)
    clock.now = expires - 0.001
    assert kept.get(tokens[0]) is not None
    clock.now = expires  # pyjwt too refuses a token at its exp
    assert kept.get(tokens[0]) is None
    kept.keep("a.b@d.c", CITIZEN)  # a payload that is no base64 JSON is not kept
    assert kept.get("a.b@d.c") is None
