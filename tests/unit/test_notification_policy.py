"""The case notification policy: each case event, built through the real commands, and its intents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest

from domain.case import (
    Actor,
    Assignment,
    Case,
    ExtensionKind,
    Light,
    MaterialIssue,
    ResultCode,
    Role,
    SuspensionKind,
)
from notifications.case_notices import CaseNotices
from notifications.intents import (
    PURPOSE_VARIABLES,
    OfficerRole,
    Purpose,
    Recipient,
    RecipientKind,
    intent_key,
)
from notifications.policy import CaseNotice, display_name, intents_for, scrub
from notifications.templates import render
from tests.unit.case_builders import (
    CITIZEN,
    CLERK,
    COMPANY_SETUP,
    DEADLINE,
    DEPT,
    ENTERPRISE,
    PASSWORD_HASH,
    PERSON,
    STEP,
    SYS,
    SYSTEM,
    T0,
    WINDOW,
    build,
    build_with_history,
    officer,
    submission,
    submit,
)

HANDLING_DEADLINE = date(2026, 5, 20)
NOTICE = CaseNotice.of(
    number="430100202605060000001",
    item_name="食品经营许可（新办）",
    applicant_subject=CITIZEN.id,
    applicant=PERSON,
    departments=(DEPT, "长沙市公安局"),
    deadline=HANDLING_DEADLINE,
    material_names={"lease": "租赁合同", "plan": "经营场所平面图"},
)
ME = Recipient.citizen(CITIZEN.id)


def _last(state: str) -> Callable[[], Any]:
    return lambda: build_with_history(state)[1][-1]


def _then(state: str, command: Callable[[Case], object]) -> Callable[[], Any]:
    def event() -> Any:
        case = build(state)
        command(case)
        return case.collect_events()[-1]

    return event


def _submitted() -> Any:
    case = Case.submit(CITIZEN, WINDOW, T0, **submission())
    return case.collect_events()[-1]


def _bundle_routed() -> Any:
    case = submit(children=COMPANY_SETUP, item_code="430100-YJS-QYKB")
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-7", query_password_hash=PASSWORD_HASH)
    case.route(CLERK, WINDOW, STEP, assignments=case.bundle_assignments())
    return case.collect_events()[-1]


def _light(light: Light) -> Callable[[], Any]:
    def raise_light(case: Case) -> None:
        if light is Light.YELLOW:
            case.warn_due_soon(SYSTEM, SYS, STEP, deadline=DEADLINE, working_days_left=1)
        else:
            case.mark_overdue(SYSTEM, SYS, STEP.replace(month=6), deadline=DEADLINE)

    return _then("in_handling", raise_light)


def _handoff_refused(case: Case) -> None:
    case.hand_off(CLERK, WINDOW, STEP, partner="430200", mode="remote_collect", handoff=UUID(int=9))
    zhuzhou = Actor(id="430200", role=Role.PARTNER, name="株洲市")
    case.record_handoff_refusal(zhuzhou, WINDOW, STEP, reason="本市不受理该事项的异地代收，联系13812341234")


def _online_not_accepted(case: Case) -> None:
    """全程网办: 株洲's window refuses acceptance, with its path forward."""
    case.hand_off(SYSTEM, SYS, STEP, partner="430200", mode="full_online", handoff=UUID(int=10))
    zhuzhou = Actor(id="430200", role=Role.PARTNER, name="株洲市")
    case.record_partner_acceptance(zhuzhou, WINDOW, STEP, partner_number="43020020260506000001")
    case.record_handoff_refusal(zhuzhou, WINDOW, STEP, reason="不在本市参保", path_forward="请向参保地申请")


def _partner_notice(case: Case) -> None:
    """株洲's 一次性告知 on a case handed to it: the applicant supplies it here."""
    case.hand_off(SYSTEM, SYS, STEP, partner="430200", mode="full_online", handoff=UUID(int=11))
    zhuzhou = Actor(id="430200", role=Role.PARTNER, name="株洲市")
    case.record_partner_acceptance(zhuzhou, WINDOW, STEP, partner_number="43020020260506000002")
    issues = [MaterialIssue(material_id="M01", reason="照片不清晰")]
    case.record_partner_material_request(zhuzhou, WINDOW, STEP, issues=issues)


