"""Why a case refuses a command. A refused command appends nothing; the API maps each kind to a problem."""

from __future__ import annotations

from collections.abc import Iterable


class CaseError(Exception):
    """Base of every refusal by a case."""


class IllegalTransitionError(CaseError):
    """The case is not in a state where this command makes sense (accepting a concluded case)."""


class MaterialsMissingError(CaseError):
    """The command needs materials the case does not have yet."""

    def __init__(self, message: str, material_ids: Iterable[str]) -> None:
        self.material_ids = tuple(sorted(material_ids))
        super().__init__(f"{message}: {', '.join(self.material_ids)}")


class NotAuthorisedActorError(CaseError):
    """This actor may not issue this command (a citizen accepting, an officer of another department)."""


class InvalidCommandError(CaseError):
    """The command itself is malformed or incomplete (an empty 补正告知, a reason left blank)."""


class NotEligibleError(CaseError):
    """The applicant may not use this route (容缺受理 or 告知承诺 while on the credit blacklist)."""


class CaseNumberError(CaseError, ValueError):
    """A case number cannot be formed from these parts."""
