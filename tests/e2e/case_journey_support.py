"""Helpers for the case journeys over HTTP: people and their tokens, uploads, polling the read models.

The read models are projections, so a command's effect shows a moment later: every
wait here polls with a deadline, keyed on the case version the command answered with.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from domain.personal import id_check_char

T = TypeVar("T")
Headers = dict[str, str]

KAIBAN = "11430100006182474N900100100000"  # 企业开办一件事, target 1 working day
# Its children in catalogue order, each with its department (并联审批: one task per department).
KAIBAN_CHILDREN = {
    "11430100006182474N010100100000": "SCJGJ",  # 企业设立登记
    "11430100006180524Q100200100000": "GAJ",  # 印章刻制备案
    "11430100MB1630725K100300100000": "SWJ",  # 发票申领
    "114301000061839447200400100000": "RSJ",  # 单位社会保险登记
    "12430100MB1C55389F201200100000": "ZWFW",  # 银行预约开户
}
DEPARTMENTS = tuple(KAIBAN_CHILDREN.values())
HALL = "CSSMZJ"  # 市民之家, where the clerk of these journeys sits
STEPS = ("承办", "审核", "批准")
DEADLINE_SECONDS = 20.0


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = DEADLINE_SECONDS) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def resident_id(serial: int) -> str:
    """A valid 居民身份证号码 (GB 11643 check digit) born in 长沙 in 1990, unique per serial."""
    first17 = f"43010219900101{serial % 1000:03d}"
    return first17 + id_check_char(first17)


def with_wrong_check_digit(number: str) -> str:
    return number[:-1] + ("1" if number.endswith("0") else "0")


@dataclass(frozen=True)
class Person:
    name: str
    id_number: str
    phone: str
    address: str

    def as_applicant(self) -> dict[str, str]:
        return {
            "name": self.name,
            "idType": "resident_id",
            "idNumber": self.id_number,
            "phone": self.phone,
            "address": self.address,
            "kind": "person",
        }


ZHANG = Person("张小明", resident_id(123), "13812341234", "湖南省长沙市岳麓区麓山南路1号")
LI = Person("李四", resident_id(456), "13998765432", "湖南省长沙市天心区人民路2号")


def login(client: httpx.Client, subject: str, role: str, **scope: str) -> Headers:
    body = {"subject": subject, "role": role, **scope}
    response = client.post("/api/v1/auth/dev-login", json=body)
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


@dataclass
class Cast:
    """Everyone in a journey: the applicant, the window clerk, and three officers per department."""

    citizen: Headers
    clerk: Headers
    officers: dict[tuple[str, str], Headers] = field(default_factory=dict)  # (department, step)

    @classmethod
    def enrol(cls, client: httpx.Client, citizen_subject: str) -> Cast:
        cast = cls(
            citizen=login(client, citizen_subject, "citizen", name="张小明"),
            clerk=login(client, f"clerk-of-{citizen_subject}", "clerk", name="周敏", hall=HALL),
        )
        for department in DEPARTMENTS:
            for n, step in enumerate(STEPS, 1):
                subject = f"officer-{department.lower()}-{n}-{citizen_subject}"
                cast.officers[department, step] = login(
                    client, subject, "officer", name=f"{step}人", department=department
                )
        return cast


def pdf(text: str) -> bytes:
    return b"%PDF-1.7\n" + text.encode() + b"\n%%EOF"


def upload(client: httpx.Client, headers: Headers, content: bytes) -> str:
    response = client.post(
        "/api/v1/materials/", files={"data": ("scan.pdf", content, "application/pdf")}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["sha256"])


def submission(request_id: str, person: Person, materials: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "itemCode": KAIBAN,
        "clientRequestId": request_id,
        "applicant": person.as_applicant(),
        "form": {"企业名称": "长沙星城科技有限公司", "注册资本（万元）": 100},
        "materials": materials,
        **extra,
    }


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """An RFC 9457 problem with the stable type `slug`."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["type"] == f"https://citypass.dev/problems/{slug}", problem
    assert problem["status"] == status
    return problem


