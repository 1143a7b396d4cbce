"""The partner registry on PostgreSQL: commands through the event store, the read model, rotation, rebuild."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import datetime

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.consumers import ensure_installed, rebuild
from backend.federation.directory import PartnerDirectory
from backend.federation.partners import PartnerService
from backend.federation.signing import SignatureError, SigningKey, parse_public_key, verify
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from domain.case import Actor, Role
from domain.case.checks import BEIJING
from domain.tongban import (
    Acceptance,
    InvalidPartnerError,
    InvalidPartnerKeyError,
    LastPartnerKeyError,
    NotPartnerAdministratorError,
    Partner,
    UnknownPartnerError,
    partner_id,
)
from projections.partners import PartnerProjection, PartnerQueries
from tests.integration.store_support import Clock, catch_up

pytestmark = pytest.mark.integration

ADMIN = Actor(id="admin-1", role=Role.SUPERVISOR, name="政务服务管理")
ZHUZHOU = "430200"
ITEM = "11430200006182474N010100300000"
ACCEPTS = (Acceptance(item_code=ITEM, modes=("full_online", "remote_collect")),)
SHORT_KEY = base64.b64encode(b"x" * 31).decode()
OLD, NEW = SigningKey.from_seed("zz-2026", b"\x01" * 32), SigningKey.from_seed("zz-2027", b"\x02" * 32)


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
def store(recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> AggregateStore:
    return AggregateStore(recorder, mapper, snapshot_every=0)


@pytest.fixture
def service(store: AggregateStore) -> PartnerService:
    return PartnerService(store, clock=Clock(datetime(2026, 3, 2, 9, tzinfo=BEIJING)), own_region="430100")


@pytest.fixture
def queries(pool: asyncpg.Pool) -> PartnerQueries:
    return PartnerQueries(lambda: pool)  # the runtime's shape: the pool exists only after start-up


async def register(service: PartnerService, *keys: SigningKey) -> Partner:
    partner, changed = await service.configure(
        ADMIN, ZHUZHOU, name="株洲市", base_url="https://zwfw.zhuzhou.example/", accepts=ACCEPTS,
        keys=[(k.kid, k.public_text()) for k in keys or (OLD,)],
    )  # fmt: skip
    assert changed
    return partner


def signed(key: SigningKey, body: bytes = b"{}") -> dict[str, str]:
    now = int(datetime.now().timestamp())
    return key.headers(ZHUZHOU, "POST", "/federation/v1/messages", body, str(uuid.uuid4()), now)


async def check(directory: PartnerDirectory, headers: dict[str, str]) -> str:
    """What the inbox does with a partner's message: look the sender up, verify against its valid keys."""
    partner = await directory.find(headers["Citypass-Region"])
    assert partner is not None
    keys = {kid: parse_public_key(text) for kid, text in partner.keys.items()}
    now = int(datetime.now().timestamp())
    return verify(headers, "POST", "/federation/v1/messages", b"{}", keys, now).kid


async def test_a_registered_partner_reads_back_as_the_directory_needs_it(
    service: PartnerService, store: AggregateStore, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID],
    queries: PartnerQueries,
) -> None:  # fmt: skip
    await register(service)
    loaded = await store.get(partner_id(ZHUZHOU))  # through the transcoder and back
    assert loaded.accepts == ACCEPTS and loaded.keys == {"zz-2026": OLD.public_text()}
    events = [mapper.to_domain_event(e) for e in await store.recorder.select_events(partner_id(ZHUZHOU))]
    assert [type(e) for e in events] == [Partner.Registered, Partner.KeyAdded]
    assert all(e.actor == ADMIN for e in events)  # type: ignore[attr-defined]
    await ensure_installed(pool, PartnerProjection())
    assert await queries.find(ZHUZHOU) is None  # the read model has not seen it yet
    await catch_up(pool, mapper, PartnerProjection())
    found = await queries.find(ZHUZHOU)
    assert found is not None
    assert (found.region, found.name, found.base_url) == (ZHUZHOU, "株洲市", "https://zwfw.zhuzhou.example")
    assert found.keys == {"zz-2026": OLD.public_text()} and found.accepts == ACCEPTS and found.version == 2
    assert await queries.find("430300") is None
    assert [p.region for p in await queries.all()] == [ZHUZHOU]
    assert await check(queries, signed(OLD)) == "zz-2026"


