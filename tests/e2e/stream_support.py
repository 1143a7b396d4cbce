"""Cases routed to one department over HTTP, and a small SSE reader, for the stream tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.case_journey_support import Headers, Person, login, ok, pdf, upload

FOOD = "11430100006182474N010100300000"  # 食品经营许可, SCJGJ
DOCTOR = "114301000061845686010900300000"  # 医师执业注册, WJW
DEPARTMENT_OF = {FOOD: "SCJGJ", DOCTOR: "WJW"}
HALL = "CSSMZJ"


@dataclass
class Desk:
    """A citizen and a window clerk who take cases as far as routing."""

    client: httpx.Client
    citizen: Headers
    clerk: Headers
    materials: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def open(cls, client: httpx.Client, who: str) -> Desk:
        return cls(
            client,
            login(client, f"citizen-{who}", "citizen", name="张小明"),
            login(client, f"clerk-{who}", "clerk", name="周敏", hall=HALL),
        )

    def submit(self, item: str, request_id: str, person: Person) -> str:
        if item not in self.materials:
            guide = ok(self.client.get(f"/api/v1/services/{item}"))
            self.materials[item] = [m["id"] for m in guide["materials"]]
        uploaded = {
            m: upload(self.client, self.citizen, pdf(f"{m} {request_id}")) for m in self.materials[item]
        }
        body = {
            "itemCode": item,
            "clientRequestId": request_id,
            "applicant": person.as_applicant(),
            "form": {},
            "materials": uploaded,
        }
        return str(ok(self.client.post("/api/v1/cases", json=body, headers=self.citizen), 201)["caseId"])

    def act(self, case_id: str, action: str, body: Any = None) -> Any:
        return ok(self.client.post(f"/api/v1/staff/cases/{case_id}/{action}", json=body, headers=self.clerk))

    def routed(self, item: str, request_id: str, person: Person) -> str:
        """Submitted, pre-reviewed, accepted and routed: five events, the last two seen by the department."""
        case_id = self.submit(item, request_id, person)
        self.act(case_id, "pre-review", {"decision": "pass"})
        self.act(case_id, "acceptance", {"mode": "standard"})
        self.act(case_id, "routing")
        return case_id


def officer(client: httpx.Client, department: str, *, personal: bool = False) -> Headers:
    extra: dict[str, Any] = {"personalData": True} if personal else {}
    body = {"subject": f"officer-{department}", "role": "officer", "department": department, **extra}
    response = client.post("/api/v1/auth/dev-login", json=body)
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


@dataclass
class Frame:
    id: int | None
    event: str | None
    data: Any


def read_frames(lines: Any, until: Any) -> list[Frame]:
    """Parse SSE lines into frames (comments dropped) until `until(frames)` is true or the stream ends."""
    frames: list[Frame] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                frames.append(
                    Frame(
                        int(fields["id"]) if "id" in fields else None,
                        fields.get("event"),
                        json.loads(fields["data"]),
                    )
                )
                if until(frames):
                    return frames
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value
    return frames