@dataclass(frozen=True)
class Row:
    name: str
    event: Callable[[], Any]
    expected: list[tuple[Purpose, Recipient, bool]]  # purpose, recipient, urgent
    facts: dict[str, str]  # variables the intents must carry (of the first intent, unless per purpose)


HANDLER = Recipient.department(DEPT, OfficerRole.HANDLER)
POLICE_HANDLER = Recipient.department("长沙市公安局", OfficerRole.HANDLER)
HEAD = Recipient.department(DEPT, OfficerRole.HEAD)
POLICE_HEAD = Recipient.department("长沙市公安局", OfficerRole.HEAD)

ROWS = [
    Row("submitted", _submitted, [(Purpose.SUBMITTED, ME, False)], {"applicant_name": "张*"}),
    Row(
        "materials requested: the full list, no date",
        _last("awaiting_correction"),
        [(Purpose.MATERIALS_REQUESTED, ME, False)],
        {
            "materials": "租赁合同：租赁合同未盖章；经营场所平面图：缺平面图",
            "material_count": "2",
            "due": "尽快",
        },
    ),
    Row(
        "待补正 suspension: the list and its date, urgent",
        _last("awaiting_supplement"),
        [(Purpose.MATERIALS_REQUESTED, ME, True)],
        {"materials": "survey：补充测绘报告", "material_count": "1", "due": "于2026年5月11日前"},
    ),
    Row(
        "suspended for a site survey",
        _last("suspended"),
        [(Purpose.SUSPENDED, ME, False)],
        {"procedure": "现场勘查", "reason": "需现场勘查", "expected_end": "2026年5月11日"},
    ),
    Row(
        "resumed",
        _then("suspended", lambda c: c.resume(officer(0), SYS, STEP)),
        [(Purpose.RESUMED, ME, False)],
        {},
    ),
    Row(
        "extension approved: by how much, and the deadline the notice knows",
        _last("extended"),
        [(Purpose.EXTENSION_APPROVED, ME, False)],
        {"extended_by": "10个工作日", "deadline": "2026年5月20日", "reason": ""},
    ),
    Row(
        "accepted",
        _last("accepted"),
        [(Purpose.ACCEPTED, ME, False)],
        {"receipt_number": "SL-0001", "acceptance_kind": "受理", "deadline": "2026年5月20日", "note": ""},
    ),
    Row(
        "容缺受理: what is owed and by when",
        _last("missing_materials"),
        [(Purpose.ACCEPTED, ME, False)],
        {"acceptance_kind": "容缺受理", "note": "容缺材料：fire-check，请于2026年5月16日前补齐。"},
    ),
    Row(
        "告知承诺",
        _last("on_commitment"),
        [(Purpose.ACCEPTED, ME, False)],
        {"receipt_number": "SL-0003", "acceptance_kind": "告知承诺受理"},
    ),
    Row(
        "秒批: accepted, concluded and invited to rate",
        _last("instantly_approved"),
        [
            (Purpose.ACCEPTED, ME, False),
            (Purpose.CONCLUDED, ME, False),
            (Purpose.RATING_INVITATION, ME, False),
        ],
        {"acceptance_kind": "秒批", "deadline": "即时办结"},
    ),
    Row(
        "approved: concluded and invited to rate",
        _last("concluded"),
        [(Purpose.CONCLUDED, ME, False), (Purpose.RATING_INVITATION, ME, False)],
        {"result": "准予办理", "reason": ""},
    ),
    Row(
        "denied: the reason and the right to appeal",
        _last("denied"),
        [(Purpose.CONCLUDED, ME, False), (Purpose.RATING_INVITATION, ME, False)],
        {
            "result": "不予批准",
            "reason": "原因：不符合条件。",
            "next_step": "如有异议，可依法申请行政复议或者提起行政诉讼。",
        },
    ),
    Row(
        "voided: told, not invited to rate",
        _last("voided"),
        [(Purpose.CONCLUDED, ME, False)],
        {"result": "办件已作废", "reason": "原因：重复申报。"},
    ),
    Row(
        "forwarded: to whom, not invited to rate",
        _then(
            "in_handling",
            lambda c: c.conclude(
                officer(0),
                SYS,
                STEP,
                result=ResultCode.FORWARDED,
                reason="需省级审批",
                forwarded_to="湖南省市场监管局",
            ),
        ),
        [(Purpose.CONCLUDED, ME, False)],
        {"result": "已转报湖南省市场监管局办理"},
    ),
    Row(
        "withdrawn",
        _last("withdrawn"),
        [(Purpose.CONCLUDED, ME, False), (Purpose.RATING_INVITATION, ME, False)],
        {"result": "申请已撤回"},
    ),
    Row(
        "告知承诺 approval revoked: the reason and the remedies, urgent",
        _last("revoked"),
        [(Purpose.COMMITMENT_REVOKED, ME, True)],
        {
            "reason": "核查不实",
            "next_step": "如对撤销决定有异议，可依法申请行政复议或者提起行政诉讼；如有疑问，请联系办理部门。",
        },
    ),
    Row(
        "跨城通办 refused by the handling city: back with the window, which will call; numbers scrubbed",
        _then("accepted", _handoff_refused),
        [(Purpose.HANDOFF_REFUSED, ME, False)],
        {
            "reason": "本市不受理该事项的异地代收，联系138****1234",
            "next_step": "您的申请已退回受理窗口，窗口工作人员将与您联系后续办理方式。",
        },
    ),
    Row(
        "全程网办 not accepted by the handling city: its path forward is the next step",
        _then("submitted", _online_not_accepted),
        [(Purpose.HANDOFF_REFUSED, ME, False)],
        {"reason": "不在本市参保", "next_step": "请向参保地申请"},
    ),
    Row(
        "the handling city's 一次性告知, answered here",
        _then("submitted", _partner_notice),
        [(Purpose.MATERIALS_REQUESTED, ME, False)],
        {"material_count": "1", "due": "尽快"},
    ),
    Row(
        "不予受理: the path forward is the next step",
        _last("not_accepted"),
        [(Purpose.CONCLUDED, ME, False)],
        {"result": "不予受理", "reason": "原因：非本机关职权。", "next_step": "请向省市场监管局申请"},
    ),
    Row(
        "waiting at the window",
        _last("ready_for_pickup"),
        [(Purpose.CERTIFICATE_READY, ME, False)],
        {
            "method": "窗口领取",
            "reference": "8421",
            "instruction": "请携带有效身份证件，凭取件码到长沙市民之家领取。",
        },
    ),
    Row(
        "电子证照 issued",
        _last("delivered"),
        [(Purpose.CERTIFICATE_READY, ME, False)],
        {"method": "电子证照", "reference": "L-1"},
    ),
    Row(
        "mailed by EMS",
        _then("concluded", lambda c: c.mail_result(CLERK, WINDOW, STEP, waybill_number="1100123456789")),
        [(Purpose.MAILED, ME, False)],
        {"carrier": "EMS", "waybill_number": "1100123456789"},
    ),
    Row(
        "routed: a new task for the department",
        _last("in_handling"),
        [(Purpose.NEW_TASK, HANDLER, False)],
        {"department": DEPT, "deadline": "2026年5月20日"},
    ),
    Row(
        "yellow light: each department's handlers",
        _light(Light.YELLOW),
        [(Purpose.LIGHT_YELLOW, HANDLER, False), (Purpose.LIGHT_YELLOW, POLICE_HANDLER, False)],
        {"deadline": "2026年5月11日"},
    ),
    Row(
        "red light: handlers and heads, urgent",
        _light(Light.RED),
        [
            (Purpose.LIGHT_RED, HANDLER, True),
            (Purpose.LIGHT_RED, HEAD, True),
            (Purpose.LIGHT_RED, POLICE_HANDLER, True),
            (Purpose.LIGHT_RED, POLICE_HEAD, True),
        ],
        {"deadline": "2026年5月11日"},
    ),
    Row("a task claimed: nobody is told", _last("claimed"), [], {}),
    Row("an extension requested: nobody is told", _last("extension_requested"), [], {}),
]

