"""The catalogue end to end on PostgreSQL: load the data file as events, project it, query it, rebuild it."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.cases.access import Caller, UnknownServiceItemError
from backend.cases.service import CaseService
from backend.cases.terms import item_terms
from backend.catalogue import DEFAULT_CATALOGUE, load_catalogue, read_catalogue
from backend.consumers import ConsumerRunner, ensure_installed, rebuild
from backend.consumers.batch import process_batch
from backend.consumers.generations import active_generation
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from domain.case import Case, Person, Role
from domain.case.checks import BEIJING
from domain.catalogue import ServiceItem, item_id
from domain.personal import Address, IdNumber, PersonName, Phone
from projections.catalogue import (
    CATALOGUE_STAMP,
    CATALOGUE_TOPICS,
    BundleGuide,
    CatalogueProjection,
    CatalogueQueries,
    DepartmentNames,
    ServiceGuide,
    department_names,
)
from tests.integration.consumer_support import head, wait_for

pytestmark = pytest.mark.integration

SOURCE = read_catalogue()
ITEMS, BUNDLES = len(SOURCE.items), len(SOURCE.bundles)
COMPANY = next(i.code for i in SOURCE.items if i.name.startswith("企业设立登记"))
START_UP = next(b for b in SOURCE.bundles if b.name == "企业开办一件事")
# Not a child of any bundle, so the file stays valid without it.
LONE = next(i.code for i in SOURCE.items if all(i.code not in b.children for b in SOURCE.bundles))
_ROWS = {
    "catalogue_items": "SELECT * FROM catalogue_items ORDER BY code",
    "catalogue_bundles": "SELECT * FROM catalogue_bundles ORDER BY code",
    "catalogue_versions": "SELECT * FROM catalogue_versions ORDER BY entry_id, version",
}


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
def store(recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> AggregateStore:
    return AggregateStore(recorder, mapper, snapshot_every=0)


@pytest.fixture
def queries(pool: asyncpg.Pool) -> CatalogueQueries:
    return CatalogueQueries(lambda: pool)  # the runtime's shape: the pool exists only after start-up


async def catch_up(pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> None:
    projection = CatalogueProjection()
    await ensure_installed(pool, projection)
    async with pool.acquire() as conn:
        generation = await active_generation(conn, projection.name)
        while True:
            async with conn.transaction():
                result = await process_batch(conn, projection, mapper.to_domain_event, generation, 7)
            if result.caught_up:
                return


def edited_copy(tmp_path: Path, edit: Any) -> Path:
    raw = json.loads(DEFAULT_CATALOGUE.read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return path


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(r) for r in await pool.fetch(sql)] for name, sql in _ROWS.items()}


async def test_load_project_and_query(
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    queries: CatalogueQueries,
) -> None:
    report = await load_catalogue(store)
    assert (len(report.published), report.unchanged, report.withdrawn) == (ITEMS + BUNDLES, (), ())
    await catch_up(pool, recorder, mapper)

    everything = await queries.list_services(size=100)
    assert everything.total == ITEMS and len(everything.items) == ITEMS
    assert all(s.version == 1 and s.status == "active" for s in everything.items)
    page = await queries.list_services(page=2, size=10)
    assert [s.code for s in page.items] == [s.code for s in everything.items[10:20]]

    licence = await queries.list_services(q="营业执照")  # a keyword
    assert COMPANY in {s.code for s in licence.items}
    by_material = await queries.list_services(q="出生医学证明")  # a material name
    assert {"出生登记（新生儿入户）", "出生医学证明首次签发"} <= {s.name for s in by_material.items}
    by_department_name = await queries.list_services(q="住房公积金管理中心")
    assert by_department_name.total == 2
    ascii_case = await queries.list_services(q=COMPANY[:18].lower())  # codes match case-insensitively
    assert ascii_case.total >= 3
    assert (await queries.list_services(q="不存在的事项")).total == 0
    assert (await queries.list_services(q="%")).total == 0  # no wildcard injection

    market = await queries.list_services(department="SCJGJ")
    assert market.total == 3 and {s.department_name for s in market.items} == {"长沙市市场监督管理局"}
    instant = await queries.list_services(mode="instant_approval")
    assert instant.total >= 2 and all("instant_approval" in s.modes for s in instant.items)
    permits = await queries.list_services(kind="licensing", mode="commitment")
    assert permits.total >= 2 and all(s.kind == "licensing" for s in permits.items)
    xiangtan = await queries.list_services(tongban="430300")
    assert xiangtan.total >= 3 and all("430300" in s.tongban_regions for s in xiangtan.items)

    guide = await queries.service(COMPANY)
    assert guide is not None and guide.version == 1 and guide.status == "active"
    assert guide.spec == next(i for i in SOURCE.items if i.code == COMPANY)  # the whole spec round-trips
    assert [b.name for b in guide.part_of] == ["企业开办一件事"]
    assert await queries.service("NOPE") is None

    bundles = await queries.list_bundles()
    assert {b.name for b in bundles} >= {"企业开办一件事", "新生儿出生一件事", "二手房转移登记一件事"}
    start_up = await queries.bundle(START_UP.code)
    assert start_up is not None and start_up.spec == START_UP
    assert [c.code for c in start_up.children] == list(START_UP.children)
    assert len({c.department_code for c in start_up.children}) == 5

    [published] = await queries.service_versions(COMPANY)
    assert published.change == "published" and published.version == 1 and published.spec == guide.spec
    assert await queries.service_versions("NOPE") == []
    assert len(await queries.bundle_versions(START_UP.code)) == 1


async def test_a_second_start_appends_nothing(store: AggregateStore, pool: asyncpg.Pool) -> None:
    await load_catalogue(store)
    before = await head(pool)
    report = await load_catalogue(store)
    assert not report.changed and len(report.unchanged) == ITEMS + BUNDLES
    assert await head(pool) == before


async def test_revise_withdraw_and_reinstate(
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    queries: CatalogueQueries,
    tmp_path: Path,
) -> None:
    await load_catalogue(store)

    def edit(raw: dict[str, Any]) -> None:
        company = next(i for i in raw["items"] if i["code"] == COMPANY)
        company["promised_limit"] = {"amount": 0, "unit": "working_day"}  # now 即办
        raw["items"] = [i for i in raw["items"] if i["code"] != LONE]

    report = await load_catalogue(store, edited_copy(tmp_path, edit))
    assert (report.revised, report.withdrawn) == ((COMPANY,), (LONE,))
    assert len(report.unchanged) == ITEMS + BUNDLES - 2
    item = await store.get(item_id(COMPANY))
    assert isinstance(item, ServiceItem) and item.version == 2
    await catch_up(pool, recorder, mapper)

    guide = await queries.service(COMPANY)
    assert guide is not None and guide.version == 2 and guide.spec.promised_limit.amount == 0
    assert [v.change for v in await queries.service_versions(COMPANY)] == ["published", "revised"]
    gone = await queries.service(LONE)
    assert gone is not None and gone.status == "withdrawn" and gone.version == 2
    assert LONE not in {s.code for s in (await queries.list_services(size=100)).items}
    withdrawal = (await queries.service_versions(LONE))[-1]
    assert (withdrawal.change, withdrawal.spec, withdrawal.reason) == ("withdrawn", None, "已从事项清单移除")

    # Back to the shipped file: the company item is revised back, the lone one reinstated.
    report = await load_catalogue(store)
    assert (report.revised, report.reinstated) == ((COMPANY,), (LONE,))
    await catch_up(pool, recorder, mapper)
    back = await queries.service(LONE)
    assert back is not None and (back.status, back.version) == ("active", 3)
    assert (await queries.list_services(size=100)).total == ITEMS


async def test_rebuild_gives_identical_rows(
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    tmp_path: Path,
) -> None:
    await load_catalogue(store)
    drop_lone = edited_copy(
        tmp_path, lambda raw: raw.update(items=[i for i in raw["items"] if i["code"] != LONE])
    )
    await load_catalogue(store, drop_lone)
    await catch_up(pool, recorder, mapper)
    before = await snapshot(pool)
    assert len(before["catalogue_versions"]) == ITEMS + BUNDLES + 1
    stamp = await pool.fetchval("SELECT " + CATALOGUE_STAMP)
    assert stamp == f"_g1:{ITEMS + BUNDLES + 1}"  # one change per row of catalogue_versions

    generation = await rebuild(recorder, CatalogueProjection(), mapper.to_domain_event, batch_size=5)
    assert generation == 2
    assert await snapshot(pool) == before
    # The same rows, but another generation: what readers kept from the old one is dropped.
    assert await pool.fetchval("SELECT " + CATALOGUE_STAMP) == f"_g2:{ITEMS + BUNDLES + 1}"


async def test_processes_starting_together_load_once(store: AggregateStore, pool: asyncpg.Pool) -> None:
    first, second = await asyncio.gather(load_catalogue(store), load_catalogue(store))
    assert sorted([len(first.published), len(second.published)]) == [0, ITEMS + BUNDLES]
    topics = await pool.fetch("SELECT topic, count(*) FROM stored_events GROUP BY topic")
    counts = {r["topic"]: r["count"] for r in topics}
    assert counts["domain.catalogue:ServiceItem.Published"] == ITEMS
    assert counts["domain.catalogue:CatalogueListing.Listed"] == 1


async def test_a_live_runner_follows_the_catalogue(
    db_url: str,
    store: AggregateStore,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    pool: asyncpg.Pool,
    queries: CatalogueQueries,
) -> None:
    projection = CatalogueProjection()
    assert projection.topics == CATALOGUE_TOPICS and len(CATALOGUE_TOPICS) == 8
    await ensure_installed(pool, projection)
    runner = ConsumerRunner(db_url, recorder, projection, mapper.to_domain_event, poll_seconds=0.2)
    runner.start()
    try:
        await load_catalogue(store)

        async def all_there() -> bool:
            return (await queries.list_services()).total == ITEMS

        await wait_for(all_there, what="the runner to project the catalogue")
        # The listing's own event is not a catalogue topic, but the position passes it.
        await wait_for(lambda: _at_head(runner, pool), what="the runner to reach the head")
    finally:
        await runner.stop(grace_seconds=5)


async def _at_head(runner: ConsumerRunner, pool: asyncpg.Pool) -> bool:
    return runner.position == await head(pool)


async def test_kept_entries_follow_the_read_model(
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    queries: CatalogueQueries,
    tmp_path: Path,
) -> None:
    await load_catalogue(store)
    await catch_up(pool, recorder, mapper)
    assert (await item_terms(queries, COMPANY)).version == 1
    assert (await item_terms(queries, START_UP.code)).version == 1
    assert LONE in await queries.item_departments()

    def edit(raw: dict[str, Any]) -> None:
        company = next(i for i in raw["items"] if i["code"] == COMPANY)
        company["promised_limit"] = {"amount": 0, "unit": "working_day"}
        raw["items"] = [i for i in raw["items"] if i["code"] != LONE]

    await load_catalogue(store, edited_copy(tmp_path, edit))
    # Until the projection applies the events, the views and what is kept from them agree.
    assert (await item_terms(queries, COMPANY)).version == 1
    await catch_up(pool, recorder, mapper)
    terms = await item_terms(queries, COMPANY)
    assert terms.version == 2 and terms.promised.amount == 0
    assert LONE not in await queries.item_departments()
    with pytest.raises(UnknownServiceItemError):
        await item_terms(queries, LONE)


async def test_guides_for_a_batch_of_codes_follow_the_read_model_too(
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    queries: CatalogueQueries,
    tmp_path: Path,
) -> None:
    await load_catalogue(store)
    await catch_up(pool, recorder, mapper)
    found = await queries.guides([COMPANY, START_UP.code, "no-such-item", COMPANY])
    assert set(found) == {COMPANY, START_UP.code, "no-such-item"}
    assert isinstance(found[COMPANY], ServiceGuide) and found[COMPANY].version == 1
    assert isinstance(found[START_UP.code], BundleGuide) and found[START_UP.code].spec.code == START_UP.code
    assert found["no-such-item"] is None

    def edit(raw: dict[str, Any]) -> None:
        company = next(i for i in raw["items"] if i["code"] == COMPANY)
        company["promised_limit"] = {"amount": 0, "unit": "working_day"}

    await load_catalogue(store, edited_copy(tmp_path, edit))
    await catch_up(pool, recorder, mapper)
    again = await queries.guides([COMPANY, START_UP.code])
    assert isinstance(again[COMPANY], ServiceGuide) and again[COMPANY].version == 2
    assert again[COMPANY] == await queries.service(COMPANY)  # one cache for both ways in


async def test_a_submission_after_a_revision_records_the_new_version(
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    queries: CatalogueQueries,
    tmp_path: Path,
) -> None:
    await load_catalogue(store)
    await catch_up(pool, recorder, mapper)
    service = CaseService(
        store,
        pool,
        queries,
        region="430100",
        clock=lambda: datetime(2026, 9, 29, 10, tzinfo=BEIJING),
        materials_exist=lambda _: True,
    )
    citizen = Caller(subject="citizen-kept", role=Role.CITIZEN)
    applicant = Person(
        name=PersonName("张三"),
        identity=IdNumber("430102199003071234"),
        phone=Phone("13812341234"),
        address=Address.parse("湖南省长沙市岳麓区麓山南路1号"),
    )

    async def submit(request: str) -> str:
        done = await service.submit(citizen, item_code=LONE, client_request_id=request, applicant=applicant)
        case = await store.get(done.case_id)
        assert isinstance(case, Case)
        return case.catalogue_version

    assert await submit("before") == "1"

    def edit(raw: dict[str, Any]) -> None:
        lone = next(i for i in raw["items"] if i["code"] == LONE)
        lone["promised_limit"] = {"amount": 1, "unit": "natural_day"}

    await load_catalogue(store, edited_copy(tmp_path, edit))
    await catch_up(pool, recorder, mapper)
    assert await submit("after") == "2"


async def test_department_names_are_kept_per_stamp(
    store: AggregateStore,
    pool: asyncpg.Pool,
    recorder: EventRecorder,
    mapper: Mapper[uuid.UUID],
    tmp_path: Path,
) -> None:
    await load_catalogue(store)
    await catch_up(pool, recorder, mapper)
    names = DepartmentNames()
    before = await pool.fetchval("SELECT " + CATALOGUE_STAMP)
    assert await names.of(pool, {"SCJGJ", "NOPE"}, before) == {"SCJGJ": "长沙市市场监督管理局"}

    def rename(raw: dict[str, Any]) -> None:
        next(d for d in raw["departments"] if d["code"] == "SCJGJ")["name"] = "长沙市市场监管局"

    await load_catalogue(store, edited_copy(tmp_path, rename))
    await catch_up(pool, recorder, mapper)
    after = await pool.fetchval("SELECT " + CATALOGUE_STAMP)
    assert after != before
    # A reader bringing the old stamp gets what was kept for it; the new stamp reads afresh.
    assert await names.of(pool, {"SCJGJ"}, before) == {"SCJGJ": "长沙市市场监督管理局"}
    assert await names.of(pool, {"SCJGJ"}, after) == {"SCJGJ": "长沙市市场监管局"}
    assert await department_names(pool, {"SCJGJ"}) == {"SCJGJ": "长沙市市场监管局"}
