"""/health follows the injected probe, /metrics counts requests, /schema documents the routes."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from miniapp_api.principal import Principal, Role
from miniapp_api.problems import PROBLEM_BASE
from miniapp_api.schemas import ConsumerHealth, HealthReport
from miniapp_api.tokens import issue_token

CONFIG = ApiConfig(
    jwt_secret="h" * 48, token_ttl_seconds=900, dev_login=False, max_body_bytes=4096, version="9.9.9"
)
CONSUMER = ConsumerHealth(name="progress", position=40, lag=2, leader=True, status="running")


class FakeProbe:
    """Answers whatever report the test sets, or fails when told to."""

    def __init__(self) -> None:
        self.report = HealthReport(status="ok", database="up", head_position=42, consumers=[CONSUMER])
        self.failure: Exception | None = None
        self.calls = 0

    async def __call__(self) -> HealthReport:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return self.report


@get("/halls/{hall:str}/slots")
async def slots(hall: FromPath[str]) -> list[str]:
    return [f"{hall}-09:00"]


@pytest.fixture
def probe() -> FakeProbe:
    return FakeProbe()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def client(probe: FakeProbe, registry: CollectorRegistry) -> Iterator[TestClient[Litestar]]:
    app = create_app(CONFIG, health=probe, registry=registry, route_handlers=[slots])
    with TestClient(app) as c:
        yield c


def test_health_ok_is_200_with_the_report(client, probe):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "up",
        "headPosition": 42,
        "consumers": [{"name": "progress", "position": 40, "lag": 2, "leader": True, "status": "running"}],
    }
    assert probe.calls == 1


@pytest.mark.parametrize("status", ["degraded", "down"])
def test_health_not_ok_is_503_with_the_report(client, probe, status):
    probe.report = HealthReport(status=status, database="unreachable", head_position=0, consumers=[])
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == status
    assert response.json()["database"] == "unreachable"


def test_health_probe_failure_is_503_problem(client, probe):
    probe.failure = ConnectionRefusedError("pg at 10.0.0.5 refused")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["type"] == PROBLEM_BASE + "unavailable"
    assert "10.0.0.5" not in response.text


def samples(client: TestClient[Litestar], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = client.get("/metrics").text
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_metrics_count_requests_by_route_template(client):
    token = issue_token(CONFIG, Principal(subject="c-1", role=Role.CITIZEN))
    for hall in ("h1", "h2"):
        response = client.get(f"/halls/{hall}/slots", headers={"Authorization": f"Bearer {token}"})
        assert response.json() == [f"{hall}-09:00"]
    client.get("/halls/h3/slots")  # 401: no token
    client.get("/scanner/wp-admin.php")  # 404: no route

    counts = samples(client, "citypass_http_requests_total")
    assert counts[(("method", "GET"), ("route", "/halls/{hall}/slots"), ("status", "200"))] == 2
    assert counts[(("method", "GET"), ("route", "/halls/{hall}/slots"), ("status", "401"))] == 1
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert not any("h1" in value for labels in counts for _, value in labels)

    latency = samples(client, "citypass_http_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", "/halls/{hall}/slots"))] == 3


def test_metrics_is_prometheus_text(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert response.headers["content-type"].count("charset") == 1


def test_openapi_document_lists_the_routes(client):
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = msgspec.json.decode(response.content)
    assert document["info"] == {"title": "citypass", "version": "9.9.9"}
    assert {"/health", "/metrics", "/api/v1/auth/me", "/halls/{hall}/slots"} <= set(document["paths"])
    assert "/api/v1/auth/dev-login" not in document["paths"]
    assert document["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    unauthorized = document["paths"]["/halls/{hall}/slots"]["get"]["responses"]["401"]
    problem_ref = unauthorized["content"]["application/problem+json"]["schema"]["$ref"]
    assert problem_ref == "#/components/schemas/Problem"
    assert "401" not in document["paths"]["/health"]["get"]["responses"]