CASE_ID = UUID(int=1)


def _intents(event: Any, notice: CaseNotice = NOTICE) -> list[Any]:
    return intents_for(notice, CASE_ID, event.originator_version, event)


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_each_event_yields_its_intents(row: Row) -> None:
    event = row.event()
    intents = _intents(event)
    assert [(i.purpose, i.recipient, i.urgent) for i in intents] == row.expected
    for intent in intents:
        assert set(intent.variables) == PURPOSE_VARIABLES[intent.purpose]
        assert intent.case_id == CASE_ID
        assert intent.occurred_at == event.timestamp
        assert intent.variables["case_number"] == NOTICE.number
        assert intent.key == intent_key((CASE_ID, event.originator_version), intent.recipient, intent.purpose)
    if intents:
        first = intents[0].variables
        assert {k: first[k] for k in row.facts} == row.facts


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_keys_are_stable_on_replay_and_distinct_per_recipient_and_purpose(row: Row) -> None:
    event = row.event()
    keys = [i.key for i in _intents(event)]
    assert keys == [i.key for i in _intents(event)]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)


def test_every_purpose_of_the_case_policy_is_covered_and_no_other_policys() -> None:
    produced = {p for row in ROWS for p, _, _ in row.expected}
    # notifications.rating_notices and notifications.appointment_notices produce these.
    others = {
        Purpose.BAD_RATING_FOLLOW_UP,
        Purpose.RATING_OUTCOME,
        Purpose.APPOINTMENT_REMINDER,
        Purpose.TURN_NEAR,
    }
    assert produced == set(Purpose) - others


