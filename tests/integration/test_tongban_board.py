"""The 通办 dashboard on PostgreSQL: real case events through the store, projected, figured, rebuilt."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import asyncpg
import pytest
from eventsourcing.persistence import Mapper

from backend.consumers import rebuild
from backend.store.aggregates import AggregateStore
from backend.store.mapper import make_mapper
from backend.store.recorder import EventRecorder
from domain.case import Actor, Case, Channel, ResultCode, Role, format_case_number
from domain.case.checks import BEIJING
from projections.tongban_board import TongbanBoardProjection
from projections.tongban_board_reads import TongbanBoardQueries
from tests.integration.store_support import catch_up
from tests.unit.case_builders import CITIZEN, CLERK, MINIAPP, PASSWORD_HASH, WINDOW, submission

pytestmark = pytest.mark.integration

ZHUZHOU = Actor(id="430200", role=Role.PARTNER, name="株洲")
XIANGTAN = Actor(id="430300", role=Role.PARTNER, name="湘潭")
CITY = Channel.PARTNER_CITY
T = datetime(2026, 5, 6, 9, tzinfo=BEIJING)
NOW = T + timedelta(days=4)
HOUR = 3600


def _accepted(n: int, when: datetime) -> Case:
    case = Case.submit(
        CITIZEN,
        MINIAPP,
        when,
        **submission(case_id=uuid.uuid4(), number=format_case_number("430100", when.date(), n)),
    )
    case.accept(CLERK, WINDOW, when, receipt_number=f"SL-{n}", query_password_hash=PASSWORD_HASH)
    return case


def _handed_off(n: int, when: datetime) -> Case:
    case = _accepted(n, when)
    case.hand_off(CLERK, WINDOW, when, partner="430200", mode="remote_collect", handoff=uuid.uuid4())
    return case


async def _build(store: AggregateStore) -> dict[str, Case]:
    refused = _handed_off(1, T)
    refused.record_handoff_refusal(ZHUZHOU, CITY, T + timedelta(hours=2), reason="不受理此事项")
    approved = _handed_off(2, T)
    approved.record_partner_acceptance(ZHUZHOU, CITY, T + timedelta(hours=1), partner_number="4302001")
    approved.post_paper_materials(CLERK, WINDOW, T + timedelta(hours=2), waybill_number="EMS1")
    approved.archive_paper_materials(ZHUZHOU, CITY, T + timedelta(days=2, hours=2))
    approved.record_partner_progress(ZHUZHOU, CITY, T + timedelta(days=1), step="task.approved", label="批准")
    approved.record_partner_decision(ZHUZHOU, CITY, T + timedelta(days=3), result=ResultCode.APPROVED)
    waiting = _handed_off(3, T + timedelta(days=1))
    waiting.record_partner_acceptance(ZHUZHOU, CITY, T + timedelta(days=1, hours=5), partner_number="4302002")
    waiting.post_paper_materials(CLERK, WINDOW, T + timedelta(days=2), waybill_number="EMS2")
    received = Case.submit(
        XIANGTAN,
        CITY,
        T,
        **submission(case_id=uuid.uuid4(), number=format_case_number("430100", T.date(), 4)),
    )
    received.received_from_partner(
        XIANGTAN, CITY, T + timedelta(minutes=1), origin_case_id=uuid.uuid4(), origin_number="4303001",
        mode="remote_collect", handoff=uuid.uuid4(),
    )  # fmt: skip
    cases = {"refused": refused, "approved": approved, "waiting": waiting, "received": received}
    for case in cases.values():
        await store.save(case)
    return cases


@pytest.fixture
def mapper() -> Mapper[uuid.UUID]:
    return make_mapper()


@pytest.fixture
def store(recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> AggregateStore:
    return AggregateStore(recorder, mapper, snapshot_every=0)


async def test_counts_in_flight_delays_and_backlog_per_partner(
    store: AggregateStore, pool: asyncpg.Pool, mapper: Mapper[uuid.UUID]
) -> None:
    cases = await _build(store)
    await catch_up(pool, mapper, TongbanBoardProjection())
    # One message to 株洲 still undelivered since the first hand-off, one delivered.
    for delivered in (None, T + timedelta(minutes=5)):
        await pool.execute(
            "INSERT INTO federation_outbox (message_id, partner, handoff, seq, kind, body, created_at, "
            "delivered_at) VALUES ($1, '430200', $2, 1, 'handoff.offered', '\\x7b7d', $3, $4)",
            uuid.uuid4(), uuid.uuid4(), T, delivered,
        )  # fmt: skip
    queries = TongbanBoardQueries(pool, lambda: NOW)

    zhuzhou, xiangtan = await queries.dashboard(date(2026, 5, 1), date(2026, 5, 31))
    assert (zhuzhou.region, zhuzhou.name, xiangtan.region) == ("430200", None, "430300")
    sent = zhuzhou.sent
    assert (sent.handed_off, sent.taken_on, sent.refused, sent.concluded, sent.approved, sent.denied) == (
        3, 2, 1, 1, 1, 0,
    )  # fmt: skip
    assert sent.in_flight == 1 and sent.oldest_in_flight is not None
    assert sent.oldest_in_flight.case_id == cases["waiting"].id
    assert sent.oldest_in_flight.waiting_seconds == 3 * 24 * HOUR
    assert (sent.to_acceptance.cases, sent.to_acceptance.median_seconds, sent.to_acceptance.max_seconds) == (
        2, HOUR, 5 * HOUR,
    )  # fmt: skip
    assert sent.to_acceptance.p90_seconds == 5 * HOUR
    assert (sent.to_decision.cases, sent.to_decision.median_seconds) == (1, 3 * 24 * HOUR)
    assert zhuzhou.received.handed_off == 0 and zhuzhou.received.in_flight == 0
    # The paper originals: one archived two days after posting, one still on its way for two days.
    assert (sent.paper_in_transit, sent.paper_to_archive.cases, sent.paper_to_archive.max_seconds) == (
        1, 1, 2 * 24 * HOUR,
    )  # fmt: skip
    assert sent.oldest_paper_in_transit is not None
    assert sent.oldest_paper_in_transit.case_id == cases["waiting"].id
    assert sent.oldest_paper_in_transit.waiting_seconds == 2 * 24 * HOUR
    assert (zhuzhou.backlog.pending, zhuzhou.backlog.oldest_pending_seconds) == (1, 4 * 24 * HOUR)

    got = xiangtan.received
    assert (got.handed_off, got.concluded, got.in_flight, got.to_decision.cases) == (1, 0, 1, 0)
    assert got.oldest_in_flight is not None and got.oldest_in_flight.case_id == cases["received"].id
    assert xiangtan.sent.handed_off == 0 and xiangtan.backlog.pending == 0

    # The window counts by the Beijing day of hand-off; in flight is as of now whatever the window.
    (later, _) = await queries.dashboard(date(2026, 5, 7), date(2026, 5, 7))
    assert (later.sent.handed_off, later.sent.taken_on, later.sent.in_flight) == (1, 1, 1)


async def test_a_rebuild_gives_identical_rows(
    store: AggregateStore, pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]
) -> None:
    await _build(store)
    consumer = TongbanBoardProjection()
    await catch_up(pool, mapper, consumer)

    async def dump() -> list[str]:
        return [
            r[0] for r in await pool.fetch("SELECT row_to_json(x)::text FROM tongban_handoffs x ORDER BY 1")
        ]

    before = await dump()
    assert len(before) == 4
    assert await rebuild(recorder, consumer, mapper.to_domain_event, batch_size=2) == 2
    assert await dump() == before
