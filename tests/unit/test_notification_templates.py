"""Notification templates: every (purpose, channel) renders, WeChat limits hold, nothing personal shows."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.case import Case, ExtensionKind, MaterialIssue, Person
from domain.personal import Address, IdNumber, PersonName, Phone, id_check_char
from notifications.intents import PURPOSE_VARIABLES, Intent, Purpose, Recipient, intent_key
from notifications.policy import CaseNotice, intents_for
from notifications.templates import (
    CHANNELS,
    SMS_PROVIDERS,
    TEMPLATES,
    WECHAT_LIMITS,
    MissingVariableError,
    TemplateError,
    channels_for,
    fit_wechat,
    load,
    render,
)
from tests.unit.case_builders import (
    CITIZEN,
    CLERK,
    PERSON,
    STEP,
    SYS,
    T0,
    WINDOW,
    build,
    build_with_history,
    officer,
    submission,
)

CASE_ID = UUID(int=7)
ME = Recipient.citizen("citizen-1")


def _intent(purpose: Purpose, **overrides: str) -> Intent:
    variables = {name: f"<{name}>" for name in PURPOSE_VARIABLES[purpose]} | overrides
    key = intent_key((CASE_ID, 1), ME, purpose)
    return Intent(key, purpose, ME, variables, False, T0, CASE_ID)


def _renderings(intent: Intent) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for channel in channels_for(intent.purpose):
        providers: tuple[str | None, ...] = SMS_PROVIDERS if channel == "sms" else (None,)
        pairs += [(channel, p) for p in providers]
    return pairs


PAIRS = [(p, c) for p in Purpose for c in CHANNELS if (p, c) in TEMPLATES]


@pytest.mark.parametrize(("purpose", "channel"), PAIRS, ids=lambda x: str(x))
def test_every_template_renders_with_its_version(purpose: Purpose, channel: str) -> None:
    intent = _intent(purpose)
    for provider in SMS_PROVIDERS if channel == "sms" else (None,):
        out = render(intent, channel, provider)
        template = TEMPLATES[purpose, channel]
        assert out.template == f"{purpose}.{channel}"
        assert out.version == template.version >= 1
        texts = [out.title, out.body, *out.variables.values(), *out.params]
        assert not any("{" in t or "}" in t for t in texts)
        assert out.body
        if channel in ("push", "inbox"):
            assert out.title and out.provider_template == ""
        if channel == "wechat":
            assert out.provider_template == template.template_id
            assert set(out.variables) == set(template.fields)
            assert "{" not in out.page
        if channel == "sms":
            assert out.params == tuple(out.variables.values())
            assert (
                out.provider_template.startswith("SMS_")
                if provider == "aliyun"
                else out.provider_template.isdigit()
            )
            if provider == "tencent":
                assert list(out.variables) == [str(i + 1) for i in range(len(out.params))]


def test_citizens_have_every_channel_and_officers_all_but_wechat() -> None:
    officers = {Purpose.NEW_TASK, Purpose.LIGHT_YELLOW, Purpose.LIGHT_RED}
    for purpose in Purpose:
        expected = ("push", "sms", "inbox") if purpose in officers else CHANNELS
        assert channels_for(purpose) == expected


def test_the_inbox_gets_the_full_text() -> None:
    intent = _intent(Purpose.MATERIALS_REQUESTED, materials="租赁合同：未盖章；平面图：缺失", due="尽快")
    out = render(intent, "inbox")
    assert "租赁合同：未盖章；平面图：缺失" in out.body and "请尽快补正" in out.body
    assert out.variables == intent.variables


def test_wechat_thing_fields_are_cut_to_20_characters() -> None:
    long_name = "中华人民共和国食品经营许可证（新办、延续、变更、注销）"
    out = render(_intent(Purpose.SUBMITTED, item_name=long_name), "wechat")
    assert out.variables["thing2"] == long_name[:19] + "…"
    assert len(out.variables["thing2"]) == 20
    for field, value in out.variables.items():
        if field.startswith("thing"):
            assert len(value) <= 20


def test_every_wechat_field_stays_within_its_limit_however_long_the_values() -> None:
    for purpose in Purpose:
        if (purpose, "wechat") not in TEMPLATES:
            continue
        out = render(_intent(purpose, **{n: "长" * 60 for n in PURPOSE_VARIABLES[purpose]}), "wechat")
        assert len(out.variables) <= 5, purpose  # WeChat: at most five keywords per template
        for field, value in out.variables.items():
            limit = WECHAT_LIMITS.get(field.rstrip("0123456789"))
            assert limit is None or len(value) <= limit, (purpose, field, value)


# The two notices about a decision taken after the case began, rendered from real events.

NOTICE = CaseNotice.of(
    number="430100202605060000001",
    item_name="食品经营许可（新办）",
    applicant_subject=CITIZEN.id,
    applicant=PERSON,
    material_names={},
)


def _only_intent(event: Case.Event, notice: CaseNotice = NOTICE) -> Intent:
    (intent,) = intents_for(notice, CASE_ID, event.originator_version, event)
    return intent


def _all_channels(intent: Intent) -> dict[tuple[str, str | None], str]:
    """Each rendering's full text: title, body, WeChat fields or SMS parameters."""
    texts = {}
    for channel, provider in _renderings(intent):
        out = render(intent, channel, provider)
        texts[channel, provider] = "\n".join([out.title, out.body, *out.variables.values(), *out.params])
    return texts


