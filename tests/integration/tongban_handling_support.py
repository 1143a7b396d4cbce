"""What the 办理地 tests share: a catalogue loaded, the handler wired, a partner's application."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from eventsourcing.persistence import Mapper

from backend.catalogue import load_catalogue
from backend.federation.handlers import AppliedMessage
from backend.federation.handling import HANDOFF_REQUESTED, HandoffRequests
from backend.federation.kinds import ENCODER, HandoffRequested, Material, Party
from backend.federation.messages import ENVELOPE, Envelope
from backend.store.aggregates import AggregateStore
from backend.store.recorder import EventRecorder
from domain.case.checks import BEIJING
from projections.catalogue import CatalogueProjection, CatalogueQueries
from projections.partners import PartnerProjection, PartnerQueries
from tests.integration.store_support import Clock, catch_up

CHANGSHA, ZHUZHOU = "430100", "430200"
NOW = datetime(2026, 9, 29, 10, tzinfo=BEIJING)  # a Tuesday
SOLE_TRADER = "11430100006182474N010100200000"  # 个体工商户设立登记 (SCJGJ): 异地代收代办 with 株洲
FOOD = "11430100006182474N010100300000"  # 食品经营许可: no 通办

ZHANG = Party(
    kind="person", name="张三", id_type="resident_id", id_number="430102199003071234",
    phone="13812341234", address="湖南省株洲市天元区长江北路1号",
)  # fmt: skip


@dataclass
class Handling:
    store: AggregateStore
    pool: asyncpg.Pool
    handler: HandoffRequests


async def handling(pool: asyncpg.Pool, recorder: EventRecorder, mapper: Mapper[uuid.UUID]) -> Handling:
    store = AggregateStore(recorder, mapper, snapshot_every=0)
    await load_catalogue(store)
    await catch_up(pool, mapper, CatalogueProjection(), PartnerProjection())
    handler = HandoffRequests(
        lambda: store, lambda: pool, CatalogueQueries(pool), PartnerQueries(pool),
        region=CHANGSHA, clock=Clock(NOW),
    )  # fmt: skip
    return Handling(store, pool, handler)


def requested(handoff: uuid.UUID, item_code: str = SOLE_TRADER, **changes: Any) -> AppliedMessage:
    """Zhuzhou's `handoff.requested` for one of its cases, its turn come."""
    payload = HandoffRequested(
        mode="remote_collect",
        item_code=item_code,
        origin_case_id=uuid.uuid5(handoff, "origin"),
        origin_number="430200202609290000007",
        accepted_at=NOW,
        applicant=ZHANG,
        form={"经营范围": "餐饮服务"},
        materials=[Material(material_id=m, sha256=c * 64) for m, c in (("M01", "a"), ("M02", "b"))],
    )
    payload = msgspec.structs.replace(payload, **changes)
    return AppliedMessage(
        partner=ZHUZHOU, message_id=uuid.uuid4(), handoff=handoff, seq=1, kind=HANDOFF_REQUESTED,
        payload=ENCODER.encode(payload), sent_at=NOW, received_at=NOW,
    )  # fmt: skip


@dataclass(frozen=True)
class Sent:
    message_id: uuid.UUID
    seq: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime


async def outbox(pool: asyncpg.Pool, handoff: uuid.UUID, partner: str = ZHUZHOU) -> list[Sent]:
    rows = await pool.fetch(
        "SELECT message_id, seq, kind, body, created_at FROM federation_outbox "
        "WHERE partner = $1 AND handoff = $2 ORDER BY seq",
        partner,
        handoff,
    )
    sent = []
    for r in rows:
        envelope: Envelope = ENVELOPE.decode(r["body"])
        assert (envelope.kind, envelope.seq, envelope.handoff) == (r["kind"], r["seq"], handoff)
        payload = msgspec.json.decode(envelope.payload)
        sent.append(Sent(r["message_id"], r["seq"], r["kind"], payload, r["created_at"]))
    return sent