def staff_progress(client: httpx.Client, staff: Headers, case_id: str) -> dict[str, Any]:
    return ok(client.get(f"/api/v1/cases/{case_id}/progress", headers=staff))


def wait_for_version(client: httpx.Client, staff: Headers, case_id: str, version: int) -> dict[str, Any]:
    """The progress read model once it holds version `version` of the case.

    Staff see every event as a timeline line (their own steps too), one per version. Until
    the read model has the case at all, it answers 404.
    """

    def caught_up() -> dict[str, Any] | None:
        response = client.get(f"/api/v1/cases/{case_id}/progress", headers=staff)
        if response.status_code == 404:
            return None
        progress = ok(response)
        return progress if len(progress["timeline"]) >= version else None

    return wait_for(caught_up, f"case {case_id} at version {version} in the progress read model")


def wait_for_staff_line(client: httpx.Client, staff: Headers, case_id: str, label: str) -> dict[str, Any]:
    """The progress read model once a staff-only line (a timer's 督办, say) is in it; 404 till the case is."""

    def found() -> dict[str, Any] | None:
        response = client.get(f"/api/v1/cases/{case_id}/progress", headers=staff)
        if response.status_code == 404:
            return None
        progress = ok(response)
        return progress if any(s["label"] == label for s in progress["timeline"]) else None

    return wait_for(
        found,
        f"{label!r} on case {case_id}",
    )


def queue_item(
    client: httpx.Client, officer: Headers, case_id: str, scope: str = "open", **expected: Any
) -> dict[str, Any]:
    """The case's task in the officer's work queue (`scope`: open work by default), showing `expected`."""

    def matching() -> dict[str, Any] | None:
        items = ok(client.get("/api/v1/staff/queue", params={"scope": scope}, headers=officer))["items"]
        mine = [i for i in items if i["caseId"] == case_id]
        return mine[0] if mine and all(mine[0][k] == v for k, v in expected.items()) else None

    return wait_for(matching, f"case {case_id} in the work queue with {expected}")


def head_position(client: httpx.Client) -> int:
    return int(client.get("/health").json()["headPosition"])


def raw_post(base_url: str, path: str, headers: Headers, body: bytes) -> tuple[int, bytes]:
    """POST over a plain socket, reading the answer even when the server replies before the body ends."""
    host, port = base_url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    answer = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode())
        # The server may answer early and close: then read what it said.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(body)
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@dataclass
class ApplicantView:
    """One case as its applicant follows it: each step must add the expected line, and only that."""

    client: httpx.Client
    cast: Cast
    case_id: str
    labels: list[str] = field(default_factory=list)

    def progress(self) -> dict[str, Any]:
        return ok(self.client.get(f"/api/v1/cases/{self.case_id}/progress", headers=self.cast.citizen))

    def after(
        self,
        outcome: dict[str, Any],
        line: str | None,
        *,
        status: str,
        current: str | None = None,
        next_steps: tuple[tuple[str, list[str]], ...] = (),
    ) -> dict[str, Any]:
        """Wait for the command's version, then check what the applicant reads.

        `line` is the new timeline line (None for a step only staff see); `current` the
        current step, by default the newest line; `next_steps` pairs of (label, material ids).
        """
        wait_for_version(self.client, self.cast.clerk, self.case_id, outcome["version"])
        if line is not None:
            self.labels.append(line)
        progress = self.progress()
        case = progress["case"]
        assert [s["label"] for s in progress["timeline"]] == self.labels
        assert all(set(s) == {"at", "label"} for s in progress["timeline"]), "staff details leaked"
        assert case["status"] == status, case
        assert case["currentStep"] == (current or self.labels[-1]), case
        listed = [(n["label"], [m["materialId"] for m in n["materials"]]) for n in progress["nextSteps"]]
        assert listed == list(next_steps)
        return progress


def wait_for_projection(client: httpx.Client, consumer: str) -> None:
    """Until `consumer` has handled every event stored so far."""
    head = head_position(client)

    def caught_up() -> bool:
        consumers = client.get("/health").json()["consumers"]
        return any(c["name"] == consumer and c["position"] >= head for c in consumers)

    wait_for(caught_up, f"{consumer} at position {head}")
