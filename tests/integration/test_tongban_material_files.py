"""通办 material files on PostgreSQL: a handoff's files fetched by the handling city before its case opens.

Both cities share one schema here, each with its own material store: 株洲 (430200) hands
a case off and serves its files through the real route and HandoffFiles; 长沙 (430100)
applies the `handoff.requested` with the real HandoffRequests and MaterialFetcher. The
HTTP between them goes through the app in process (httpx's ASGI transport), behind a
switch that can take 株洲 off the network.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from eventsourcing.persistence import Mapper
from prometheus_client import CollectorRegistry

from backend.bootstrap import problem_map
from backend.federation.handling import HandoffRequests
from backend.federation.handling_rules import handled_case_id
from backend.federation.kinds import Material
from backend.federation.material_files import HandoffFiles, MaterialFetcher, MaterialTransferError
from backend.federation.receiving import TongbanHandoffs
from backend.materials import MaterialStore
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from domain.case import Case, UploadedFile
from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from miniapp_api.federation_routes import federation_files_router
from miniapp_api.schemas import HealthReport
from projections.catalogue import CatalogueQueries
from projections.partners import PartnerQueries
from tests.integration.federation_support import Directory, key_of
from tests.integration.store_support import Clock, catch_up
from tests.integration.tongban_handling_support import CHANGSHA, NOW, ZHUZHOU, handling, outbox, requested
from tests.unit.case_builders import (
    CITIZEN,
    CLERK,
    COMMITMENT,
    DUE,
    MINIAPP,
    PASSWORD_HASH,
    STEP,
    T0,
    WINDOW,
    submission,
)

pytestmark = pytest.mark.integration

XIANGTAN = "430300"
CONFIG = ApiConfig(jwt_secret="f" * 48, token_ttl_seconds=900, dev_login=False, max_body_bytes=65536)
FILES = {m: b"%PDF-1.7\n" + m.encode() + b" scan\n%%EOF" for m in ("M01", "M02", "fire-check", "other")}
SHA = {m: hashlib.sha256(data).hexdigest() for m, data in FILES.items()}


class Switch(httpx.AsyncBaseTransport):
    """株洲 on the network, or off it; every request that got through is counted, and may be garbled."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner, self.down, self.garble, self.requests = inner, False, False, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        self.requests += 1
        response = await self.inner.handle_async_request(request)
        if not self.garble:
            return response
        body = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=body + b" ")


@dataclass
class Cities:
    pool: asyncpg.Pool
    store: AggregateStore  # both cities' cases
    mapper: Mapper[uuid.UUID]
    served: MaterialStore  # 株洲's
    fetched: MaterialStore  # 长沙's
    network: Switch
    handler: HandoffRequests  # 长沙's, fetching from 株洲

    async def hand_off(self, case: Case, handoff: uuid.UUID) -> None:
        """株洲 hands the accepted case to 长沙; its consumer records the handoff, as in production."""
        case.hand_off(CLERK, WINDOW, STEP, partner=CHANGSHA, mode="remote_collect", handoff=handoff)
        await self.store.save(case)
        await catch_up(self.pool, self.mapper, TongbanHandoffs(self.store))

    async def refusals(self) -> list[tuple[str, str | None]]:
        rows = await self.pool.fetch("SELECT kind, region FROM federation_refusals ORDER BY id")
        return [(r["kind"], r["region"]) for r in rows]


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


@pytest.fixture
async def cities(
    pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID], tmp_path: Path
) -> Cities:
    city = await handling(pool, recorder, mapper)  # 长沙's catalogue, partners and handler
    served = MaterialStore(tmp_path / "zhuzhou", max_bytes=1 << 20)
    fetched = MaterialStore(tmp_path / "changsha", max_bytes=1 << 20)
    for data in FILES.values():
        served.put(data)
    cs_key = key_of(CHANGSHA)
    at_zhuzhou = Directory()  # its partners: 长沙, and 湘潭, which was handed nothing
    at_zhuzhou.add(CHANGSHA, "http://changsha.test", cs_key)
    at_zhuzhou.add(XIANGTAN, "http://xiangtan.test", key_of(XIANGTAN))
    files = HandoffFiles(
        lambda: pool, lambda: city.store, at_zhuzhou, served, freshness_seconds=300, clock=Clock(NOW)
    )
    app = create_app(
        CONFIG, health=healthy, registry=CollectorRegistry(), route_handlers=[federation_files_router(files)],
        problem_map=problem_map(),
    )  # fmt: skip
    network = Switch(httpx.ASGITransport(app=app))
    at_changsha = Directory()
    at_changsha.add(ZHUZHOU, "http://zhuzhou.test", key_of(ZHUZHOU))
    fetcher = MaterialFetcher(at_changsha, CHANGSHA, cs_key, fetched, timeout_seconds=5, transport=network)
    handler = HandoffRequests(
        lambda: city.store, lambda: pool, CatalogueQueries(pool), PartnerQueries(pool), region=CHANGSHA,
        clock=Clock(NOW), files=fetcher,
    )  # fmt: skip
    return Cities(pool, city.store, mapper, served, fetched, network, handler)


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


