"""Department streams over real HTTP: cursor pages, SSE with resume and heartbeats, and scoping."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.dbutil import drop_schema_sync, new_schema_name
from tests.e2e.case_journey_support import LI, ZHANG, Headers, assert_problem, login, ok, wait_for
from tests.e2e.conftest import LiveServer, start_server, stop_server
from tests.e2e.stream_support import DOCTOR, FOOD, Desk, Frame, officer, read_frames

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    schema = new_schema_name()
    env = {"CITYPASS_SSE_HEARTBEAT_SECONDS": "0.3", "CITYPASS_WORKERS": "2"}
    live = start_server(tmp_path_factory.mktemp("streams"), schema, env)
    try:
        yield live
    finally:
        stop_server(live)
        drop_schema_sync(schema)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def pull_all(client: httpx.Client, who: Headers, **params: Any) -> list[dict[str, Any]]:
    events, cursor = [], 0
    while True:
        page = ok(
            client.get("/api/v1/streams/events", params={"after": cursor, "limit": 3, **params}, headers=who)
        )
        events += page["events"]
        assert page["nextCursor"] >= cursor
        cursor = page["nextCursor"]
        if not page["events"]:
            return events


def wait_for_cases(
    client: httpx.Client, who: Headers, case_ids: set[str], count_type: str = "case.routed"
) -> list[dict[str, Any]]:
    def probe() -> list[dict[str, Any]] | None:
        events = pull_all(client, who)
        seen = {e["case"]["id"] for e in events if e["type"] == count_type}
        return events if case_ids <= seen else None

    return wait_for(probe, f"{count_type} of {len(case_ids)} cases in the stream")


def test_each_department_pulls_only_its_own_cases_masked(client: httpx.Client) -> None:
    desk = Desk.open(client, "pull")
    food = {desk.routed(FOOD, f"pull-food-{n}", ZHANG) for n in range(2)}
    doctor = {desk.routed(DOCTOR, "pull-doctor-1", LI)}
    scjgj, wjw = officer(client, "SCJGJ"), officer(client, "WJW")
    mine = wait_for_cases(client, scjgj, food)
    assert {e["case"]["id"] for e in mine}.isdisjoint(doctor)
    theirs = wait_for_cases(client, wjw, doctor)
    assert {e["case"]["id"] for e in theirs}.isdisjoint(food)
    for events in (mine, theirs):
        positions = [e["position"] for e in events]
        assert positions == sorted(set(positions))
        assert len({e["id"] for e in events}) == len(events)
        assert "case.submitted" not in {e["type"] for e in events}  # before routing, the desk's alone
    routed = next(e for e in mine if e["type"] == "case.routed")
    assert routed["assignments"] == [{"department": "SCJGJ", "itemCodes": [FOOD]}]
    assert (routed["version"], routed["actor"]["role"], routed["channel"]) == (1, "clerk", "hall_window")
    # An admin sees every department, masked; with the personal-data grant, in the clear.
    admin = login(client, "admin-streams", "admin")
    everything = pull_all(client, admin)
    submitted = [e for e in everything if e["type"] == "case.submitted" and e["case"]["id"] in food]
    assert len(submitted) == 2 and submitted[0]["applicant"]["idNumber"] != ZHANG.id_number
    assert submitted[0]["applicant"]["idNumber"].endswith(ZHANG.id_number[-4:])
    cleared = login(client, "admin-streams-pii", "admin", personalData=True)  # type: ignore[arg-type]
    clear = {e["id"]: e for e in pull_all(client, cleared)}
    assert clear[submitted[0]["id"]]["applicant"]["idNumber"] == ZHANG.id_number
    only_wjw = pull_all(client, admin, department="WJW")
    assert {e["case"]["id"] for e in only_wjw} >= doctor and not {e["case"]["id"] for e in only_wjw} & food


def test_scope_and_cursor_errors(client: httpx.Client) -> None:
    scjgj = officer(client, "SCJGJ")
    response = client.get("/api/v1/streams/events", params={"department": "WJW"}, headers=scjgj)
    assert_problem(response, 403, "forbidden")
    citizen = login(client, "citizen-streams", "citizen")
    assert_problem(client.get("/api/v1/streams/events", headers=citizen), 403, "forbidden")
    assert client.get("/api/v1/streams/events").status_code == 401
    bad = client.get("/api/v1/streams/events/sse", headers={**scjgj, "last-event-id": "12x"})
    assert_problem(bad, 400, "stream-cursor-invalid")
    assert_problem(
        client.get("/api/v1/streams/events", params={"limit": 0}, headers=scjgj), 400, "validation"
    )


class Reader(threading.Thread):
    """Reads one SSE connection in the background until `until(frames)` holds."""

    def __init__(self, server: LiveServer, who: Headers, until: Any, **headers: str) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.until = (
            f"{server.base_url}/api/v1/streams/events/sse",
            {**who, **headers},
            until,
        )
        self.frames: list[Frame] = []
        self.lines: list[str] = []
        self.connected = threading.Event()

    def run(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=30)) as c,
            c.stream("GET", self.url, headers=self.headers) as r,
        ):
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            self.connected.set()

            def lines() -> Iterator[str]:
                for line in r.iter_lines():
                    self.lines.append(line)
                    yield line

            self.frames = read_frames(lines(), self.until)

    def result(self, timeout: float = 30) -> list[Frame]:
        self.join(timeout)
        assert not self.is_alive(), f"SSE reader still waiting; got {len(self.frames)} frames"
        return self.frames


def test_a_subscriber_that_disconnects_resumes_with_last_event_id_and_misses_nothing(
    server: LiveServer, client: httpx.Client
) -> None:
    desk = Desk.open(client, "sse")
    scjgj = officer(client, "SCJGJ")
    first = {desk.routed(FOOD, f"sse-{n}", ZHANG) for n in range(2)}
    wait_for_cases(client, scjgj, first)
    # Catch up from the start, then take live events until one of a new case arrives.
    live_case: dict[str, str] = {}

    def saw_live(frames: list[Frame]) -> bool:
        return bool(live_case) and any(f.data["case"]["id"] == live_case.get("id") for f in frames)

    reader = Reader(server, scjgj, saw_live, **{"last-event-id": "0"})
    reader.start()
    assert reader.connected.wait(10)
    time.sleep(0.5)  # let it catch up and subscribe
    live_case["id"] = desk.routed(FOOD, "sse-live", ZHANG)
    before = reader.result()
    # Disconnected: more cases are routed meanwhile, to both departments.
    later = {desk.routed(FOOD, f"sse-later-{n}", ZHANG) for n in range(2)}
    desk.routed(DOCTOR, "sse-other", LI)
    expected = wait_for_cases(client, scjgj, first | later | {live_case["id"]})
    resumed = Reader(
        server,
        scjgj,
        lambda frames: frames and frames[-1].id >= expected[-1]["position"],
        **{"last-event-id": str(before[-1].id)},
    )
    resumed.start()
    after = resumed.result()
    got = [f.data for f in before + after]
    assert [e["id"] for e in got] == [e["id"] for e in expected]  # every event once, in order
    assert all(f.id == f.data["position"] and f.event == f.data["type"] for f in before + after)


def test_a_quiet_stream_sends_heartbeats_and_starts_at_the_head(
    server: LiveServer, client: httpx.Client
) -> None:
    desk = Desk.open(client, "quiet")
    wjw = officer(client, "WJW")
    old = desk.routed(DOCTOR, "quiet-old", LI)
    wait_for_cases(client, wjw, {old})
    reader = Reader(server, wjw, lambda frames: len(frames) >= 1)  # no cursor: only what comes next
    reader.start()
    assert reader.connected.wait(10)
    wait_for(lambda: reader.lines.count(": heartbeat") >= 2 or None, "two heartbeats", timeout=10)
    new = desk.routed(DOCTOR, "quiet-new", LI)
    frames = reader.result()
    assert frames[0].data["case"]["id"] == new and frames[0].event == "case.routed"
    assert reader.lines[0] == "retry: 2000"