def test_a_revoked_approval_says_why_and_what_can_be_done_on_every_channel() -> None:
    case = build("commitment_approved")
    reason = "现场核查：实际经营场所与承诺的设备布局不符，承诺人430102199003071234，电话13812341234"
    case.revoke_commitment_approval(officer(0), SYS, STEP, reason=reason)
    intent = _only_intent(case.collect_events()[-1])
    assert intent.purpose is Purpose.COMMITMENT_REVOKED and intent.urgent
    texts = _all_channels(intent)
    assert set(texts) == {
        ("wechat", None),
        ("push", None),
        ("sms", "aliyun"),
        ("sms", "tencent"),
        ("inbox", None),
    }
    for text in texts.values():
        assert "430102199003071234" not in text and "13812341234" not in text
        assert "撤销" in text
    inbox = render(intent, "inbox")
    assert inbox.title == "审批决定已撤销"
    assert "告知承诺" in inbox.body and "原因：现场核查：实际经营场所与承诺的设备布局不符" in inbox.body
    assert "430***********1234" in inbox.body and "138****1234" in inbox.body
    assert "可依法申请行政复议或者提起行政诉讼" in inbox.body
    assert "可依法申请行政复议或者提起行政诉讼" in render(intent, "push").body
    wechat = render(intent, "wechat")
    assert wechat.provider_template == "wx-commitment-revoked"
    assert wechat.page == f"pages/cases/detail?id={CASE_ID}"
    assert wechat.variables["phrase3"] == "已撤销"
    assert wechat.variables["thing4"] == reason[:19] + "…"  # the reason, cut to WeChat's 20
    assert wechat.variables["thing5"] == "如有异议可依法申请复议或提起诉讼"
    # An SMS carries no free text: the reason waits in the mini-program, where the applicant signs in.
    tencent = render(intent, "sms", "tencent")
    assert tencent.provider_template == "2100016"
    assert tencent.params == ("食品经营许可（新办）", NOTICE.number)
    assert render(intent, "sms", "aliyun").provider_template == "SMS_480000016"
    assert "现场核查" not in tencent.body


