"""Admin calendar routes over a fake service: admin only, 201 with the year, 422 for an inconsistent year."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import date

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import CollectorRegistry

from domain.workcalendar import PublishedYear
from miniapp_api.admin_calendar import CalendarAdmin, admin_calendar_router
from miniapp_api.app import create_app
from miniapp_api.config import ApiConfig
from miniapp_api.principal import Principal, Role
from miniapp_api.problems import PROBLEM_BASE
from miniapp_api.schemas import HealthReport
from miniapp_api.tokens import issue_token

pytestmark = pytest.mark.integration  # no database, but beside the publishing tests it belongs with

CONFIG = ApiConfig(
    jwt_secret="test-secret-" + "k" * 40, token_ttl_seconds=600, dev_login=False, max_body_bytes=4096
)
YEAR_2027 = {
    "year": 2027,
    "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"],
    "makeupDays": ["2027-02-06"],  # a Saturday
    "source": "国办发明电〔2026〕(test)",
}


class Year(msgspec.Struct, frozen=True, kw_only=True):
    year: int
    source: str
    published: bool
    holidays: tuple[date, ...]
    makeup_days: tuple[date, ...]


class FakeCalendars:
    def __init__(self) -> None:
        self.years = {
            2026: Year(year=2026, source="chinesecalendar", published=False, holidays=(), makeup_days=())
        }
        self.publishers: list[str] = []

    async def publish_year(self, year: PublishedYear, actor_subject: str) -> Year:
        self.publishers.append(actor_subject)
        self.years[year.year] = Year(
            year=year.year,
            source=year.source,
            published=True,
            holidays=year.holidays,
            makeup_days=year.makeup_days,
        )
        return self.years[year.year]

    async def known_years(self) -> Sequence[Year]:
        return [self.years[y] for y in sorted(self.years)]


async def healthy() -> HealthReport:
    return HealthReport(status="ok", database="ok", head_position=0, consumers=[])


@pytest.fixture
def fake() -> FakeCalendars:
    return FakeCalendars()


@pytest.fixture
async def client(fake: FakeCalendars) -> AsyncIterator[AsyncTestClient[Litestar]]:
    port: CalendarAdmin = fake  # the fake satisfies the port, checked by mypy
    app = create_app(
        CONFIG, health=healthy, registry=CollectorRegistry(), route_handlers=[admin_calendar_router(port)]
    )
    async with AsyncTestClient(app) as c:
        yield c


def as_(role: Role, subject: str = "someone") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(CONFIG, Principal(subject=subject, role=role))}"}


async def test_admin_publishes_and_lists(client: AsyncTestClient[Litestar], fake: FakeCalendars) -> None:
    before = await client.get("/api/v1/admin/calendar/years", headers=as_(Role.ADMIN))
    assert before.status_code == 200 and before.json()["firstProvisionalYear"] == 2027
    response = await client.post(
        "/api/v1/admin/calendar/years", json=YEAR_2027, headers=as_(Role.ADMIN, "adm")
    )
    assert response.status_code == 201
    assert response.json() == {
        "year": 2027,
        "source": "国办发明电〔2026〕(test)",
        "published": True,
        "holidays": ["2027-01-01", "2027-01-02", "2027-01-03"],
        "makeupDays": ["2027-02-06"],
    }
    assert fake.publishers == ["adm"]
    after = (await client.get("/api/v1/admin/calendar/years", headers=as_(Role.ADMIN))).json()
    assert [y["year"] for y in after["years"]] == [2026, 2027] and after["firstProvisionalYear"] == 2028


@pytest.mark.parametrize("role", [Role.CITIZEN, Role.CLERK, Role.OFFICER, Role.AUDITOR, Role.PARTNER])
async def test_only_admins(client: AsyncTestClient[Litestar], fake: FakeCalendars, role: Role) -> None:
    posted = await client.post("/api/v1/admin/calendar/years", json=YEAR_2027, headers=as_(role))
    listed = await client.get("/api/v1/admin/calendar/years", headers=as_(role))
    assert (posted.status_code, listed.status_code) == (403, 403)
    assert (await client.get("/api/v1/admin/calendar/years")).status_code == 401
    assert fake.publishers == []


@pytest.mark.parametrize(
    "change",
    [
        {"makeupDays": ["2027-02-08"]},  # a Monday
        {"holidays": ["2026-12-31"]},  # outside the year
        {"source": " "},
        {"holidays": []},
    ],
)
async def test_an_inconsistent_year_is_422(
    client: AsyncTestClient[Litestar], fake: FakeCalendars, change: dict[str, object]
) -> None:
    response = await client.post(
        "/api/v1/admin/calendar/years", json={**YEAR_2027, **change}, headers=as_(Role.ADMIN)
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == PROBLEM_BASE + "invalid-calendar-year"
    assert fake.publishers == []  # bad input never reaches the service


async def test_a_malformed_body_is_400(client: AsyncTestClient[Litestar], fake: FakeCalendars) -> None:
    response = await client.post(
        "/api/v1/admin/calendar/years", json={**YEAR_2027, "year": "2027x"}, headers=as_(Role.ADMIN)
    )
    assert response.status_code == 400 and fake.publishers == []