async def test_rotation_without_downtime(
    service: PartnerService, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID], queries: PartnerQueries
) -> None:
    await register(service)
    _, added = await service.add_key(ADMIN, ZHUZHOU, NEW.kid, NEW.public_text())
    await catch_up(pool, mapper, PartnerProjection())
    # Both valid: messages the partner signed before it switched, and after.
    assert await check(queries, signed(OLD)) == "zz-2026"
    assert await check(queries, signed(NEW)) == "zz-2027"
    partner, retired = await service.retire_key(ADMIN, ZHUZHOU, OLD.kid)
    assert added and retired and partner.keys == {"zz-2027": NEW.public_text()}
    await catch_up(pool, mapper, PartnerProjection())
    assert await check(queries, signed(NEW)) == "zz-2027"
    with pytest.raises(SignatureError) as refused:
        await check(queries, signed(OLD))
    assert refused.value.kind == "unknown-key"
    found = await queries.find(ZHUZHOU)
    assert found is not None and found.version == 4


async def test_refused_commands_record_nothing(
    service: PartnerService, store: AggregateStore, pool: asyncpg.Pool
) -> None:
    await register(service)
    refusals = [
        (service.retire_key(ADMIN, ZHUZHOU, OLD.kid), LastPartnerKeyError),
        (service.add_key(ADMIN, ZHUZHOU, "zz-bad", SHORT_KEY), InvalidPartnerKeyError),
        (service.add_key(ADMIN, "430300", NEW.kid, NEW.public_text()), UnknownPartnerError),
        (service.add_key(Actor(id="m", role=Role.MANAGER), ZHUZHOU, NEW.kid, NEW.public_text()),
         NotPartnerAdministratorError),
        (service.configure(ADMIN, ZHUZHOU, name="株洲", base_url="ftp://", accepts=()), InvalidPartnerError),
        # Keys change one at a time through their own commands, never by a new description.
        (service.configure(ADMIN, ZHUZHOU, name="株洲市", base_url="https://zz.example", accepts=(),
                           keys=[(NEW.kid, NEW.public_text())]), InvalidPartnerKeyError),
        (service.configure(ADMIN, "430100", name="长沙市", base_url="https://cs.example", accepts=(),
                           keys=[(NEW.kid, NEW.public_text())]), InvalidPartnerError),  # ourselves
        (service.configure(ADMIN, "43030", name="湘潭市", base_url="https://xt.example", accepts=(),
                           keys=[(NEW.kid, NEW.public_text())]), InvalidPartnerError),
    ]  # fmt: skip
    for command, error in refusals:
        with pytest.raises(error):
            await command
    assert await pool.fetchval("SELECT count(*) FROM stored_events") == 2  # Registered, KeyAdded
    assert (await store.get(partner_id(ZHUZHOU))).version == 2


async def test_a_retried_registration_answers_as_the_first(service: PartnerService) -> None:
    first = await register(service)
    again, changed = await service.configure(
        ADMIN, ZHUZHOU, name="株洲市", base_url="https://zwfw.zhuzhou.example", accepts=ACCEPTS,
        keys=[(OLD.kid, OLD.public_text())],
    )  # fmt: skip
    assert not changed and again.version == first.version == 2
    _, changed = await service.configure(
        ADMIN, ZHUZHOU, name="株洲市", base_url="https://zz.example", accepts=()
    )
    assert changed


async def test_racing_key_additions_are_both_recorded(
    service: PartnerService, store: AggregateStore, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID],
    queries: PartnerQueries,
) -> None:  # fmt: skip
    await register(service)
    other = PartnerService(store, clock=service.clock, own_region="430100")  # another process's service
    extra = [SigningKey.from_seed(f"zz-{n}", bytes([10 + n]) * 32) for n in range(4)]
    services = [service, other] * 2
    await asyncio.gather(
        *(s.add_key(ADMIN, ZHUZHOU, k.kid, k.public_text()) for s, k in zip(services, extra, strict=True))
    )
    await catch_up(pool, mapper, PartnerProjection())
    found = await queries.find(ZHUZHOU)
    assert found is not None and set(found.keys) == {"zz-2026", *(k.kid for k in extra)}


async def test_a_rebuild_gives_the_same_rows(
    service: PartnerService, recorder: EventRecorder, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    await register(service)
    await service.add_key(ADMIN, ZHUZHOU, NEW.kid, NEW.public_text())
    await service.retire_key(ADMIN, ZHUZHOU, OLD.kid)
    await service.configure(ADMIN, ZHUZHOU, name="株洲市人民政府", base_url="https://zz.example", accepts=())
    await catch_up(pool, mapper, PartnerProjection())
    before = [dict(r) for r in await pool.fetch("SELECT * FROM partners ORDER BY region")]
    assert await rebuild(recorder, PartnerProjection(), mapper.to_domain_event, batch_size=2) == 2
    assert [dict(r) for r in await pool.fetch("SELECT * FROM partners ORDER BY region")] == before
    assert before[0]["name"] == "株洲市人民政府" and before[0]["version"] == 5
