"""How auditors read events: stable type names, personal values revealed whole, and the terminal timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from eventsourcing.utils import get_topic

from backend.audit.history import CaseHistory, HistoryEntry
from backend.audit.naming import event_type, event_words, snake
from backend.audit.readable import aggregate_state, event_facts, readable, reveal
from backend.audit.timeline import render_history, render_verdict, who
from backend.audit.verification import BrokenEvent, ChainHead, ChainVerdict
from domain.audit import AuditAccess
from domain.case import Actor, Case, Role
from domain.personal import Address, Biometric, DocumentKind, IdDocument, IdNumber, PersonName, Phone
from domain.rating import RectificationTicket
from projections.case_facts import CASE_EVENTS
from tests.unit.case_builders import CITIZEN, ENTERPRISE, ENTERPRISE_AGENT, PERSON, build_with_history

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("topic", "name"),
    [
        (get_topic(Case.Submitted), "case.submitted"),
        (get_topic(Case.MaterialsRequested), "case.materials_requested"),
        (get_topic(Case.ELicenceIssued), "case.e_licence_issued"),
        (get_topic(Case.AcceptedWithMissingMaterials), "case.accepted_with_missing_materials"),
        (get_topic(AuditAccess.Recorded), "audit_access.recorded"),
        (get_topic(RectificationTicket.Opened), "rectification_ticket.opened"),
        ("some.module:HTTPServer.Started", "http_server.started"),
    ],
)
def test_a_type_is_named_from_its_class_path_in_snake_case(topic: str, name: str) -> None:
    assert event_type(topic) == name


def test_every_case_event_has_its_own_name_and_words() -> None:
    names = [event_type(get_topic(cls)) for cls in CASE_EVENTS]
    assert len(set(names)) == len(names) and all(n.startswith("case.") for n in names)
    assert "python" not in " ".join(names) and ":" not in " ".join(names)
    assert event_words("case.pre_review_passed") == "pre review passed"
    assert snake("PreReviewPassed") == "pre_review_passed" and snake("X") == "x"


def test_personal_values_are_revealed_whole() -> None:
    assert reveal(IdNumber("430102199003071234")) == "430102199003071234"
    assert reveal(Phone("0731-88880000")) == "0731-88880000"
    assert reveal(PersonName("欧阳娜娜")) == "欧阳娜娜"
    assert reveal(Address.parse("湖南省长沙市岳麓区麓山南路1号")) == "湖南省长沙市岳麓区麓山南路1号"
    assert reveal(IdDocument(DocumentKind.PASSPORT, "E12345678")) == "护照 E12345678"
    assert reveal(Biometric(modality="face", sha256="ab" * 32)) == f"face:{'ab' * 32}"


def test_readable_values_are_plain_json_with_tags_and_iso_times() -> None:
    value = {
        "applicant": PERSON,
        "agent": ENTERPRISE_AGENT,
        "enterprise": ENTERPRISE,
        "when": datetime(2026, 5, 6, 1, tzinfo=UTC),
        "day": date(2026, 5, 6),
        "ids": frozenset({"b", "a"}),
        "by": {Role.CLERK: uuid.UUID(int=1)},
        "steps": (1, 2),
    }
    assert readable(value) == {
        "applicant": {
            "kind": "person", "name": "张三", "identity": "430102199003071234", "phone": "13812341234",
            "address": "长沙市岳麓区麓山南路1号",
        },
        "agent": {"name": "王五", "identity": "430103198502021110", "phone": "13900001111"},
        "enterprise": {
            "kind": "enterprise", "name": "长沙星城科技有限公司", "identity": {"code": "91430100MA4L00000F"},
            "phone": "0731-88880000", "address": "长沙市天心区",
        },
        "when": "2026-05-06T01:00:00Z",
        "day": "2026-05-06",
        "ids": ["a", "b"],
        "by": {"clerk": "00000000-0000-0000-0000-000000000001"},
        "steps": [1, 2],
    }  # fmt: skip


def test_an_event_shows_its_own_facts_and_a_case_its_whole_state() -> None:
    case, events = build_with_history("in_handling")
    facts = event_facts(events[0])
    assert facts["applicant"]["identity"] == "430102199003071234" and facts["number"] == case.number
    assert not {"actor", "channel", "timestamp", "originator_id", "originator_version"} & set(facts)
    state = aggregate_state(case)
    assert state["applicant"]["phone"] == "13812341234" and state["number"] == case.number
    assert set(state["tasks"]) == set(case.tasks) and not any(k.startswith("_") for k in state)


def _entry(version: int, **overrides: object) -> HistoryEntry:
    given: dict[str, object] = {
        "version": version, "position": 40 + version, "topic": get_topic(Case.Submitted),
        "type": "case.submitted", "label": "提交申请", "occurred_at": datetime(2026, 9, 29, 2, tzinfo=UTC),
        "recorded_at": datetime(2026, 9, 29, 2, 0, 1, tzinfo=UTC), "actor": CITIZEN, "channel": "miniapp",
        "what": {"number": "430100202609290000001", "request_id": "r-1", "form": {}, "agent": None},
        "hash": "ab" * 32,
        "previous_hash": "", "intact": True,
    }  # fmt: skip
    given.update(overrides)
    return HistoryEntry(**given)  # type: ignore[arg-type]


def test_the_timeline_reads_in_beijing_time_with_who_and_what() -> None:
    clerk = Actor(id="clerk-1", role=Role.CLERK, name="周七", hall="SMZJ")
    history = CaseHistory(
        case_id=uuid.UUID(int=5),
        number="430100202609290000001",
        head_version=2,
        intact=False,
        entries=(
            _entry(1),
            _entry(2, type="case.accepted", label="已受理", actor=clerk, channel="hall_window", intact=False),
        ),
    )
    text = render_history(history)
    assert text.splitlines()[0] == f"办件 430100202609290000001   case {uuid.UUID(int=5)}"
    assert "CHAIN BROKEN" in text
    assert "v1   2026-09-29 10:00:00  #41  citizen 张三 [citizen-1]  via miniapp" in text
    assert "提交申请 / submitted\n      number: 430100202609290000001\n" in text
    assert "request_id" not in text and "form" not in text  # empty and retry keys say nothing
    assert "!v2   2026-09-29 10:00:00  #42  clerk 周七 [clerk-1] hall SMZJ  via hall_window" in text
    assert "已受理 / accepted" in text and "! this link fails" in text
    accepted = _entry(3, what={"acceptance": {"mode": "standard", "deemed": False}, "missing": ["M04"]})
    assert '      acceptance.mode: standard\n      acceptance.deemed: false\n      missing: ["M04"]' in (
        render_history(CaseHistory(uuid.UUID(int=5), None, 3, True, (accepted,)))
    )
    assert who(None) == "(unknown)"
    assert (
        who(Actor(id="officer-1", role=Role.OFFICER, department="SCJGJ"))
        == "officer officer-1 department SCJGJ"
    )


def test_a_verdict_names_the_first_altered_event() -> None:
    fine = ChainVerdict(
        "case", True, 6, 1, None, uuid.UUID(int=5), "430100202609290000001", ChainHead(6, "cd" * 32)
    )
    assert render_verdict(fine) == (
        f"OK: case 430100202609290000001: 6 events of 1 aggregates checked; head version 6, hash {'cd' * 32}"
    )
    case = uuid.UUID(int=5)
    reason = "hash does not match topic, state and the previous hash"
    broken = BrokenEvent(57, case, case, "430100202609290000001", 5, "case.task_rejected", reason)
    text = render_verdict(ChainVerdict("store", False, 57, 30, broken))
    assert text.startswith("ALTERED: the whole store: 57 events of 30 aggregates checked")
    assert (
        "position 57, case 430100202609290000001, version 5 (case.task_rejected): hash does not match" in text
    )