def submitted(*materials: str) -> Case:
    """株洲's case, its events still to be saved."""
    files = {m: UploadedFile(SHA[m]) for m in materials}
    return Case.submit(CITIZEN, MINIAPP, T0, **submission(case_id=uuid.uuid4(), materials=files))


def accepted(*materials: str) -> Case:
    case = submitted(*materials)
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
    return case


def names(*materials: str) -> list[Material]:
    return [Material(material_id=m, sha256=SHA[m]) for m in materials]


async def opened(cities: Cities, handoff: uuid.UUID) -> bool:
    return bool(await cities.store.recorder.select_events(handled_case_id(ZHUZHOU, handoff), limit=1))


async def test_the_case_opens_with_its_files_fetched_and_the_same_bytes(cities: Cities) -> None:
    handoff = uuid.uuid4()
    await cities.hand_off(accepted("M01", "M02"), handoff)
    message = requested(handoff, materials=names("M01", "M02"))
    await cities.handler(message)
    assert await opened(cities, handoff)
    for m in ("M01", "M02"):
        data, ref = cities.fetched.read(SHA[m])
        assert (data, ref.media_type) == (FILES[m], "application/pdf")
    assert cities.network.requests == 2
    await cities.handler(requested(uuid.uuid4(), materials=names("M01")))  # held already: not asked again
    assert cities.network.requests == 2


async def test_a_partner_off_the_network_leaves_the_handoff_for_a_retry_not_refused(cities: Cities) -> None:
    handoff = uuid.uuid4()
    await cities.hand_off(accepted("M01", "M02"), handoff)
    message = requested(handoff, materials=names("M01", "M02"))
    cities.network.down = True
    with pytest.raises(MaterialTransferError, match="ConnectError"):
        await cities.handler(message)
    assert not await opened(cities, handoff) and await outbox(cities.pool, handoff) == []  # no refusal
    cities.network.down = False
    await cities.handler(message)  # the applier's retry
    assert await opened(cities, handoff) and cities.fetched.exists(SHA["M02"])


async def test_a_file_not_in_the_handoff_is_not_served_and_the_case_waits(cities: Cities) -> None:
    handoff = uuid.uuid4()
    await cities.hand_off(accepted("M01"), handoff)
    # "other" is in 株洲's store, but not in this case: the same 404 as a file that is nowhere.
    for name in ("other", "nowhere"):
        sha = SHA.get(name, "f" * 64)
        message = requested(handoff, materials=[*names("M01"), Material(material_id="M09", sha256=sha)])
        with pytest.raises(MaterialTransferError, match=r"HTTP 404.*federation-material-not-found"):
            await cities.handler(message)
    assert not await opened(cities, handoff) and not cities.fetched.exists(SHA["other"])
    assert await cities.refusals() == [("material-not-found", CHANGSHA)] * 2


async def test_only_the_city_the_case_went_to_is_served(cities: Cities) -> None:
    handoff = uuid.uuid4()
    await cities.hand_off(accepted("M01"), handoff)
    path = f"/federation/v1/handoffs/{handoff}/materials/{SHA['M01']}"
    async with httpx.AsyncClient(transport=cities.network, base_url="http://zhuzhou.test") as client:
        for region in (XIANGTAN, CHANGSHA):
            headers = key_of(region).headers(region, "GET", path, b"", str(uuid.uuid4()), int(time.time()))
            answer = await client.get(path, headers=headers)
            assert answer.status_code == (200 if region == CHANGSHA else 404)
        stranger = key_of("430900").headers("430900", "GET", path, b"", str(uuid.uuid4()), 0)
        assert (await client.get(path, headers=stranger)).status_code == 403
    assert await cities.refusals() == [("material-not-found", XIANGTAN), ("partner-unknown", "430900")]


async def test_a_supplement_after_the_handoff_is_served_and_bytes_that_do_not_match_are_not_kept(
    cities: Cities,
) -> None:
    case = submitted("M01")
    case.accept_with_missing_materials(
        CLERK, WINDOW, STEP, receipt_number="SL-2", query_password_hash=PASSWORD_HASH, missing=["fire-check"],
        minor=["fire-check"], commitment_sha256=COMMITMENT, supplement_due=DUE, on_credit_blacklist=False,
    )  # fmt: skip
    handoff = uuid.uuid4()
    await cities.hand_off(case, handoff)
    case.supplement_materials(
        CITIZEN, MINIAPP, STEP, materials={"fire-check": UploadedFile(SHA["fire-check"])}
    )
    await cities.store.save(case)
    fetcher = cities.handler.files
    assert fetcher is not None
    cities.network.garble = True
    with pytest.raises(MaterialTransferError, match="do not hash"):
        await fetcher.fetch_missing(ZHUZHOU, handoff, [SHA["fire-check"]])
    assert not cities.fetched.exists(SHA["fire-check"])
    cities.network.garble = False
    assert await fetcher.fetch_missing(ZHUZHOU, handoff, [SHA["fire-check"], SHA["M01"]]) == sorted(
        [SHA["fire-check"], SHA["M01"]]
    )
    assert cities.fetched.read(SHA["fire-check"])[0] == FILES["fire-check"]
