"""The hall queue over real HTTP: walk-in tickets at the kiosk and in the mini-program, the window's
calls, the public screen with masked names, and its Server-Sent Events stream.

The server's clock starts on Tuesday 8 December 2026 at 08:50, Beijing time. A booked
check-in needs a booking made a working day before, which one running clock cannot
rehearse; the integration tests cover it with an injected clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.case_journey_support import KAIBAN, ZHANG, Headers, assert_problem, login, ok, wait_for
from tests.e2e.conftest import LiveServer, server_at

pytestmark = pytest.mark.e2e

HALL = "SMZJ"
DAY = "2026-12-08"
FOOD = "11430100006182474N010100300000"  # 食品经营许可: line A
NEAR = {"lat": 28.2290, "lon": 112.9390}  # about 90 m from the hall
FAR = {"lat": 28.2382, "lon": 112.9388}  # about 1.1 km


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with server_at(tmp_path_factory.mktemp("hall-queue"), f"{DAY}T08:50:00+08:00") as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=20) as c:
        yield c


@pytest.fixture(scope="module")
def clerk(client: httpx.Client) -> Headers:
    manager = login(client, "manager-smzj", "manager", hall=HALL)
    config = {
        "name": "长沙市民之家",
        "kind": "市民之家",
        "address": "长沙市岳麓区金星中路428号",
        "windows": [{"code": "W1", "groups": ["A"]}, {"code": "W2", "groups": ["A", "B"]}],
        "groups": [
            {"code": "A", "name": "市场准入", "items": [FOOD], "prefix": "A"},
            {"code": "B", "name": "企业开办", "items": [KAIBAN], "prefix": "B"},
        ],
        "sessions": [{"start": "09:00", "end": "12:00"}],
        "rules": {"missAfterCalls": 2},
        "location": {"lat": 28.2282, "lon": 112.9388},
    }
    ok(client.put(f"/api/v1/admin/halls/{HALL}", json=config, headers=manager))
    return login(client, "clerk-smzj", "clerk", name="周敏", hall=HALL)


def check_in(client: httpx.Client, who: Headers, body: dict[str, Any]) -> httpx.Response:
    return client.post(f"/api/v1/halls/{HALL}/check-ins", json=body, headers=who)


def at_window(
    client: httpx.Client, who: Headers, window: str, action: str, body: Any = None
) -> httpx.Response:
    return client.post(f"/api/v1/halls/{HALL}/windows/{window}/{action}", json=body, headers=who)


def screen_once(client: httpx.Client, test: Any) -> dict[str, Any]:
    """The public screen once the read model satisfies `test`."""

    def probe() -> dict[str, Any] | None:
        screen: dict[str, Any] = ok(client.get(f"/api/v1/halls/{HALL}/display"))
        return screen if test(screen) else None

    return wait_for(probe, "the hall screen")


def test_walk_ins_take_tickets_are_called_served_and_missed(client: httpx.Client, clerk: Headers) -> None:
    citizen = login(client, "citizen-queue-1", "citizen", name="张小明")
    kiosk = ok(check_in(client, clerk, {"group": "A", "channel": "kiosk"}), 201)
    assert (kiosk["ticket"], kiosk["day"], kiosk["queueName"], kiosk["ahead"], kiosk["booked"]) == (
        "A001", DAY, "市场准入", 0, False,
    )  # fmt: skip
    assert kiosk["estimatedWaitSeconds"] is None  # no window open yet
    # In the mini-program: the location is required, and must be near the hall.
    assert_problem(check_in(client, citizen, {"itemCode": FOOD}), 422, "check-in-location-required")
    assert_problem(check_in(client, citizen, {"itemCode": FOOD, "location": FAR}), 403, "too-far-from-hall")
    assert_problem(check_in(client, citizen, {"group": "A", "channel": "kiosk"}), 403, "forbidden")
    mine = ok(check_in(client, citizen, {"itemCode": FOOD, "location": NEAR}), 201)
    assert (mine["ticket"], mine["ahead"], mine["nearTurn"]) == ("A002", 1, True)
    # A second tap gives the same place in line, not a second ticket.
    assert ok(check_in(client, citizen, {"group": "A", "location": NEAR}), 201)["ticket"] == "A002"
    # 张小明 comes with their case: the ticket carries the applicant's name, which the screen masks (张**).
    case = ok(client.post("/api/v1/cases", json=_case("queue-1"), headers=citizen), 201)
    named = ok(check_in(client, citizen, {"group": "B", "caseId": case["caseId"], "location": NEAR}), 201)
    assert (named["ticket"], named["name"]) == ("B001", "张**")

    # Only the hall's staff work its windows.
    stranger = login(client, "clerk-ylq", "clerk", name="王芳", hall="YLQ")
    assert_problem(at_window(client, stranger, "W1", "open"), 403, "not-hall-staff")
    assert_problem(at_window(client, citizen, "W1", "call-next"), 403, "forbidden")
    assert_problem(at_window(client, clerk, "W1", "call-next"), 409, "window-closed")
    assert_problem(at_window(client, clerk, "W9", "open"), 404, "window-not-found")
    opened = ok(at_window(client, clerk, "W1", "open"))
    assert (opened["window"], opened["open"], opened["changed"]) == ("W1", True, True)

    called = ok(at_window(client, clerk, "W1", "call-next"))
    assert (called["ticket"], called["state"], called["window"], called["calls"]) == (
        "A001",
        "called",
        "W1",
        1,
    )
    assert_problem(at_window(client, clerk, "W1", "call-next"), 409, "window-busy")
    assert ok(at_window(client, clerk, "W1", "served"))["state"] == "served"
    assert ok(at_window(client, clerk, "W1", "call-next"))["ticket"] == "A002"
    assert ok(at_window(client, clerk, "W1", "recall"))["calls"] == 2
    missed = ok(at_window(client, clerk, "W1", "recall"))  # the hall misses a ticket after 2 calls
    assert (missed["ticket"], missed["state"]) == ("A002", "missed")
    assert_problem(at_window(client, clerk, "W1", "call-next"), 409, "nobody-waiting")  # W1 serves A only
    assert_problem(at_window(client, clerk, "W1", "transfer", {"toQueue": "B"}), 409, "no-ticket-in-hand")

    # Wait for the miss too: the lines alone already looked like this before it.
    screen = screen_once(
        client, lambda s: [line["waiting"] for line in s["lines"]] == [0, 1] and not s["calls"]
    )
    assert screen["calls"] == []
    line_b = screen["lines"][1]
    assert line_b["next"] == [{"ticket": "B001", "name": "张**", "booked": False}]
    assert line_b["activeWindows"] == 0 and line_b["estimatedWaitSeconds"] is None  # W2 is closed
    raw = client.get(f"/api/v1/halls/{HALL}/display").text
    assert "张小明" not in raw
    tickets = wait_for(lambda: _mine(client, citizen, "missed"), "the missed ticket in my tickets")
    assert [(t["ticket"], t["state"], t["ahead"]) for t in tickets] == [
        ("A002", "missed", None),
        ("B001", "waiting", 0),
    ]


def _mine(client: httpx.Client, citizen: Headers, state: str) -> list[dict[str, Any]] | None:
    tickets: list[dict[str, Any]] = ok(client.get("/api/v1/me/tickets", headers=citizen))
    return tickets if any(t["state"] == state for t in tickets) else None


def test_the_screen_streams_a_frame_at_connect_and_at_each_change(
    client: httpx.Client, clerk: Headers
) -> None:
    with client.stream("GET", f"/api/v1/halls/{HALL}/display/stream") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        frames = _frames(stream.iter_lines())
        first = next(frames)  # at once, whatever the screen shows
        assert first["event"] == "display" and first["id"] == f"{DAY}:{first['data']['version']}"
        ok(at_window(client, clerk, "W2", "open"))
        opened = _until(frames, lambda s: s["lines"][1]["activeWindows"] == 1)
        ok(at_window(client, clerk, "W2", "call-next"))
        called = _until(frames, lambda s: bool(s["calls"]))
        assert called["calls"][0]["window"] == "W2"
        assert (called["calls"][0]["ticket"], called["calls"][0]["name"]) == ("B001", "张**")
        assert first["data"]["version"] < opened["version"] < called["version"]


def _until(frames: Iterator[dict[str, Any]], test: Any) -> dict[str, Any]:
    """The screen of the first frame that passes `test`: a frame comes only when the version moved."""
    last = -1
    for frame in frames:
        screen: dict[str, Any] = frame["data"]
        assert screen["version"] > last, "a frame without a change"
        last = screen["version"]
        if test(screen):
            return screen
    raise AssertionError("the stream ended")


def _frames(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Each `display` event as {event, id, data}; comments (heartbeats) are skipped."""
    frame: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "data" in frame:
                yield frame
            frame = {}
        elif line.startswith("event: "):
            frame["event"] = line.removeprefix("event: ")
        elif line.startswith("id: "):
            frame["id"] = line.removeprefix("id: ")
        elif line.startswith("data: "):
            frame["data"] = json.loads(line.removeprefix("data: "))


def _case(request_id: str) -> dict[str, Any]:
    return {
        "itemCode": KAIBAN,
        "clientRequestId": request_id,
        "applicant": ZHANG.as_applicant(),
        "form": {"企业名称": "长沙星城科技有限公司", "注册资本（万元）": 100},
        "materials": {},
    }
