"""秒批.材料齐全: which cases the rule approves at once, and why it turns the others down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from domain.case import Case, ELicenceRef, UploadedFile
from domain.case.instant_rules import MATERIALS_COMPLETE, InstantTerms
from domain.catalogue_spec import Material
from tests.unit.case_builders import ENTERPRISE, ENTERPRISE_AGENT, STATES, sha, submit

ID_CARD = Material(id="id-card", name="居民身份证", replaceable_by_elicence="居民身份证")
LEASE = Material(id="lease", name="租赁合同")
PHOTO = Material(id="photo", name="照片", requirement="minor")
TERMS = InstantTerms(
    version=1,
    modes=("full_online", "instant_approval"),
    materials=(ID_CARD, LEASE),
    audience=("person",),
)
ALL = {"id-card": UploadedFile(sha(1)), "lease": UploadedFile(sha(2))}
LICENCE = ELicenceRef("430102199003071234", issuer="长沙市公安局")


def terms(**changes: Any) -> InstantTerms:
    fields = {"version": 1, "modes": TERMS.modes, "materials": TERMS.materials, "audience": TERMS.audience}
    return InstantTerms(**{**fields, **changes})


def case(**overrides: Any) -> Case:
    return submit(**{"catalogue_version": "1", "materials": ALL, **overrides})


def in_state(state: str) -> Case:
    built, _ = STATES[state]()
    built.catalogue_version = "1"  # the builders file under another version; here only the state counts
    return built


QUALIFIES: list[tuple[str, Callable[[], Case], InstantTerms]] = [
    ("every material uploaded", case, TERMS),
    (
        "the id card as an e-licence",
        lambda: case(materials={**ALL, "id-card": LICENCE}),
        TERMS,
    ),
    ("extra materials do no harm", lambda: case(materials={**ALL, "x": UploadedFile(sha(3))}), TERMS),
    (
        "an enterprise where the item serves both",
        lambda: case(applicant=ENTERPRISE, agent=ENTERPRISE_AGENT),
        terms(audience=("person", "enterprise")),
    ),
    ("a bundle says nothing of its audience", case, terms(audience=None)),
]

REFUSED: list[tuple[str, Callable[[], Case], InstantTerms, str]] = [
    ("an item without 秒批", case, terms(modes=("full_online",)), "not open to 秒批"),
    ("a material missing", lambda: case(materials={"id-card": ALL["id-card"]}), TERMS, "lease is missing"),
    ("a minor material missing too", case, terms(materials=(ID_CARD, LEASE, PHOTO)), "photo is missing"),
    (
        "an e-licence the item does not take",
        lambda: case(materials={**ALL, "lease": LICENCE}),
        TERMS,
        "lease is an e-licence",
    ),
    (
        "an enterprise where the item serves persons",
        lambda: case(applicant=ENTERPRISE, agent=ENTERPRISE_AGENT),
        TERMS,
        "enterprise applicant",
    ),
    ("filed under an older version", case, terms(version=2), "version 1, the item is now at 2"),
    ("pre-reviewed", lambda: in_state("pre_review_passed"), terms(materials=()), "预审通过"),
    ("asked for materials", lambda: in_state("awaiting_correction"), terms(materials=()), "待补正"),
    ("back after a 补正", lambda: in_state("pre_review"), terms(materials=()), "预审中"),
    ("accepted", lambda: in_state("accepted"), terms(materials=()), "已受理"),
    ("withdrawn", lambda: in_state("withdrawn"), terms(materials=()), "已撤回"),
]


@pytest.mark.parametrize(("name", "build", "item"), QUALIFIES, ids=[q[0] for q in QUALIFIES])
def test_the_rule_approves(name: str, build: Callable[[], Case], item: InstantTerms) -> None:
    decision = MATERIALS_COMPLETE.decide(build(), item)
    assert decision.qualifies, decision.reasons
    assert (decision.rule_id, decision.rule_version) == ("秒批.材料齐全", "2026.1")


@pytest.mark.parametrize(("name", "build", "item", "why"), REFUSED, ids=[r[0] for r in REFUSED])
def test_the_rule_turns_down(name: str, build: Callable[[], Case], item: InstantTerms, why: str) -> None:
    decision = MATERIALS_COMPLETE.decide(build(), item)
    assert not decision.qualifies
    assert len(decision.reasons) == 1 and why in decision.reasons[0], decision.reasons
    assert (decision.rule_id, decision.rule_version) == ("秒批.材料齐全", "2026.1")


def test_every_reason_is_given_at_once() -> None:
    decision = MATERIALS_COMPLETE.decide(case(materials={}), terms(modes=(), version=2))
    assert len(decision.reasons) == 4  # not 秒批, another version, two materials missing