def test_an_extension_says_by_how_much_and_the_new_deadline_or_where_to_look() -> None:
    case = build("in_handling")
    case.request_extension(officer(0), SYS, STEP, kind=ExtensionKind.JOINT, reason="联合办理")
    case.approve_extension(officer(1), SYS, STEP)
    unknown = _only_intent(case.collect_events()[-1])
    assert unknown.purpose is Purpose.EXTENSION_APPROVED and not unknown.urgent
    for text in _all_channels(unknown).values():
        assert "15个工作日" in text and "以办理进度为准" in text
    inbox = render(unknown, "inbox")
    assert inbox.title == "办理时限已延长"
    assert "延长办理时限15个工作日，延长后的办结时限：以办理进度为准。" in inbox.body
    wechat = render(unknown, "wechat")
    assert wechat.provider_template == "wx-extension-approved"
    assert wechat.variables == {
        "character_string1": NOTICE.number,
        "thing2": "食品经营许可（新办）",
        "thing3": "延长15个工作日",
        "thing4": "以办理进度为准",
    }
    tencent = render(unknown, "sms", "tencent")
    assert tencent.provider_template == "2100017"
    assert tencent.params == ("食品经营许可（新办）", NOTICE.number, "15个工作日", "以办理进度为准")
    aliyun = render(unknown, "sms", "aliyun")
    assert aliyun.provider_template == "SMS_480000017"
    assert list(aliyun.variables) == ["item", "number", "extended", "deadline"]
    assert tencent.body == (
        f"您的食品经营许可（新办）申请（{NOTICE.number}）经批准延长办理时限15个工作日，"
        "办结时限以办理进度为准。"
    )
    # A notice that knows the deadline (as of just after the extension) states it.
    known = _only_intent(build_with_history("extended")[1][-1], replace(NOTICE, deadline=date(2026, 6, 3)))
    assert render(known, "wechat").variables["thing4"] == "2026年6月3日"
    assert "办结时限：2026年6月3日" in render(known, "push").body


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("thing1", "一" * 20, "一" * 20),
        ("thing1", "一" * 21, "一" * 19 + "…"),
        ("phrase3", "已转报上级机关办理", "已转报上级"),
        ("character_string2", "A" * 40, "A" * 32),
        ("name4", "欧阳娜娜娜娜娜娜娜娜娜", "欧阳娜娜娜娜娜娜娜…"),
        ("time4", "2026年5月6日 10:00", "2026年5月6日 10:00"),
        ("date2", "2026年5月16日" * 3, "2026年5月16日" * 3),
        ("thing1", "😀" * 25, "😀" * 19 + "…"),
    ],
)
def test_fit_wechat(field: str, value: str, expected: str) -> None:
    assert fit_wechat(field, value) == expected


def test_a_missing_variable_is_named() -> None:
    intent = _intent(Purpose.ACCEPTED)
    del intent.variables["receipt_number"]
    with pytest.raises(MissingVariableError, match=r"accepted\.inbox.*receipt_number"):
        render(intent, "inbox")
    with pytest.raises(MissingVariableError) as caught:
        render(intent, "sms", "tencent")
    assert caught.value.variable == "receipt_number"


def test_channels_and_providers_are_checked() -> None:
    with pytest.raises(TemplateError, match=r"no template new_task\.wechat"):
        render(_intent(Purpose.NEW_TASK), "wechat")
    with pytest.raises(TemplateError, match="SMS provider"):
        render(_intent(Purpose.SUBMITTED), "sms")
    with pytest.raises(TemplateError, match="SMS provider"):
        render(_intent(Purpose.SUBMITTED), "push", "aliyun")
    with pytest.raises(TemplateError, match="'huawei'"):
        render(_intent(Purpose.SUBMITTED), "sms", "huawei")


def _write(tmp_path: Path, templates: dict[str, object]) -> Path:
    path = tmp_path / "templates.json"
    path.write_text(json.dumps({"templates": templates}, ensure_ascii=False))
    return path