def test_a_bundle_routes_a_new_task_to_each_department() -> None:
    intents = _intents(_bundle_routed())
    assert [i.recipient for i in intents] == [
        Recipient.department(child.department, OfficerRole.HANDLER) for child in COMPANY_SETUP
    ]
    assert {i.purpose for i in intents} == {Purpose.NEW_TASK}


def test_a_department_routed_again_gets_a_new_key() -> None:
    case = build("returned_to_window")
    case.route(CLERK, WINDOW, STEP, assignments=[Assignment(department=DEPT, item_codes=(case.item_code,))])
    again = _intents(case.collect_events()[-1])
    first = _intents(build_with_history("in_handling")[1][-1])
    assert again[0].recipient == first[0].recipient
    assert again[0].key != first[0].key


def test_keys_differ_by_each_part_of_the_position() -> None:
    key = intent_key((CASE_ID, 3), ME, Purpose.ACCEPTED)
    assert key != intent_key((UUID(int=2), 3), ME, Purpose.ACCEPTED)
    assert key != intent_key((CASE_ID, 4), ME, Purpose.ACCEPTED)
    assert key != intent_key((CASE_ID, 3), Recipient.citizen("citizen-2"), Purpose.ACCEPTED)
    assert key != intent_key((CASE_ID, 3), ME, Purpose.CONCLUDED)
    # A department code that looks like another recipient's parts cannot collide with it.
    assert intent_key(
        (CASE_ID, 3), Recipient.department("a", OfficerRole.HEAD), Purpose.NEW_TASK
    ) != intent_key((CASE_ID, 3), Recipient.department("a|head", OfficerRole.HANDLER), Purpose.NEW_TASK)
    assert intent_key(("fixed", 1), ME, Purpose.SUBMITTED) == intent_key(("fixed", 1), ME, Purpose.SUBMITTED)


def test_a_recipient_is_a_citizen_or_a_department_role() -> None:
    with pytest.raises(ValueError):
        Recipient(RecipientKind.CITIZEN, "citizen-1", OfficerRole.HEAD)
    with pytest.raises(ValueError):
        Recipient(RecipientKind.DEPARTMENT, DEPT)
    with pytest.raises(ValueError):
        Recipient.citizen("")


def test_names_are_masked_for_people_and_whole_for_enterprises() -> None:
    assert display_name(PERSON) == "张*"
    assert display_name(ENTERPRISE) == "长沙星城科技有限公司"
    assert NOTICE.applicant_name == "张*"


def test_free_text_loses_id_and_mobile_numbers_but_keeps_other_numbers() -> None:
    said = "申请人430102199003071234电话13812341234或+86 13912345678，运单1100123456789，编号" + NOTICE.number
    assert scrub(said) == (
        "申请人430***********1234电话138****1234或+86 139****5678，运单1100123456789，编号" + NOTICE.number
    )
    assert scrub("身份证43010219900307123X") == "身份证430***********123X"


