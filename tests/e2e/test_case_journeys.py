"""Cases over real HTTP: the 企业开办 bundle from submission to e-licences, the anonymous lookup,
who may not read or act, bad input that changes nothing, and submissions that are never doubled.

The 企业开办 target is 1 working day, so the deadline timer raises its yellow light (督办)
right after acceptance. The helpers wait for it, so no timer is left to append behind a
test's back: the "nothing appended" checks compare the store's head position.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.case_journey_support import (
    DEPARTMENTS,
    KAIBAN,
    KAIBAN_CHILDREN,
    LI,
    STEPS,
    ZHANG,
    ApplicantView,
    Cast,
    Headers,
    Person,
    assert_problem,
    head_position,
    login,
    ok,
    pdf,
    queue_item,
    raw_post,
    resident_id,
    staff_progress,
    submission,
    upload,
    wait_for_projection,
    wait_for_staff_line,
    wait_for_version,
    with_wrong_check_digit,
)
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

YELLOW = "督办：黄灯预警"
STEP_NAMES = {"承办": "undertake", "审核": "review", "批准": "approve"}
# What the timeline calls each department: the catalogue's name, never the code.
NAMES = {
    "SCJGJ": "长沙市市场监督管理局",
    "GAJ": "长沙市公安局",
    "SWJ": "国家税务总局长沙市税务局",
    "RSJ": "长沙市人力资源和社会保障局",
    "ZWFW": "长沙市政务服务中心",
}
OWES_M04 = (("补正材料", ["M04"]),)
RATE = (("评价", []),)


def staff_act(client: httpx.Client, who: Headers, case_id: str, action: str, body: Any = None) -> Any:
    return ok(client.post(f"/api/v1/staff/cases/{case_id}/{action}", json=body, headers=who))


def submit(client: httpx.Client, cast: Cast, request_id: str, person: Person, materials: list[str]) -> Any:
    uploaded = {m: upload(client, cast.citizen, pdf(f"{m} {request_id}")) for m in materials}
    body = submission(request_id, person, uploaded)
    return ok(client.post("/api/v1/cases", json=body, headers=cast.citizen), 201)


def accepted_case(client: httpx.Client, cast: Cast, request_id: str, person: Person) -> tuple[str, Any]:
    """A complete 企业开办 application, pre-reviewed and accepted at the window, its yellow light raised."""
    case_id = submit(client, cast, request_id, person, ["M01", "M02", "M03", "M04"])["caseId"]
    staff_act(client, cast.clerk, case_id, "pre-review", {"decision": "pass"})
    acceptance = staff_act(client, cast.clerk, case_id, "acceptance", {"mode": "standard"})
    wait_for_staff_line(client, cast.clerk, case_id, YELLOW)
    return case_id, acceptance


def test_kaiban_bundle_with_a_missing_material_ends_in_e_licences(client: httpx.Client) -> None:
    cast = Cast.enrol(client, "citizen-zhang")
    submitted = submit(client, cast, "kaiban-zhang-1", ZHANG, ["M01", "M02", "M03"])  # M04 is minor
    case_id = submitted["caseId"]
    view = ApplicantView(client, cast, case_id)

    first = view.after(submitted, "提交申请", status="submitted")
    assert (first["case"]["applicantName"], first["applicantId"], first["applicantPhone"]) == (
        "张**",
        ZHANG.id_number[:3] + "*" * 11 + ZHANG.id_number[-4:],
        "138****1234",
    )
    assert first["case"]["deadline"] is None  # no clock before acceptance

    passed = staff_act(client, cast.clerk, case_id, "pre-review", {"decision": "pass"})
    view.after(passed, "预审通过", status="pre_review_passed")

    # 容缺受理: the applicant signs a commitment at the window and owes M04.
    commitment = upload(client, cast.clerk, pdf("容缺受理承诺书 张小明 M04 住所使用证明"))
    accepted = staff_act(
        client,
        cast.clerk,
        case_id,
        "acceptance",
        {"mode": "missing_materials", "missing": ["M04"], "commitmentSha256": commitment},
    )
    assert accepted["receiptNumber"] and accepted["queryPassword"]
    progress = view.after(accepted, "已受理（容缺受理）", status="accepted", next_steps=OWES_M04)
    deadline = progress["case"]["deadline"]
    assert (deadline["limitAmount"], deadline["limitUnit"], deadline["light"]) == (1, "working", "yellow")
    assert progress["nextSteps"][0]["due"] == deadline["due"]  # 容缺 is owed by the end of the 承诺时限

    # The timer's 督办 is for staff: the applicant's timeline and current step do not change.
    supervised = wait_for_staff_line(client, cast.clerk, case_id, YELLOW)
    view.after({"version": len(supervised["timeline"])}, None, status="accepted", next_steps=OWES_M04)

    routed = staff_act(client, cast.clerk, case_id, "routing")
    routed_to = "、".join(NAMES[d] for d in DEPARTMENTS)
    view.after(routed, f"转{routed_to}办理", status="in_handling", next_steps=OWES_M04)
    for department in DEPARTMENTS:
        officer = cast.officers[department, "承办"]
        task = queue_item(client, officer, case_id, step="undertake", state="routed")
        assert task["deadline"]["light"] == "yellow" and task["itemCode"] == KAIBAN

    work_through_every_department(client, cast, view)
    staff_only = {s["label"] for s in staff_progress(client, cast.clerk, case_id)["timeline"]}
    claims = {f"{NAMES[d]}：{step}签收" for d in DEPARTMENTS for step in STEPS}
    assert staff_only - set(view.labels) == {YELLOW, *claims}

    # Every department approved, but 出证 waits for the 容缺 material.
    before = len(staff_progress(client, cast.clerk, case_id)["timeline"])
    refused = client.post(
        f"/api/v1/staff/cases/{case_id}/conclusion", json={"result": "approved"}, headers=cast.clerk
    )
    assert_problem(refused, 422, "materials-missing")
    assert len(staff_progress(client, cast.clerk, case_id)["timeline"]) == before

    m04 = upload(client, cast.citizen, pdf("M04 住所（经营场所）使用证明 租赁合同"))
    supplied = ok(
        client.post(
            f"/api/v1/cases/{case_id}/supplements", json={"materials": {"M04": m04}}, headers=cast.citizen
        )
    )
    view.after(supplied, "补正材料（第1次）", status="in_handling")

    concluded = staff_act(client, cast.clerk, case_id, "conclusion", {"result": "approved"})
    view.after(concluded, "办结：出证办结", status="concluded", next_steps=RATE)

    for n, item_code in enumerate(KAIBAN_CHILDREN, 1):
        body = {"method": "e_licence", "licenceNumber": f"430100-KB-{n:04d}", "itemCode": item_code}
        delivered = staff_act(client, cast.clerk, case_id, "delivery", body)
        final = view.after(delivered, "电子证照已发放", status="delivered", next_steps=RATE)
    assert final["case"]["statusLabel"] == "已送达"
    assert view.labels.count("电子证照已发放") == len(KAIBAN_CHILDREN)  # one licence per child item
    assert final["case"]["deadline"]["light"] is None  # concluded: no light any more
    mine = ok(client.get("/api/v1/cases", headers=cast.citizen))
    assert [(c["caseId"], c["status"]) for c in mine] == [(case_id, "delivered")]


def work_through_every_department(client: httpx.Client, cast: Cast, view: ApplicantView) -> None:
    """并联审批: each department's officers claim and sign 承办, 审核 and 批准 of its own task.

    A claim is a staff step: the applicant's timeline waits for the signature.
    """
    case_id = view.case_id

    def claim(department: str, step: str) -> Any:
        return staff_act(client, cast.officers[department, step], case_id, f"tasks/{department}/claim")

    # The five departments claim their 承办 at the same moment; none of them waits for another.
    with ThreadPoolExecutor(len(DEPARTMENTS)) as pool:
        claims = list(pool.map(lambda d: claim(d, "承办"), DEPARTMENTS))
    assert len({c["version"] for c in claims}) == len(DEPARTMENTS)
    view.after(max(claims, key=lambda c: c["version"]), None, status="in_handling", next_steps=OWES_M04)

    for step in STEPS:
        for department in DEPARTMENTS:
            officer = cast.officers[department, step]
            if step != "承办":
                view.after(claim(department, step), None, status="in_handling", next_steps=OWES_M04)
            queue_item(client, officer, case_id, step=STEP_NAMES[step], state="claimed")
            approved = staff_act(client, officer, case_id, f"tasks/{department}/approve", {"opinion": "同意"})
            signed = f"{NAMES[department]}：{step}通过"
            view.after(approved, signed, status="in_handling", next_steps=OWES_M04)
    # 批准 signed: each task leaves its department's open queue for the history.
    for department in DEPARTMENTS:
        officer = cast.officers[department, "批准"]
        task = queue_item(client, officer, case_id, "finished", step="approve", state="approved")
        assert task["finishedAt"] is not None and task["deadline"]["light"] is None
        open_work = ok(client.get("/api/v1/staff/queue", headers=officer))
        assert case_id not in [i["caseId"] for i in open_work["items"]]


def test_anonymous_lookup_by_receipt_and_password_shows_no_personal_data(client: httpx.Client) -> None:
    cast = Cast.enrol(client, "citizen-anonymous")
    case_id, acceptance = accepted_case(client, cast, "kaiban-anon-1", ZHANG)
    receipt, password = acceptance["receiptNumber"], acceptance["queryPassword"]

    found = client.get("/api/v1/progress", params={"receipt": receipt, "password": password})
    body = ok(found)
    assert (body["number"], body["status"], body["currentStep"]) == (
        acceptance["number"],
        "accepted",
        "已受理",
    )
    assert [s["label"] for s in body["timeline"]] == ["提交申请", "预审通过", "已受理"]  # no 督办
    assert body["deadline"]["light"] == "yellow"
    assert not {"applicant", "applicantName", "applicantId", "applicantPhone"} & set(body)
    for secret in (ZHANG.name, ZHANG.id_number, ZHANG.phone, ZHANG.address, case_id):
        assert secret not in found.text

    # A wrong password and an unknown receipt get the same answer, so neither can be probed.
    wrong = client.get("/api/v1/progress", params={"receipt": receipt, "password": password + "0"})
    unknown = client.get("/api/v1/progress", params={"receipt": "SL" + "9" * 20, "password": password})
    assert assert_problem(wrong, 404, "not-found") == assert_problem(unknown, 404, "not-found")


def test_other_citizens_and_unrelated_departments_are_kept_out(client: httpx.Client) -> None:
    owner = Cast.enrol(client, "citizen-owner")
    case_id, _ = accepted_case(client, owner, "kaiban-owner-1", ZHANG)
    routed = staff_act(client, owner.clerk, case_id, "routing")
    wait_for_version(client, owner.clerk, case_id, routed["version"])
    stranger = login(client, "citizen-stranger", "citizen", name="李四")
    health_officer = login(client, "officer-wjw-1", "officer", department="WJW")  # 卫健委: no task here
    progress = f"/api/v1/cases/{case_id}/progress"
    scan = upload(client, stranger, pdf("M04 李四 住所证明"))

    assert_problem(client.get(progress, headers=stranger), 403, "forbidden")
    supplement = {"materials": {"M04": scan}}
    assert_problem(
        client.post(f"/api/v1/cases/{case_id}/supplements", json=supplement, headers=stranger),
        403,
        "not-your-case",
    )
    assert_problem(client.post(f"/api/v1/cases/{case_id}/withdrawal", headers=stranger), 403, "not-your-case")
    assert ok(client.get("/api/v1/cases", headers=stranger)) == []

    assert_problem(client.get(progress, headers=health_officer), 403, "forbidden")
    for department in ("WJW", "SCJGJ"):
        claimed = client.post(
            f"/api/v1/staff/cases/{case_id}/tasks/{department}/claim", headers=health_officer
        )
        assert_problem(claimed, 403, "not-your-case")
    assert ok(client.get("/api/v1/staff/queue", headers=health_officer))["items"] == []

    # Those entitled may read it, and none of the refusals left a trace.
    assert ok(client.get(progress, headers=owner.citizen))["case"]["status"] == "in_handling"
    assert ok(client.get(progress, headers=owner.officers["SCJGJ", "承办"]))["case"]["caseId"] == case_id
    assert len(staff_progress(client, owner.clerk, case_id)["timeline"]) == routed["version"]


def _valid_submission(client: httpx.Client, citizen: Headers) -> dict[str, Any]:
    scan = upload(client, citizen, pdf("M01 企业开办申请表 王五"))
    return submission(
        "kaiban-careless-1", Person("王五", resident_id(789), "13700001111", "长沙市开福区"), {"M01": scan}
    )


def _with(path: str, value: Any) -> Any:
    """A change to the valid submission: set the dotted `path` to `value`."""

    def change(body: dict[str, Any]) -> bytes:
        *parents, last = path.split(".")
        node = body
        for key in parents:
            node = node[key]
        node[last] = value
        return json.dumps(body, ensure_ascii=False).encode()

    return change


WRONG_CHECK_DIGIT = with_wrong_check_digit(resident_id(789))
BAD_SUBMISSIONS = {
    "malformed JSON": (lambda body: json.dumps(body).encode()[:-7], 400, "malformed-json"),
    "an item code that is a number": (_with("itemCode", 11430100), 400, "validation"),
    "an applicant that is a string": (_with("applicant", "王五"), 400, "validation"),
    "a material that is no sha256": (_with("materials.M01", "scan.pdf"), 400, "validation"),
    "an ID number with a wrong check digit": (
        _with("applicant.idNumber", WRONG_CHECK_DIGIT),
        400,
        "validation",
    ),
    "a phone that is no phone": (_with("applicant.phone", "12345"), 400, "validation"),
    "an unknown item code": (
        _with("itemCode", "11430100000000000X999999999999"),
        422,
        "unknown-service-item",
    ),
    "a material never uploaded": (_with("materials.M01", "0" * 64), 422, "unknown-material"),
}


@pytest.mark.parametrize("mistake", list(BAD_SUBMISSIONS))
def test_bad_submissions_get_a_problem_and_append_nothing(client: httpx.Client, mistake: str) -> None:
    citizen = login(client, "citizen-careless", "citizen")
    spoil, status, slug = BAD_SUBMISSIONS[mistake]
    body = spoil(_valid_submission(client, citizen))
    before = head_position(client)

    response = client.post(
        "/api/v1/cases", content=body, headers={**citizen, "content-type": "application/json"}
    )

    problem = assert_problem(response, status, slug)
    if mistake == "an ID number with a wrong check digit":
        assert [e["field"] for e in problem["errors"]] == ["applicant.idNumber"]
        assert WRONG_CHECK_DIGIT not in response.text  # the rejected value is not echoed back
    # The server's timers may append meanwhile (an earlier test's case reaching a light): what
    # must not be there is a case of this citizen's.
    wait_for_projection(client, "case_progress")
    assert head_position(client) == before or ok(client.get("/api/v1/cases", headers=citizen)) == []


def test_an_oversized_submission_gets_413_and_appends_nothing(
    live_server: LiveServer, client: httpx.Client
) -> None:
    citizen = login(client, "citizen-careless", "citizen")
    body = _valid_submission(client, citizen)
    body["form"] = {"经营范围": "软件开发" * 200_000}  # about 2.4 MB, over the 1 MiB limit
    before = head_position(client)

    status, payload = raw_post(live_server.base_url, "/api/v1/cases", citizen, json.dumps(body).encode())

    assert status == 413
    assert json.loads(payload)["type"] == "https://citypass.dev/problems/body-too-large"
    assert head_position(client) == before


def test_one_client_request_id_makes_one_case_however_often_it_is_sent(client: httpx.Client) -> None:
    cast = Cast.enrol(client, "citizen-retrying")
    scan = upload(client, cast.citizen, pdf("M01 企业开办申请表 李四"))

    def send(request_id: str) -> Any:
        body = submission(request_id, LI, {"M01": scan})
        return ok(client.post("/api/v1/cases", json=body, headers=cast.citizen), 201)

    first, retry = send("kaiban-retry-1"), send("kaiban-retry-1")
    assert retry == first

    # Ten retries racing each other, on a request id the server has not seen yet.
    with ThreadPoolExecutor(10) as pool:
        raced = list(pool.map(send, ["kaiban-retry-2"] * 10))
    assert len({(r["caseId"], r["number"]) for r in raced}) == 1
    assert raced[0]["caseId"] != first["caseId"] and raced[0]["number"] != first["number"]

    wait_for_projection(client, "case_progress")
    mine = ok(client.get("/api/v1/cases", headers=cast.citizen))
    assert sorted(c["number"] for c in mine) == sorted([first["number"], raced[0]["number"]])
    # Another account may use the same request id: it is its own case.
    other = login(client, "citizen-other", "citizen")
    body = submission("kaiban-retry-1", ZHANG, {"M01": scan})
    assert ok(client.post("/api/v1/cases", json=body, headers=other), 201)["caseId"] != first["caseId"]