@pytest.mark.parametrize(
    ("templates", "fault"),
    [
        (
            {"submitted": {"inbox": {"version": 1, "title": "t", "body": "{receipt_number}"}}},
            "does not carry",
        ),
        ({"submitted": {"fax": {"version": 1, "title": "t", "body": "b"}}}, "unknown channel"),
        ({"submitted": {"inbox": {"version": 1, "title": "", "body": "b"}}}, "title and a body"),
        (
            {
                "submitted": {
                    "wechat": {"version": 1, "template_id": "x", "fields": {"colour1": "{item_name}"}}
                }
            },
            "field type",
        ),
        (
            {
                "submitted": {
                    "sms": {
                        "version": 1,
                        "body": "b",
                        "providers": {
                            "aliyun": {"code": "SMS_1", "params": {}},
                            "tencent": {"code": "1", "params": {"2": "{item_name}"}},
                        },
                    }
                }
            },
            "Tencent",
        ),
        ({"nonsense": {"inbox": {"version": 1, "title": "t", "body": "b"}}}, "templates.json"),
    ],
)
def test_a_faulty_templates_file_is_refused(tmp_path: Path, templates: dict[str, object], fault: str) -> None:
    with pytest.raises(TemplateError, match=fault):
        load(_write(tmp_path, templates))


# Nothing personal in any rendering: the applicant's own data, and the same data typed into free text.

_UNMASKED_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_UNMASKED_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")

_id_numbers = st.builds(
    lambda region, born, seq: (lambda first: first + id_check_char(first))(f"{region}{born:%Y%m%d}{seq:03d}"),
    st.sampled_from(["430102", "110101", "440305"]),
    st.dates(min_value=datetime(1940, 1, 1).date(), max_value=datetime(2008, 12, 31).date()),
    st.integers(0, 999),
)
_mobiles = st.builds(lambda p, rest: f"1{p}{rest:09d}", st.sampled_from("3456789"), st.integers(0, 10**9 - 1))
_names = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=2, max_size=4)


def _every_event(id_number: str, phone: str, applicant: Person) -> list[object]:
    said = f"申请人身份证{id_number}，电话{phone}"
    case = Case.submit(CITIZEN, WINDOW, T0, **(submission() | {"applicant": applicant}))
    case.request_materials(CLERK, WINDOW, STEP, issues=[MaterialIssue(material_id="lease", reason=said)])
    refused = build("submitted")
    refused.refuse_acceptance(CLERK, WINDOW, STEP, reason=said, path_forward=f"请致电{phone}咨询")
    revoked = build("commitment_approved")
    revoked.revoke_commitment_approval(officer(0), SYS, STEP, reason=said)
    extended = build("extension_requested")
    extended.approve_extension(officer(1), SYS, STEP)
    later = [refused, revoked, extended]
    return [*case.collect_events(), *(e for c in later for e in c.collect_events()[-1:])]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(id_number=_id_numbers, phone=_mobiles, name=_names)
def test_no_rendering_shows_an_id_number_or_a_mobile(id_number: str, phone: str, name: str) -> None:
    applicant = Person(
        name=PersonName(name),
        identity=IdNumber(id_number),
        phone=Phone(phone),
        address=Address.parse("长沙市岳麓区麓山南路1号"),
    )
    notice = CaseNotice.of(
        number="430100202605060000001",
        item_name=f"许可（联系{phone}）",
        applicant_subject=CITIZEN.id,
        applicant=applicant,
        material_names={"lease": f"租赁合同{id_number}"},
    )
    rendered = 0
    for event in _every_event(id_number, phone, applicant):
        assert isinstance(event, Case.Event)
        for intent in intents_for(notice, CASE_ID, event.originator_version, event):
            assert intent.variables["applicant_name"] == name[0] + "*" * (len(name) - 1)
            for channel, provider in _renderings(intent):
                out = render(intent, channel, provider)
                text = "\n".join([out.title, out.body, *out.variables.values(), *out.params])
                assert id_number not in text and phone not in text
                assert not _UNMASKED_ID.search(text) and not _UNMASKED_MOBILE.search(text)
                rendered += 1
    # Submitted, materials requested, refused, revoked, extended: five renderings each.
    assert rendered >= 5 * 5