def test_a_light_with_no_open_department_tells_nobody_yet() -> None:
    event = _light(Light.RED)()
    assert _intents(event, replace(NOTICE, departments=())) == []


def test_an_unknown_deadline_is_said_plainly() -> None:
    event = _last("accepted")()
    (intent,) = _intents(event, replace(NOTICE, deadline=None))
    assert intent.variables["deadline"] == "以办件详情为准"


def test_a_joint_extension_is_15_working_days_and_an_unknown_deadline_points_to_the_progress() -> None:
    case = build("in_handling")
    case.request_extension(officer(0), SYS, STEP, kind=ExtensionKind.JOINT, reason="联合办理")
    case.approve_extension(officer(1), SYS, STEP)
    (intent,) = _intents(case.collect_events()[-1], replace(NOTICE, deadline=None))
    assert intent.purpose is Purpose.EXTENSION_APPROVED and not intent.urgent
    assert intent.variables["extended_by"] == "15个工作日"
    assert intent.variables["deadline"] == "以办理进度为准"


def test_an_extension_says_why_in_the_departments_words_masked() -> None:
    case = build("in_handling")
    case.request_extension(
        officer(0), SYS, STEP, kind=ExtensionKind.STANDARD, reason="需会同430102199003071234核实"
    )
    case.approve_extension(officer(1), SYS, STEP)
    notice = replace(NOTICE, extension_reason="需会同430102199003071234核实")
    (intent,) = _intents(case.collect_events()[-1], notice)
    assert intent.variables["reason"] == "延期原因：需会同430***********1234核实。"
    assert "延期原因：需会同430***********1234核实。" in render(intent, "inbox").body


def test_a_revocation_reason_loses_id_and_mobile_numbers() -> None:
    case = build("commitment_approved")
    reason = "承诺人430102199003071234的经营场所与承诺不符，联系电话13812341234"
    case.revoke_commitment_approval(officer(0), SYS, STEP, reason=reason)
    (intent,) = _intents(case.collect_events()[-1])
    assert intent.variables["reason"] == "承诺人430***********1234的经营场所与承诺不符，联系电话138****1234"


def test_materials_without_a_catalogue_name_are_listed_by_id() -> None:
    case = build("submitted")
    case.request_materials(
        CLERK,
        WINDOW,
        STEP,
        issues=[MaterialIssue(material_id="photo", reason="照片不清晰，请联系13812341234")],
    )
    (intent,) = _intents(case.collect_events()[-1])
    assert intent.variables["materials"] == "photo：照片不清晰，请联系138****1234"


def test_suspension_kinds_all_have_words() -> None:
    for kind in SuspensionKind:
        if kind is SuspensionKind.AWAITING_SUPPLEMENT:
            continue
        case = build("in_handling")
        case.suspend(officer(0), SYS, STEP, kind=kind, reason="需要", expected_end=DEADLINE)
        (intent,) = _intents(case.collect_events()[-1])
        assert intent.variables["procedure"]


def test_the_notice_table_remembers_why_an_extension_was_asked_until_it_is_decided() -> None:
    case, history = build_with_history("in_handling")
    case.request_extension(officer(0), SYS, STEP, kind=ExtensionKind.STANDARD, reason="需补充现场核查")
    case.approve_extension(officer(1), SYS, STEP)
    events = [*history, *case.collect_events()]
    notices = CaseNotices("case_notices", {}, {})
    seen = [notices.apply(SimpleNamespace(event=e, originator_id=e.originator_id)) for e in events]
    assert [n.extension_reason for n in seen if n is not None][-2:] == ["需补充现场核查", "需补充现场核查"]
    refused = build("in_handling")
    refused.request_extension(officer(0), SYS, STEP, kind=ExtensionKind.STANDARD, reason="需补充现场核查")
    refused.refuse_extension(officer(1), SYS, STEP, reason="理由不足")
    later = CaseNotices("case_notices", {}, {})
    for e in [*build_with_history("in_handling")[1][:1], *refused.collect_events()]:
        last = later.apply(SimpleNamespace(event=e, originator_id=refused.id))
    assert last is not None and last.extension_reason is None
