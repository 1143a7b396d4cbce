"""Booking over real HTTP: a manager sets up a hall, citizens hold, confirm, reschedule and cancel.

The server's clock starts on Monday 7 December 2026 at 09:00 (CITYPASS_DEV_CLOCK_START),
after that morning's release, so Tuesday 8 to Monday 14 December can be booked.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.booking_support import FOOD, KAIBAN, hall_config, visitor
from tests.e2e.case_journey_support import assert_problem, login, ok, wait_for
from tests.e2e.conftest import LiveServer, server_at

pytestmark = pytest.mark.e2e

HALL = "SMZJ"
TUESDAY_9 = "2026-12-08T09:00:00+08:00"
TUESDAY_10 = "2026-12-08T10:00:00+08:00"
WEDNESDAY_14 = "2026-12-09T14:00:00+08:00"
FIVE_PAST = datetime.fromisoformat("2026-12-07T09:05:00+08:00")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with server_at(tmp_path_factory.mktemp("booking"), "2026-12-07T09:00:00+08:00") as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=15) as c:
        yield c


@pytest.fixture(scope="module")
def hall(client: httpx.Client) -> dict[str, Any]:
    manager = login(client, "manager-smzj", "manager", hall=HALL)
    body = ok(client.put(f"/api/v1/admin/halls/{HALL}", json=hall_config(), headers=manager))
    assert body["changed"] is True
    return wait_for(lambda: _found(client.get(f"/api/v1/halls/{HALL}")), "the hall in the read model")


def _found(response: httpx.Response) -> dict[str, Any] | None:
    return response.json() if response.status_code == 200 else None


def hold(client: httpx.Client, who: dict[str, str], serial: int, start: str, **extra: Any) -> httpx.Response:
    body = {"hall": HALL, "itemCode": FOOD, "start": start, "visitor": visitor(serial), **extra}
    return client.post("/api/v1/appointments", json=body, headers=who)


def book(client: httpx.Client, who: dict[str, str], serial: int, start: str) -> dict[str, Any]:
    held = ok(hold(client, who, serial, start), 201)
    return ok(client.post(f"/api/v1/appointments/{held['id']}/confirmation", headers=who))


def test_the_hall_shows_its_released_days_and_free_seats(client: httpx.Client, hall: dict[str, Any]) -> None:
    assert hall["bookableDays"] == ["2026-12-08", "2026-12-09", "2026-12-10", "2026-12-11", "2026-12-14"]
    assert [g["capacity"] for g in hall["groups"]] == [2, 1]  # windows serving A, and B
    day = ok(client.get(f"/api/v1/halls/{HALL}/slots", params={"item": FOOD, "day": "2026-12-08"}))
    assert day["bookable"] and len(day["slots"]) == 13
    assert day["slots"][0] == {
        "start": TUESDAY_9, "end": "2026-12-08T09:30:00+08:00", "capacity": 2, "left": 2,
    }  # fmt: skip
    today = ok(client.get(f"/api/v1/halls/{HALL}/slots", params={"item": KAIBAN, "day": "2026-12-07"}))
    assert not today["bookable"] and today["slots"] == []
    assert_problem(
        client.get(f"/api/v1/halls/{HALL}/slots", params={"item": "nope", "day": "2026-12-08"}),
        404,
        "not-found",
    )


def test_hold_confirm_and_a_full_slot(client: httpx.Client, hall: dict[str, Any]) -> None:
    a, b, c = (login(client, f"citizen-{n}", "citizen") for n in "abc")
    held = ok(hold(client, a, 1, TUESDAY_9, clientRequestId="first"), 201)
    # Five minutes after the hold, on a clock that started at 09:00 a few seconds ago.
    expires = datetime.fromisoformat(held["expiresAt"])
    assert held["state"] == "held" and FIVE_PAST <= expires < FIVE_PAST + timedelta(minutes=1)
    assert held["visitorName"] == "张*" and "*" in held["visitorId"]
    again = ok(hold(client, a, 1, TUESDAY_9, clientRequestId="first"), 201)
    assert again["id"] == held["id"]  # the same request, answered again
    confirmed = ok(client.post(f"/api/v1/appointments/{held['id']}/confirmation", headers=a))
    assert (confirmed["state"], confirmed["stateLabel"], confirmed["expiresAt"]) == (
        "confirmed",
        "已预约",
        None,
    )
    book(client, b, 2, TUESDAY_9)
    full = assert_problem(hold(client, c, 3, TUESDAY_9), 409, "slot-full")
    assert "full" in full["detail"]
    # The same person (ID number) again that day at this hall: the cap, whichever account asks.
    assert_problem(hold(client, c, 1, TUESDAY_10), 409, "booking-cap-reached")

    def seats_left() -> int | None:
        day = ok(client.get(f"/api/v1/halls/{HALL}/slots", params={"item": FOOD, "day": "2026-12-08"}))
        left = day["slots"][0]["left"]
        return None if left else -1

    wait_for(seats_left, "the read model showing the slot full")
    mine = wait_for(lambda: ok(client.get("/api/v1/appointments", headers=a)) or None, "my appointments")
    assert [(m["id"], m["state"]) for m in mine] == [(held["id"], "confirmed")]


def test_refusals_are_clear_and_change_nothing(client: httpx.Client, hall: dict[str, Any]) -> None:
    d = login(client, "citizen-d", "citizen")
    bad_id = {
        "hall": HALL,
        "itemCode": FOOD,
        "start": TUESDAY_10,
        "visitor": {**visitor(4), "idNumber": "430102199001011230"},
    }
    problem = assert_problem(client.post("/api/v1/appointments", json=bad_id, headers=d), 400, "validation")
    assert "430102199001011230" not in str(problem)  # never echoed
    assert_problem(hold(client, d, 4, "2026-12-08T09:15:00+08:00"), 422, "slot-not-bookable")
    assert_problem(hold(client, d, 4, "2026-12-15T09:00:00+08:00"), 422, "slot-not-bookable")  # not released
    assert_problem(hold(client, d, 4, TUESDAY_10, hall="NOPE"), 404, "hall-not-found")
    officer = login(client, "officer-1", "officer", department="SCJGJ")
    assert_problem(hold(client, officer, 4, TUESDAY_10), 403, "forbidden")
    assert_problem(client.put(f"/api/v1/admin/halls/{HALL}", json=hall_config(), headers=d), 403, "forbidden")
    other_manager = login(client, "manager-ylq", "manager", hall="YLQ")
    assert_problem(
        client.put(f"/api/v1/admin/halls/{HALL}", json=hall_config(), headers=other_manager),
        403,
        "not-hall-manager",
    )
    manager = login(client, "manager-smzj", "manager", hall=HALL)
    misspelt = hall_config(slot_minute=15)
    assert_problem(
        client.put(f"/api/v1/admin/halls/{HALL}", json=misspelt, headers=manager), 400, "validation"
    )
    broken = hall_config()
    broken["windows"][0]["groups"] = ["Z"]
    assert_problem(
        client.put(f"/api/v1/admin/halls/{HALL}", json=broken, headers=manager), 422, "hall-config-invalid"
    )
    assert not ok(client.put(f"/api/v1/admin/halls/{HALL}", json=hall_config(), headers=manager))["changed"]


def test_reschedule_then_cancel(client: httpx.Client, hall: dict[str, Any]) -> None:
    e, stranger = login(client, "citizen-e", "citizen"), login(client, "citizen-f", "citizen")
    old = book(client, e, 5, TUESDAY_10)
    assert_problem(
        client.post(f"/api/v1/appointments/{old['id']}/cancellation", headers=stranger),
        403,
        "appointment-not-yours",
    )
    new = ok(
        client.post(f"/api/v1/appointments/{old['id']}/reschedule", json={"start": WEDNESDAY_14}, headers=e),
        201,
    )
    assert (new["state"], new["replaces"]) == ("held", old["id"])
    assert ok(client.get(f"/api/v1/appointments/{old['id']}", headers=e))["state"] == "confirmed"
    ok(client.post(f"/api/v1/appointments/{new['id']}/confirmation", headers=e))
    moved = ok(client.get(f"/api/v1/appointments/{old['id']}", headers=e))
    assert (moved["state"], moved["replacedBy"]) == ("rescheduled", new["id"])
    cancelled = ok(
        client.post(f"/api/v1/appointments/{new['id']}/cancellation", json={"reason": "行程有变"}, headers=e)
    )
    assert cancelled["state"] == "cancelled"
    assert (
        ok(client.post(f"/api/v1/appointments/{new['id']}/cancellation", headers=e))["state"] == "cancelled"
    )
    assert_problem(
        client.post(f"/api/v1/appointments/{new['id']}/confirmation", headers=e), 409, "appointment-state"
    )


def test_the_calendar_file_has_the_slot_and_a_reminder(client: httpx.Client, hall: dict[str, Any]) -> None:
    g = login(client, "citizen-g", "citizen")
    mine = book(client, g, 6, "2026-12-10T13:30:00+08:00")
    response = client.get(f"/api/v1/appointments/{mine['id']}/calendar.ics", headers=g)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    text = response.text.replace("\r\n ", "")  # unfold long lines (RFC 5545 3.1)
    assert "BEGIN:VEVENT" in text and f"UID:{mine['id']}@citypass" in text
    assert "DTSTART:20261210T053000Z" in text and "DTEND:20261210T060000Z" in text  # 13:30–14:00 in 长沙
    assert "BEGIN:VALARM" in text and "TRIGGER:-PT1H" in text
    assert "长沙市民之家" in text and "张*" in text
    assert (
        client.get(
            f"/api/v1/appointments/{mine['id']}/calendar.ics", headers=login(client, "x", "citizen")
        ).status_code
        == 403
    )


def test_a_closed_day_leaves_the_horizon(client: httpx.Client, hall: dict[str, Any]) -> None:
    manager = login(client, "manager-smzj", "manager", hall=HALL)
    ok(
        client.put(
            f"/api/v1/admin/halls/{HALL}/closed-days/2026-12-11", json={"reason": "设备检修"}, headers=manager
        )
    )

    def closed() -> dict[str, Any] | None:
        body = ok(client.get(f"/api/v1/halls/{HALL}"))
        return body if "2026-12-11" not in body["bookableDays"] else None

    body = wait_for(closed, "the closed day out of the horizon")
    assert body["closedDays"] == {"2026-12-11": "设备检修"}
    h = login(client, "citizen-h", "citizen")
    assert_problem(hold(client, h, 7, "2026-12-11T09:00:00+08:00"), 422, "slot-not-bookable")
    ok(client.request("DELETE", f"/api/v1/admin/halls/{HALL}/closed-days/2026-12-11", headers=manager))
    wait_for(
        lambda: "2026-12-11" in ok(client.get(f"/api/v1/halls/{HALL}"))["bookableDays"] or None, "reopened"
    )
    ok(hold(client, h, 7, "2026-12-11T09:00:00+08:00"), 201)
