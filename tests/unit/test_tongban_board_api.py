"""The 通办 dashboard route over a fake query port; the percentile rule it reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from prometheus_client import CollectorRegistry

from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from miniapp_api.principal import Principal, Role
from miniapp_api.schemas import HealthReport
from miniapp_api.tokens import issue_token
from miniapp_api.tongban_routes import tongban_router
from projections.tongban_board_reads import Backlog, Delay, InFlight, PartnerBoard, delay, figures

pytestmark = pytest.mark.unit

CONFIG = ApiConfig(jwt_secret="f" * 48, token_ttl_seconds=900, dev_login=False, max_body_bytes=65536)
NOW = datetime(2026, 5, 10, 2, tzinfo=UTC)
CASE = uuid.UUID("7d4f0d8e-2b1c-4c7a-9d52-0f0e6a4c1b11")


class FakeBoard:
    def __init__(self) -> None:
        self.asked: list[tuple[date, date]] = []

    def today(self) -> date:
        return date(2026, 5, 10)

    async def dashboard(self, since: date, until: date) -> list[PartnerBoard]:
        self.asked.append((since, until))
        sent = msgspec.structs.replace(
            figures([], since, until, NOW),
            handed_off=3,
            in_flight=1,
            oldest_in_flight=InFlight(case_id=CASE, handed_off_at=NOW, waiting_seconds=60),
            to_acceptance=delay([3600, 18000]),
        )
        backlog = Backlog(pending=0, oldest_pending_at=None, oldest_pending_seconds=None)
        received = figures([], since, until, NOW)
        return [PartnerBoard(region="430200", name="株洲市", sent=sent, received=received, backlog=backlog)]


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="up", head_position=0, consumers=[])


@pytest.fixture
def board() -> FakeBoard:
    return FakeBoard()


@pytest.fixture
def client(board: FakeBoard) -> Iterator[TestClient[Litestar]]:
    app = create_app(
        CONFIG, health=healthy, registry=CollectorRegistry(), route_handlers=[tongban_router(board)]
    )
    with TestClient(app) as c:
        yield c


def bearer(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(CONFIG, Principal(subject='u-1', role=role))}"}


PATH = "/api/v1/admin/tongban/dashboard"


def test_only_admins_and_supervisors_see_the_dashboard(client, board) -> None:
    assert client.get(PATH).status_code == 401
    assert client.get(PATH, headers=bearer(Role.OFFICER)).status_code == 403
    assert board.asked == []
    assert client.get(PATH, headers=bearer(Role.SUPERVISOR)).status_code == 200


def test_the_dashboard_answers_camel_case_per_partner(client, board) -> None:
    found = client.get(
        PATH, params={"since": "2026-05-01", "until": "2026-05-07"}, headers=bearer(Role.ADMIN)
    )
    assert found.status_code == 200
    body = found.json()
    assert board.asked == [(date(2026, 5, 1), date(2026, 5, 7))]
    assert (body["since"], body["until"]) == ("2026-05-01", "2026-05-07")
    (partner,) = body["partners"]
    assert (partner["region"], partner["name"], partner["sent"]["handedOff"]) == ("430200", "株洲市", 3)
    assert partner["sent"]["oldestInFlight"] == {
        "caseId": str(CASE),
        "handedOffAt": "2026-05-10T02:00:00Z",
        "waitingSeconds": 60,
    }
    assert partner["sent"]["toAcceptance"] == {
        "cases": 2,
        "medianSeconds": 3600,
        "p90Seconds": 18000,
        "maxSeconds": 18000,
    }
    assert partner["backlog"] == {"pending": 0, "oldestPendingAt": None, "oldestPendingSeconds": None}


def test_the_window_defaults_to_the_last_30_days_and_refuses_a_reversed_one(client, board) -> None:
    assert client.get(PATH, headers=bearer(Role.ADMIN)).status_code == 200
    assert board.asked == [(date(2026, 4, 11), date(2026, 5, 10))]
    reversed_ = client.get(
        PATH, params={"since": "2026-05-08", "until": "2026-05-01"}, headers=bearer(Role.ADMIN)
    )
    assert reversed_.status_code == 400


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        ([], Delay(cases=0, median_seconds=None, p90_seconds=None, max_seconds=None)),
        ([5], Delay(cases=1, median_seconds=5, p90_seconds=5, max_seconds=5)),
        ([4, 1, 3, 2], Delay(cases=4, median_seconds=2, p90_seconds=4, max_seconds=4)),
        (list(range(1, 11)), Delay(cases=10, median_seconds=5, p90_seconds=9, max_seconds=10)),
    ],
)
def test_delays_use_nearest_rank_percentiles(seconds: list[int], expected: Delay) -> None:
    assert delay(seconds) == expected
