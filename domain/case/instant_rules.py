"""秒批 rules: whether the system may accept and approve a case at once, each rule named and versioned.

A rule reads only the case as submitted and what the catalogue entry says; the
decision carries the rule's id and version, so the approval records what decided it.
A case a rule turns down goes the normal way: nothing is refused, a clerk takes it up.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from domain.case.aggregate import Case
from domain.case.status import CaseStatus
from domain.case.values import ELicenceRef, UploadedFile
from domain.catalogue_spec import Material

INSTANT_MODE = "instant_approval"


@dataclass(frozen=True, slots=True)
class InstantTerms:
    """What the catalogue entry says that a 秒批 rule reads."""

    version: int  # the entry's published version
    modes: Collection[str]
    materials: tuple[Material, ...]  # every 申请材料, required and minor
    audience: Collection[str] | None  # 服务对象 kinds; None where the entry says nothing (a bundle)


@dataclass(frozen=True, slots=True)
class InstantDecision:
    rule_id: str
    rule_version: str
    reasons: tuple[str, ...]  # why the case does not qualify; empty when it does

    @property
    def qualifies(self) -> bool:
        return not self.reasons


@dataclass(frozen=True, slots=True)
class MaterialsComplete:
    """秒批.材料齐全: an eligible item, filed as submitted under the current entry, every material there."""

    id: str = "秒批.材料齐全"
    version: str = "2026.1"

    def decide(self, case: Case, terms: InstantTerms) -> InstantDecision:
        reasons = [*_standing(case, terms), *_materials(case, terms.materials)]
        return InstantDecision(self.id, self.version, tuple(reasons))


MATERIALS_COMPLETE = MaterialsComplete()


def _standing(case: Case, terms: InstantTerms) -> list[str]:
    reasons = []
    if INSTANT_MODE not in terms.modes:
        reasons.append("the item is not open to 秒批")
    if case.status is not CaseStatus.SUBMITTED:
        # Pre-reviewed, asked for materials, accepted or ended: the office has the case in hand.
        reasons.append(f"the case is {case.status.label}, no longer as submitted")
    if case.catalogue_version != str(terms.version):
        reasons.append(f"filed under version {case.catalogue_version}, the item is now at {terms.version}")
    if terms.audience is not None and case.applicant.kind.value not in terms.audience:
        reasons.append(f"the item does not serve a {case.applicant.kind.value} applicant")
    return reasons


def _materials(case: Case, materials: tuple[Material, ...]) -> list[str]:
    reasons = []
    for material in materials:
        match case.materials.get(material.id):
            case UploadedFile():
                pass
            case ELicenceRef() if material.replaceable_by_elicence is not None:
                pass
            case ELicenceRef():
                reasons.append(f"material {material.id} is an e-licence, which the item does not take for it")
            case None:
                reasons.append(f"material {material.id} is missing")
    return reasons
