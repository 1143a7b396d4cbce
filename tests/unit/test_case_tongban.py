"""跨城通办 on a case: handed to a partner city and followed, or received from one."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from domain.case import Actor, Case, CaseStatus, ELicenceRef, MaterialIssue, ResultCode, Role, UploadedFile
from domain.case.errors import CaseError, IllegalTransitionError, InvalidCommandError, NotAuthorisedActorError
from projections.case_facts import CaseFacts, fold
from tests.unit.case_builders import (
    CITIZEN,
    CLERK,
    MINIAPP,
    PASSWORD_HASH,
    STATES,
    STEP,
    SYS,
    WINDOW,
    submission,
)

ZHUZHOU = Actor(id="430200", role=Role.PARTNER, name="株洲")
XIANGTAN = Actor(id="430300", role=Role.PARTNER, name="湘潭")
CHANGSHA = Actor(id="430100", role=Role.PARTNER, name="长沙")
CITY = WINDOW  # any channel; partner messages arrive as Channel.PARTNER_CITY in the service
HANDOFF = uuid4()
SYSTEM = Actor(id="system:通办", role=Role.SYSTEM)


def accepted() -> Case:
    case = STATES["accepted"]()[0]
    case.collect_events()
    return case


def handed_off() -> Case:
    case = accepted()
    case.hand_off(CLERK, WINDOW, STEP, partner="430200", mode="remote_collect", handoff=HANDOFF)
    return case


def taken_on() -> Case:
    case = handed_off()
    case.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="43020020260506000001")
    return case


def submitted() -> Case:
    case = STATES["submitted"]()[0]
    case.collect_events()
    return case


def online() -> Case:
    """全程网办: handed to 株洲 as submitted, before any acceptance here."""
    case = submitted()
    case.hand_off(SYSTEM, SYS, STEP, partner="430200", mode="full_online", handoff=HANDOFF)
    return case


def decided() -> Case:
    case = taken_on()
    case.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.APPROVED)
    return case


def paper_posted() -> Case:
    case = taken_on()
    case.post_paper_materials(CLERK, WINDOW, STEP, waybill_number="EMS1", carrier="EMS")
    return case


def refused(case: Case, command: Any, error: type[CaseError]) -> None:
    """The command raises, and the case records nothing."""
    before = case.version, len(case.pending_events)
    with pytest.raises(error):
        command(case)
    assert (case.version, len(case.pending_events)) == before


def test_a_handed_off_case_follows_its_partner_to_a_decision() -> None:
    case = handed_off()
    assert case.status is CaseStatus.IN_HANDLING and case.handoff is not None
    assert (case.handoff.partner, case.handoff.handoff, case.handoff.partner_number) == (
        "430200",
        HANDOFF,
        None,
    )
    case.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="43020020260506000001")
    case.record_partner_progress(
        ZHUZHOU, CITY, STEP, step="task.approved", label="株洲市市场监督管理局：批准通过"
    )
    case.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.APPROVED)
    assert case.status is CaseStatus.CONCLUDED and case.approved
    assert case.conclusion is not None and case.conclusion.concluded_by == "430200"
    names = [type(e).__name__ for e in case.collect_events()]
    assert names == ["HandedOff", "HandoffAccepted", "PartnerProgressed", "Concluded"]


@pytest.mark.parametrize(
    ("build", "command", "error"),
    [
        # Only the window (or the system) hands off, only an accepted case, only once, only to a region.
        (accepted, lambda c: c.hand_off(CITIZEN, WINDOW, STEP, partner="430200", mode="remote_collect",
                                        handoff=HANDOFF), NotAuthorisedActorError),
        (lambda: STATES["submitted"]()[0], lambda c: c.hand_off(CLERK, WINDOW, STEP, partner="430200",
                                                               mode="remote_collect", handoff=HANDOFF),
         IllegalTransitionError),
        (lambda: STATES["in_handling"]()[0], lambda c: c.hand_off(CLERK, WINDOW, STEP, partner="430200",
                                                                 mode="remote_collect", handoff=HANDOFF),
         IllegalTransitionError),
        (handed_off, lambda c: c.hand_off(CLERK, WINDOW, STEP, partner="430300", mode="remote_collect",
                                          handoff=uuid4()), IllegalTransitionError),
        (accepted, lambda c: c.hand_off(CLERK, WINDOW, STEP, partner="株洲", mode="remote_collect",
                                        handoff=HANDOFF), InvalidCommandError),
        (accepted, lambda c: c.hand_off(CLERK, WINDOW, STEP, partner="430200", mode="by_pigeon",
                                        handoff=HANDOFF), InvalidCommandError),
        # A handed-off case is the partner's to route and decide.
        (handed_off, lambda c: c.route(CLERK, WINDOW, STEP, assignments=()), IllegalTransitionError),
        # Only the partner the case went to reports on it, and in order.
        (handed_off, lambda c: c.record_partner_acceptance(XIANGTAN, CITY, STEP, partner_number="N"),
         IllegalTransitionError),
        (handed_off, lambda c: c.record_partner_acceptance(CLERK, CITY, STEP, partner_number="N"),
         NotAuthorisedActorError),
        (accepted, lambda c: c.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="N"),
         IllegalTransitionError),
        (taken_on, lambda c: c.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="N2"),
         IllegalTransitionError),
        (handed_off, lambda c: c.record_partner_progress(ZHUZHOU, CITY, STEP, step="case.accepted",
                                                         label="受理"), IllegalTransitionError),
        (handed_off, lambda c: c.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.APPROVED),
         IllegalTransitionError),
        (taken_on, lambda c: c.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.VOIDED,
                                                       reason="x"), InvalidCommandError),
        (taken_on, lambda c: c.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.DENIED),
         InvalidCommandError),
        (taken_on, lambda c: c.record_partner_decision(XIANGTAN, CITY, STEP, result=ResultCode.APPROVED),
         IllegalTransitionError),
        (decided, lambda c: c.record_handoff_refusal(ZHUZHOU, CITY, STEP, reason="不办理"),
         IllegalTransitionError),
        (decided, lambda c: c.record_handoff_refusal(XIANGTAN, CITY, STEP, reason="不办理"),
         IllegalTransitionError),
        # 全程网办 goes before acceptance; the other modes after it.
        (submitted, lambda c: c.hand_off(SYSTEM, SYS, STEP, partner="430200", mode="remote_collect",
                                         handoff=HANDOFF), IllegalTransitionError),
        (accepted, lambda c: c.hand_off(SYSTEM, SYS, STEP, partner="430200", mode="full_online",
                                        handoff=HANDOFF), IllegalTransitionError),
        (online, lambda c: c.accept(CLERK, WINDOW, STEP, receipt_number="SL-1",
                                    query_password_hash=PASSWORD_HASH), IllegalTransitionError),
        # Paper goes from our window, once, and only to a partner that has the case.
        (accepted, lambda c: c.post_paper_materials(CLERK, WINDOW, STEP, waybill_number="EMS1"),
         IllegalTransitionError),
        (online, lambda c: c.post_paper_materials(CLERK, WINDOW, STEP, waybill_number="EMS1"),
         IllegalTransitionError),
        (paper_posted, lambda c: c.post_paper_materials(CLERK, WINDOW, STEP, waybill_number="EMS2"),
         IllegalTransitionError),
        (taken_on, lambda c: c.post_paper_materials(ZHUZHOU, CITY, STEP, waybill_number="EMS1"),
         NotAuthorisedActorError),
        (taken_on, lambda c: c.archive_paper_materials(ZHUZHOU, CITY, STEP), IllegalTransitionError),
        (paper_posted, lambda c: c.archive_paper_materials(CLERK, WINDOW, STEP), IllegalTransitionError),
        (paper_posted, lambda c: c.archive_paper_materials(XIANGTAN, CITY, STEP), IllegalTransitionError),
        # Only the partner that has the case sends its result.
        (decided, lambda c: c.mail_result(XIANGTAN, CITY, STEP, waybill_number="EMS9"),
         IllegalTransitionError),
        (taken_on, lambda c: c.mail_result(ZHUZHOU, CITY, STEP, waybill_number="EMS9"),
         IllegalTransitionError),
    ],
)  # fmt: skip
def test_refused_commands_append_nothing(build: Any, command: Any, error: type[CaseError]) -> None:
    case = build()
    case.collect_events()
    refused(case, command, error)


def test_a_refused_handoff_is_back_with_the_window_and_may_go_elsewhere() -> None:
    case = handed_off()
    case.record_handoff_refusal(ZHUZHOU, CITY, STEP, reason="本市不受理该事项的异地代收")
    assert case.status is CaseStatus.ACCEPTED and not case.with_partner
    assert case.handoff is not None and case.handoff.refused == "本市不受理该事项的异地代收"
    refused(case, lambda c: c.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="N"),
            IllegalTransitionError)  # fmt: skip
    case.hand_off(CLERK, WINDOW, STEP, partner="430300", mode="remote_collect", handoff=uuid4())
    assert case.with_partner and case.handoff is not None and case.handoff.partner == "430300"


def test_a_partner_decision_can_deny_with_a_reason() -> None:
    case = taken_on()
    case.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.DENIED, reason="不符合条件")
    assert case.status is CaseStatus.CONCLUDED and not case.approved


def test_a_case_received_from_a_partner_remembers_where_it_came_from() -> None:
    origin = uuid4()
    case = Case.submit(CHANGSHA, CITY, STEP, **submission())
    case.received_from_partner(
        CHANGSHA, CITY, STEP, origin_case_id=origin, origin_number="430100202605060000001",
        mode="remote_collect", handoff=HANDOFF, request_id="message-1",
    )  # fmt: skip
    assert case.origin is not None and (case.origin.partner, case.origin.case_id) == ("430100", origin)
    # The same message again is a no-op; a second origin, or one recorded by another city, is refused.
    case.received_from_partner(
        CHANGSHA, CITY, STEP, origin_case_id=origin, origin_number="x", mode="remote_collect",
        handoff=HANDOFF, request_id="message-1",
    )  # fmt: skip
    assert [type(e).__name__ for e in case.collect_events()] == ["Submitted", "ReceivedFromPartner"]
    refused(case, lambda c: c.received_from_partner(
        CHANGSHA, CITY, STEP, origin_case_id=origin, origin_number="n", mode="remote_collect",
        handoff=HANDOFF,
    ), IllegalTransitionError)  # fmt: skip
    other = Case.submit(CHANGSHA, CITY, STEP, **submission())
    refused(other, lambda c: c.received_from_partner(
        ZHUZHOU, CITY, STEP, origin_case_id=origin, origin_number="n", mode="remote_collect",
        handoff=HANDOFF,
    ), IllegalTransitionError)  # fmt: skip
    # A received case, accepted here, is not handed on again.
    case.accept(CLERK, WINDOW, STEP, receipt_number="SL-1", query_password_hash=PASSWORD_HASH)
    refused(case, lambda c: c.hand_off(CLERK, WINDOW, STEP, partner="430300", mode="remote_collect",
                                       handoff=uuid4()), IllegalTransitionError)  # fmt: skip


def test_the_timeline_follows_the_partner_and_its_status_matches_the_case() -> None:
    case, history = STATES["accepted"]()
    case.hand_off(CLERK, WINDOW, STEP, partner="430200", mode="remote_collect", handoff=HANDOFF)
    case.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="43020020260506000001")
    case.record_partner_progress(ZHUZHOU, CITY, STEP, step="task.approved", label="批准通过")
    facts = CaseFacts()
    labels = [fold(facts, e) for e in [*history, *case.collect_events()]]
    assert labels[-3:] == [
        "转办理地（430200）办理（跨城通办）", "办理地已受理（43020020260506000001）", "办理地：批准通过",
    ]  # fmt: skip
    assert facts.status is case.status is CaseStatus.IN_HANDLING
    case.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.APPROVED)
    fold(facts, case.collect_events()[-1])
    assert facts.status is case.status is CaseStatus.CONCLUDED


def test_a_full_online_case_goes_before_acceptance_and_ends_with_the_partners_refusal() -> None:
    case, history = STATES["submitted"]()
    case.hand_off(SYSTEM, SYS, STEP, partner="430200", mode="full_online", handoff=HANDOFF)
    assert case.status is CaseStatus.IN_HANDLING and case.acceptance is None
    case.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="43020020260506000001")
    case.record_partner_progress(ZHUZHOU, CITY, STEP, step="case.materials_requested", label="一次性告知")
    case.record_handoff_refusal(
        ZHUZHOU, CITY, STEP, reason="不属于本市管辖", path_forward="请向户籍地人社局申请"
    )
    assert case.status is CaseStatus.NOT_ACCEPTED and not case.with_partner
    assert case.refusal is not None and case.refusal.path_forward == "请向户籍地人社局申请"
    facts = CaseFacts()
    labels = [fold(facts, e) for e in [*history, *case.collect_events()]]
    assert labels[-1] == "办理地不予受理：不属于本市管辖" and facts.status is CaseStatus.NOT_ACCEPTED
    assert facts.path_forward == "请向户籍地人社局申请"


def test_the_partners_refusal_after_taking_a_collected_case_on_sends_it_back_to_the_window() -> None:
    case = taken_on()
    case.record_handoff_refusal(ZHUZHOU, CITY, STEP, reason="材料不齐", path_forward="补齐后重新申请")
    assert case.status is CaseStatus.ACCEPTED and not case.with_partner  # our window accepted it


def test_the_partner_mails_the_result_and_archives_the_paper_we_posted() -> None:
    case, history = STATES["accepted"]()
    case.hand_off(CLERK, WINDOW, STEP, partner="430200", mode="remote_collect", handoff=HANDOFF)
    case.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="43020020260506000001")
    case.post_paper_materials(CLERK, WINDOW, STEP, waybill_number="EMS1", carrier="EMS")
    case.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.APPROVED)
    case.mail_result(ZHUZHOU, CITY, STEP, waybill_number="EMS2", carrier="EMS")
    case.archive_paper_materials(ZHUZHOU, CITY, STEP, request_id="m-7")
    case.archive_paper_materials(ZHUZHOU, CITY, STEP, request_id="m-7")  # the same message again
    assert case.status is CaseStatus.DELIVERED and case.deliveries[-1].reference == "EMS2"
    assert case.paper is not None and case.paper.archived_at is not None
    facts = CaseFacts()
    labels = [fold(facts, e) for e in [*history, *case.collect_events()]]
    assert labels[-5:] == [
        "办理地已受理（43020020260506000001）", "纸质材料已寄往办理地归档（EMS EMS1）", "办结：出证办结",
        "结果已寄出（EMS）", "纸质材料已归档",
    ]  # fmt: skip
    assert facts.status is case.status


def test_the_handling_city_records_the_paper_coming_and_archives_it() -> None:
    case = Case.submit(CHANGSHA, CITY, STEP, **submission())
    case.received_from_partner(
        CHANGSHA, CITY, STEP, origin_case_id=uuid4(), origin_number="430100202605060000001",
        mode="remote_collect", handoff=HANDOFF,
    )  # fmt: skip
    refused(case, lambda c: c.archive_paper_materials(CLERK, WINDOW, STEP), IllegalTransitionError)
    refused(case, lambda c: c.record_paper_posted(ZHUZHOU, CITY, STEP, waybill_number="E", carrier="EMS"),
            IllegalTransitionError)  # fmt: skip
    case.record_paper_posted(CHANGSHA, CITY, STEP, waybill_number="EMS1", carrier="EMS")
    case.archive_paper_materials(CLERK, WINDOW, STEP)
    labels = [fold(CaseFacts(), e) for e in case.collect_events()]
    assert labels[-2:] == ["收件地已寄出纸质材料（EMS EMS1）", "纸质材料已归档"]


def jointly() -> tuple[Case, list[Any]]:
    """多地联办: accepted here, handed to 株洲 and 湘潭 at once, both taking it on."""
    case, history = STATES["accepted"]()
    case.hand_off_jointly(
        CLERK, WINDOW, STEP, parts=[("430200", uuid4()), ("430300", uuid4())], request_id="j"
    )
    case.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="ZZ-1")
    case.record_partner_acceptance(XIANGTAN, CITY, STEP, partner_number="XT-1")
    return case, history


def test_a_joint_case_concludes_once_every_city_has_decided_its_part() -> None:
    case, history = jointly()
    case.hand_off_jointly(CLERK, WINDOW, STEP, parts=[("430200", uuid4())], request_id="j")  # a retry: no-op
    assert [p.partner for p in case.joint] == ["430200", "430300"] and case.handoff is None
    assert case.status is CaseStatus.IN_HANDLING
    case.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.APPROVED)
    assert case.status is CaseStatus.IN_HANDLING and case.conclusion is None  # 湘潭 is still deciding
    refused(case, lambda c: c.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.DENIED,
                                                      reason="再议"), IllegalTransitionError)  # fmt: skip
    case.mail_result(ZHUZHOU, CITY, STEP, waybill_number="EMS-ZZ")  # 株洲's own part is approved
    refused(
        case, lambda c: c.mail_result(XIANGTAN, CITY, STEP, waybill_number="EMS-XT"), IllegalTransitionError
    )
    case.record_partner_decision(XIANGTAN, CITY, STEP, result=ResultCode.APPROVED)
    assert case.status is CaseStatus.DELIVERED and case.approved
    assert case.conclusion is not None and case.conclusion.concluded_by == "system:多地联办"
    facts = CaseFacts()
    labels = [fold(facts, e) for e in [*history, *case.collect_events()]]
    assert labels[-8:] == [
        "多地联办：转430200办理（跨城通办）", "多地联办：转430300办理（跨城通办）",
        "办理地已受理（ZZ-1）", "办理地已受理（XT-1）", "多地联办：430200出证办结", "结果已寄出（EMS）",
        "多地联办：430300出证办结", "办结：出证办结",
    ]  # fmt: skip
    assert facts.status is case.status


def test_one_city_denying_its_part_denies_the_joint_case_with_its_reason() -> None:
    case, history = jointly()
    case.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.APPROVED)
    case.issue_e_licence(
        ZHUZHOU, CITY, STEP, licence_number="ZZ-L-1"
    )  # 株洲's part, sent before 湘潭 decides
    case.record_partner_decision(XIANGTAN, CITY, STEP, result=ResultCode.DENIED, reason="不符合条件")
    assert case.status is CaseStatus.CONCLUDED and not case.approved  # denied, not delivered
    assert case.conclusion is not None and case.conclusion.reason == "430300：不符合条件"
    facts = CaseFacts()
    for event in [*history, *case.collect_events()]:
        fold(facts, event)
    assert facts.status is case.status


def test_a_city_refusing_its_part_leaves_the_others_and_may_be_replaced() -> None:
    case, history = STATES["accepted"]()
    case.hand_off_jointly(CLERK, WINDOW, STEP, parts=[("430200", uuid4()), ("430300", uuid4())])
    case.record_handoff_refusal(XIANGTAN, CITY, STEP, reason="本市不办理")
    assert case.status is CaseStatus.IN_HANDLING and [p.partner for p in case.joint if p.open] == ["430200"]
    # Another city joins in 湘潭's place; 株洲 decides; then the new city does, and the case concludes.
    changsha_county = Actor(id="430121", role=Role.PARTNER, name="长沙县")
    case.hand_off(CLERK, WINDOW, STEP, partner="430121", mode="multi_city", handoff=uuid4())
    refused(case, lambda c: c.hand_off(CLERK, WINDOW, STEP, partner="430200", mode="multi_city",
                                       handoff=uuid4()), IllegalTransitionError)  # fmt: skip
    case.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="ZZ-1")
    case.record_partner_acceptance(changsha_county, CITY, STEP, partner_number="CSX-1")
    case.record_partner_decision(ZHUZHOU, CITY, STEP, result=ResultCode.APPROVED)
    assert case.conclusion is None
    case.record_partner_decision(changsha_county, CITY, STEP, result=ResultCode.APPROVED)
    assert case.status is CaseStatus.CONCLUDED and case.approved
    facts = CaseFacts()
    for event in [*history, *case.collect_events()]:
        fold(facts, event)
        assert facts.status is not None
    assert facts.status is case.status


def test_the_last_city_refusing_sends_a_joint_case_back_to_the_window() -> None:
    case, history = STATES["accepted"]()
    case.hand_off_jointly(CLERK, WINDOW, STEP, parts=[("430200", uuid4()), ("430300", uuid4())])
    case.record_handoff_refusal(XIANGTAN, CITY, STEP, reason="本市不办理")
    case.record_handoff_refusal(ZHUZHOU, CITY, STEP, reason="本市不办理")
    assert case.status is CaseStatus.ACCEPTED and not case.with_partner
    facts = CaseFacts()
    labels = [fold(facts, e) for e in [*history, *case.collect_events()]]
    assert labels[-1] == "多地联办：430200未接收：本市不办理" and facts.status is CaseStatus.ACCEPTED


@pytest.mark.parametrize(
    "parts",
    [[], [("430200", HANDOFF), ("430200", uuid4())], [("4302", HANDOFF)]],
)
def test_a_joint_hand_off_names_each_city_once_by_its_region(parts: list[tuple[str, Any]]) -> None:
    refused(accepted(), lambda c: c.hand_off_jointly(CLERK, WINDOW, STEP, parts=parts), InvalidCommandError)


def test_a_joint_hand_off_is_refused_whole_when_a_city_has_the_case_already() -> None:
    case = handed_off()  # 异地代收代办 with 株洲
    refused(case, lambda c: c.hand_off_jointly(CLERK, WINDOW, STEP, parts=[("430300", uuid4())]),
            IllegalTransitionError)  # fmt: skip


def test_the_partners_one_notice_is_owed_here_and_the_supplement_follows_it() -> None:
    case, history = STATES["submitted"]()
    case.hand_off(SYSTEM, SYS, STEP, partner="430200", mode="full_online", handoff=HANDOFF)
    unclear = [MaterialIssue(material_id="M02", reason="复印件不清晰")]
    refused(case, lambda c: c.record_partner_material_request(ZHUZHOU, CITY, STEP, issues=unclear),
            IllegalTransitionError)  # fmt: skip
    case.record_partner_acceptance(ZHUZHOU, CITY, STEP, partner_number="43020020260506000009")
    case.record_partner_material_request(
        ZHUZHOU,
        CITY,
        STEP,
        issues=[MaterialIssue(material_id="M02", reason="复印件不清晰")],
        request_id="m-2",
    )
    assert case.status is CaseStatus.AWAITING_CORRECTION and case.requested == {"M02": "复印件不清晰"}
    licence = {"M02": ELicenceRef("L1")}  # a reference cannot travel to the partner city
    refused(case, lambda c: c.supplement_materials(CITIZEN, MINIAPP, STEP, materials=licence),
            InvalidCommandError)  # fmt: skip
    case.supplement_materials(CITIZEN, MINIAPP, STEP, materials={"M02": UploadedFile("c" * 64)})
    assert case.status is CaseStatus.IN_HANDLING and not case.requested  # back with 株洲
    facts = CaseFacts()
    labels = [fold(facts, e) for e in [*history, *case.collect_events()]]
    assert labels[-2:] == ["办理地一次性告知补正材料", "补正材料（第1次）"] and facts.status is case.status
