"""The catalogue routes: public, camelCase, paged and filtered; 404 and 400 as problem details."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import CollectorRegistry

from backend.catalogue import read_catalogue
from domain.catalogue import BundleSpec, ServiceItemSpec
from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from miniapp_api.problems import PROBLEM_BASE
from miniapp_api.schemas import HealthReport
from miniapp_api.services import CatalogueReader, catalogue_router
from projections.catalogue import (
    BundleGuide,
    BundleRef,
    BundleSummary,
    EntryVersion,
    ServiceGuide,
    ServicePage,
    ServiceSummary,
)

pytestmark = pytest.mark.unit

CONFIG = ApiConfig(
    jwt_secret="test-secret-" + "c" * 40, token_ttl_seconds=600, dev_login=False, max_body_bytes=4096
)
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SOURCE = read_catalogue()


def summary(spec: ServiceItemSpec, version: int = 1) -> ServiceSummary:
    return ServiceSummary(
        code=spec.code,
        name=spec.name,
        department_code=spec.department.code,
        department_name=spec.department.name,
        kind=spec.kind,
        modes=spec.modes,
        tongban_regions=tuple(p.region for p in spec.tongban),
        promised_limit=spec.promised_limit,
        trips=spec.trips,
        fee=spec.fee,
        version=version,
        status="active",
    )


@dataclass
class FakeCatalogue:
    """The read side in memory, answering the way CatalogueQueries does."""

    items: dict[str, ServiceItemSpec] = field(default_factory=lambda: {i.code: i for i in SOURCE.items})
    bundles: dict[str, BundleSpec] = field(default_factory=lambda: {b.code: b for b in SOURCE.bundles})
    calls: list[dict[str, object]] = field(default_factory=list)

    async def list_services(
        self,
        *,
        q: str | None = None,
        department: str | None = None,
        mode: str | None = None,
        kind: str | None = None,
        tongban: str | None = None,
        page: int = 1,
        size: int = 20,
    ) -> ServicePage:
        self.calls.append({"q": q, "department": department, "mode": mode, "kind": kind, "page": page})
        found = [
            s
            for s in self.items.values()
            if (q is None or q in s.name + "".join(s.keywords) + "".join(m.name for m in s.materials))
            and department in (None, s.department.code)
            and (mode is None or mode in s.modes)
            and kind in (None, s.kind)
            and (tongban is None or tongban in {p.region for p in s.tongban})
        ]
        chunk = found[(page - 1) * size : page * size]
        return ServicePage(items=[summary(s) for s in chunk], total=len(found), page=page, size=size)

    async def service(self, code: str) -> ServiceGuide | None:
        spec = self.items.get(code)
        if spec is None:
            return None
        part_of = [BundleRef(code=b.code, name=b.name) for b in self.bundles.values() if code in b.children]
        return ServiceGuide(spec=spec, version=2, status="active", updated_at=AT, part_of=part_of)

    async def service_versions(self, code: str) -> list[EntryVersion]:
        if code not in self.items:
            return []
        return [
            EntryVersion(version=1, change="published", recorded_at=AT, spec=self.items[code], reason=None),
            EntryVersion(version=2, change="withdrawn", recorded_at=AT, spec=None, reason="已从事项清单移除"),
        ]

    async def list_bundles(self) -> list[BundleSummary]:
        return [
            BundleSummary(
                code=b.code,
                name=b.name,
                lead_department_code=b.lead_department.code,
                lead_department_name=b.lead_department.name,
                target=b.target,
                children=b.children,
                version=1,
                status="active",
            )
            for b in self.bundles.values()
        ]

    async def bundle(self, code: str) -> BundleGuide | None:
        spec = self.bundles.get(code)
        if spec is None:
            return None
        children = [summary(self.items[c]) for c in spec.children]
        return BundleGuide(spec=spec, version=1, status="active", updated_at=AT, children=children)

    async def bundle_versions(self, code: str) -> list[EntryVersion]:
        spec = self.bundles.get(code)
        return (
            []
            if spec is None
            else [EntryVersion(version=1, change="published", recorded_at=AT, spec=spec, reason=None)]
        )


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


@pytest.fixture
def fake() -> FakeCatalogue:
    return FakeCatalogue()


@pytest.fixture
async def client(fake: FakeCatalogue) -> AsyncIterator[AsyncTestClient[Litestar]]:
    reader: CatalogueReader = fake  # the fake satisfies the port, checked by mypy
    app = create_app(
        CONFIG, health=healthy, registry=CollectorRegistry(), route_handlers=[catalogue_router(reader)]
    )
    async with AsyncTestClient(app) as c:
        yield c


def company_code() -> str:
    return next(i.code for i in SOURCE.items if i.name.startswith("企业设立登记"))


async def test_listing_is_public_paged_and_camel_cased(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/services", params={"size": 5, "page": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["total"], body["page"], body["size"], len(body["items"])) == (len(SOURCE.items), 2, 5, 5)
    first = body["items"][0]
    assert set(first) >= {"code", "kindLabel", "promisedLimit", "tongbanRegions", "department"}
    assert first["promisedLimit"]["label"] == "即办" or first["promisedLimit"]["label"].endswith("日")
    assert "public" in response.headers["cache-control"]


async def test_filters_are_passed_through(client: AsyncTestClient[Litestar], fake: FakeCatalogue) -> None:
    response = await client.get(
        "/api/v1/services", params={"q": "营业执照", "department": "SCJGJ", "mode": "full_online"}
    )
    assert response.status_code == 200
    assert {i["name"] for i in response.json()["items"]} == {
        "企业设立登记（有限责任公司）",
        "个体工商户设立登记",
        "食品经营许可",  # its materials name the 营业执照
    }
    assert fake.calls[-1] == {
        "q": "营业执照",
        "department": "SCJGJ",
        "mode": "full_online",
        "kind": None,
        "page": 1,
    }
    by_kind = (await client.get("/api/v1/services", params={"kind": "benefit"})).json()
    assert {i["kindLabel"] for i in by_kind["items"]} == {"行政给付"}
    tongban = (await client.get("/api/v1/services", params={"tongban": "430300"})).json()
    assert tongban["total"] >= 3 and all("430300" in i["tongbanRegions"] for i in tongban["items"])


@pytest.mark.parametrize(
    "params",
    [
        {"size": 101},
        {"size": 0},
        {"page": 0},
        {"mode": "teleport"},
        {"kind": "行政许可"},
        {"department": "scjgj"},
        {"tongban": "4302"},
        {"q": "长" * 51},
    ],
)
async def test_bad_query_parameters_are_400_problems(
    client: AsyncTestClient[Litestar], params: dict[str, str | int]
) -> None:
    response = await client.get("/api/v1/services", params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == PROBLEM_BASE + "validation"


async def test_the_guide_of_one_item(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get(f"/api/v1/services/{company_code()}")
    assert response.status_code == 200, response.text
    guide = response.json()
    assert guide["version"] == 2 and guide["kindLabel"] == "行政许可"
    assert guide["department"]["creditCode"] == "11430100006182474N"
    assert guide["statutoryLimit"] == {"amount": 3, "unit": "working_day", "label": "3个工作日"}
    assert {m["requirement"] for m in guide["materials"]} == {"required", "minor"}
    assert any(m["replaceableByElicence"] == "居民身份证" for m in guide["materials"])
    assert guide["fee"] == "0" and guide["basis"].startswith("《")
    assert {"mode": "remote_collect", "label": "异地代收代办"} in guide["modes"]
    assert {t["region"] for t in guide["tongban"]} == {"430200", "430300"}
    assert guide["where"][0]["hall"].startswith("长沙市政务服务中心")
    assert [b["name"] for b in guide["partOf"]] == ["企业开办一件事"]


async def test_versions_of_an_item(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get(f"/api/v1/services/{company_code()}/versions")
    assert response.status_code == 200
    first, second = response.json()
    assert first["change"] == "published" and first["promisedLimit"]["amount"] == 1
    assert second == {
        "version": 2,
        "change": "withdrawn",
        "recordedAt": "2026-03-02T09:00:00Z",
        "reason": "已从事项清单移除",
        "name": None,
        "promisedLimit": None,
    }


@pytest.mark.parametrize(
    "path", ["/api/v1/services/NOPE", "/api/v1/services/NOPE/versions", "/api/v1/bundles/NOPE"]
)
async def test_unknown_codes_are_404_problems(client: AsyncTestClient[Litestar], path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    problem = response.json()
    assert problem["type"] == PROBLEM_BASE + "not-found" and "NOPE" in problem["detail"]


async def test_bundles_with_their_children(client: AsyncTestClient[Litestar]) -> None:
    listing = (await client.get("/api/v1/bundles")).json()
    assert len(listing) == len(SOURCE.bundles)
    start_up = next(b for b in listing if b["name"] == "企业开办一件事")
    assert start_up["target"]["label"] == "1个工作日" and len(start_up["children"]) == 5
    guide = (await client.get(f"/api/v1/bundles/{start_up['code']}")).json()
    assert [c["code"] for c in guide["children"]] == start_up["children"]
    assert len({c["department"]["code"] for c in guide["children"]}) == 5
    assert guide["leadDepartment"]["name"] == "长沙市市场监督管理局"
    versions = (await client.get(f"/api/v1/bundles/{start_up['code']}/versions")).json()
    assert versions[0]["promisedLimit"]["label"] == "1个工作日"


async def test_the_routes_are_documented_as_public(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    operation = document["paths"]["/api/v1/services"]["get"]
    assert operation["security"] == [{}]
    assert "401" not in operation["responses"]
