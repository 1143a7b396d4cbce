"""What the two-city 通办 journeys share: the two regions, their settings, the partner registration.

Each city runs its own server process and schema and knows the other only through its partner
registry (the keys each publishes) and signed messages over loopback HTTP.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.case_journey_support import Headers, Person, login, ok, resident_id, wait_for
from tests.e2e.conftest import LiveServer

CHANGSHA, ZHUZHOU, XIANGTAN = "430100", "430200", "430300"
NAMES = {CHANGSHA: "长沙市", ZHUZHOU: "株洲市", XIANGTAN: "湘潭市"}
GETI = "11430100006182474N010100200000"  # 个体工商户设立登记 (SCJGJ): 株洲 takes it by 异地代收代办
ENV = {
    "CITYPASS_FEDERATION_RETRY_MIN_SECONDS": "0.05",
    "CITYPASS_FEDERATION_RETRY_MAX_SECONDS": "0.5",
    "CITYPASS_FEDERATION_TIMEOUT_SECONDS": "2",
    "CITYPASS_CONSUMER_POLL_SECONDS": "0.2",
}
WANG = Person("王株洲", resident_id(789), "13907331234", "湖南省株洲市天元区长江北路1号")


def register(
    servers: dict[str, LiveServer], region: str, partner: str, accepts: list[dict[str, Any]]
) -> None:
    """In `region`, register `partner` with the keys it publishes, and wait for the registry's read model."""
    published = ok(httpx.get(f"{servers[partner].base_url}/federation/v1/keys"))
    keys = [{"kid": k["kid"], "publicKey": k["publicKey"]} for k in published["keys"]]
    body = {
        "name": NAMES[partner],
        "baseUrl": servers[partner].base_url,
        "accepts": accepts,
        "publicKeys": keys,
    }
    with httpx.Client(base_url=servers[region].base_url, timeout=10) as ours:
        who = login(ours, f"admin-{region}", "admin")
        ok(ours.put(f"/api/v1/admin/partners/{partner}", json=body, headers=who))
        wait_for(
            lambda: ours.get(f"/api/v1/admin/partners/{partner}", headers=who).status_code == 200, "registry"
        )


def stream(client: httpx.Client, who: Headers) -> list[dict[str, Any]]:
    events, cursor = [], 0
    while True:
        page = ok(client.get("/api/v1/streams/events", params={"after": cursor, "limit": 1000}, headers=who))
        events += page["events"]
        cursor = page["nextCursor"]
        if not page["events"]:
            return events


def staff(client: httpx.Client, who: Headers, case_id: str, action: str, body: Any = None) -> Any:
    return ok(client.post(f"/api/v1/staff/cases/{case_id}/{action}", json=body, headers=who))
