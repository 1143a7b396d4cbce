"""Errors leave the API as RFC 9457 problem details with stable types, and bad input changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
import pytest
from litestar import Litestar, get, post
from litestar.params import JSONBody
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from miniapp_api.principal import Principal, Role
from miniapp_api.problems import PROBLEM_BASE, ProblemMap
from miniapp_api.schemas import HealthReport
from miniapp_api.tokens import issue_token

MAX_BODY = 256
CONFIG = ApiConfig(
    jwt_secret="test-secret-" + "p" * 40, token_ttl_seconds=600, dev_login=False, max_body_bytes=MAX_BODY
)


class NoteIn(msgspec.Struct, rename="camel"):
    text: str
    priority: int


class CaseError(Exception):
    """Stands in for a context's error hierarchy."""


class MaterialsMissingError(CaseError):
    pass


class Boom(Exception):
    pass


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


def make_app(notes: list[NoteIn], problem_map: ProblemMap | None = None) -> Litestar:
    @post("/notes", status_code=201)
    async def add_note(data: JSONBody[NoteIn]) -> int:
        notes.append(data)
        return len(notes)

    @get("/cases/missing")
    async def missing_materials() -> None:
        raise MaterialsMissingError("身份证 is missing")

    @get("/boom")
    async def boom() -> None:
        raise Boom("password=hunter2 at db.internal:5432")

    return create_app(
        CONFIG,
        health=healthy,
        registry=CollectorRegistry(),
        route_handlers=[add_note, missing_materials, boom],
        problem_map=problem_map,
    )


@pytest.fixture
def notes() -> list[NoteIn]:
    return []


@pytest.fixture
def client(notes: list[NoteIn]) -> Iterator[TestClient[Litestar]]:
    problems = ProblemMap()
    problems.register(CaseError, 409, "case-rule", "The case does not allow this")
    with TestClient(make_app(notes, problems)) as c:
        c.headers["Authorization"] = "Bearer " + issue_token(
            CONFIG, Principal(subject="u-1", role=Role.CITIZEN), now=datetime.now(UTC)
        )
        yield c


def assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEM_BASE + slug
    assert body["status"] == status
    assert body["title"]
    return body


def test_valid_body_is_accepted(client, notes):
    response = client.post("/notes", json={"text": "hi", "priority": 2})
    assert response.status_code == 201
    assert notes == [NoteIn(text="hi", priority=2)]


@pytest.mark.parametrize("raw", [b'{"text": "hi", "priority": ', b"not json", b'{"text": "a",}'])
def test_malformed_json_is_400_and_changes_nothing(client, notes, raw):
    response = client.post("/notes", content=raw, headers={"content-type": "application/json"})
    body = assert_problem(response, 400, "malformed-json")
    assert body["instance"] == "/notes"
    assert notes == []


def test_wrong_field_type_names_the_field(client, notes):
    response = client.post("/notes", json={"text": "hi", "priority": "high"})
    body = assert_problem(response, 400, "validation")
    assert body["errors"] == [{"field": "priority", "message": "Expected `int`, got `str`"}]
    assert notes == []


def test_missing_field_names_the_field(client, notes):
    response = client.post("/notes", json={"text": "hi"})
    body = assert_problem(response, 400, "validation")
    assert [e["field"] for e in body["errors"]] == ["priority"]
    assert notes == []


def test_missing_body_is_a_validation_problem(client, notes):
    response = client.post("/notes", content=b"", headers={"content-type": "application/json"})
    body = assert_problem(response, 400, "validation")
    assert body["errors"][0]["field"] == "body"
    assert notes == []


def test_oversized_body_with_content_length_is_413(client, notes):
    payload = msgspec.json.encode({"text": "x" * MAX_BODY, "priority": 1})
    response = client.post("/notes", content=payload, headers={"content-type": "application/json"})
    assert response.request.headers["content-length"] == str(len(payload))
    assert_problem(response, 413, "body-too-large")
    assert notes == []


def test_oversized_chunked_body_without_content_length_is_413(client, notes):
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(8):
            yield b"y" * 64
        yield b'", "priority": 1}'

    response = client.post("/notes", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "body-too-large")
    assert notes == []


def test_declared_non_json_body_is_415(client, notes):
    response = client.post("/notes", data={"text": "hi", "priority": "1"})
    assert_problem(response, 415, "unsupported-media-type")
    assert notes == []


def test_unknown_path_is_404_problem(client):
    body = assert_problem(client.get("/no/such/thing"), 404, "not-found")
    assert body["instance"] == "/no/such/thing"


def test_wrong_method_is_405_problem_with_allow(client):
    response = client.delete("/notes")
    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["allow"]


def test_registered_error_maps_through_its_base_class(client):
    body = assert_problem(client.get("/cases/missing"), 409, "case-rule")
    assert body["title"] == "The case does not allow this"
    assert body["detail"] == "身份证 is missing"


def test_unknown_error_is_500_logged_and_leaks_nothing(client, caplog):
    with caplog.at_level(logging.ERROR, logger="miniapp_api"):
        response = client.get("/boom")
    body = assert_problem(response, 500, "internal")
    assert "hunter2" not in response.text
    assert "detail" not in body
    logged = [r for r in caplog.records if r.exc_info and r.exc_info[0] is Boom]
    assert len(logged) == 1


def test_problem_map_walks_the_mro_nearest_first():
    problems = ProblemMap()
    problems.register(CaseError, 409, "case-rule", "Case rule")
    problems.register(MaterialsMissingError, 422, "materials-missing", "Materials missing")
    assert problems.lookup(MaterialsMissingError()).slug == "materials-missing"
    assert problems.lookup(CaseError()).slug == "case-rule"
    assert problems.lookup(ValueError()) is None


def test_problem_map_refuses_a_second_registration_and_bad_slugs():
    problems = ProblemMap()
    problems.register(CaseError, 409, "case-rule", "Case rule")
    with pytest.raises(ValueError, match="already maps"):
        problems.register(CaseError, 400, "other", "Other")
    with pytest.raises(ValueError, match="slug"):
        problems.register(Boom, 400, "Not A Slug", "Bad")
    with pytest.raises(ValueError, match="status"):
        problems.register(Boom, 200, "fine", "Not an error")
