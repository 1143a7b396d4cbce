"""Who is asking: the caller of a case command, and the errors the service adds to the domain's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.case import Actor, Channel, Role

# The channel a command arrives through when the caller does not say: citizens use the
# mini-program, clerks sit at a hall window, officers work in the hall's back office.
_DEFAULT_CHANNEL = {
    Role.CITIZEN: Channel.MINIAPP,
    Role.AGENT: Channel.MINIAPP,
    Role.CLERK: Channel.HALL_WINDOW,
    Role.OFFICER: Channel.HALL_WINDOW,
    Role.SYSTEM: Channel.SYSTEM,
    Role.PARTNER: Channel.PARTNER_CITY,
}


class CaseServiceError(Exception):
    """Base of the refusals the service adds before the case is asked."""


class CaseNotFoundError(CaseServiceError, LookupError):
    """No case has that id."""


class NotYourCaseError(CaseServiceError):
    """The caller's role may do this, but not on this case: another citizen's, hall's or department's."""


class UnknownServiceItemError(CaseServiceError):
    """The item code is not in the catalogue, or has been withdrawn from it."""


class UnknownMaterialError(CaseServiceError):
    """A material names a file hash that was never uploaded."""


class Identity(Protocol):
    """What the service needs to know of a caller; `Caller` is one, the API has its own."""

    @property
    def subject(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def name(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def hall(self) -> str | None: ...
    @property
    def channel(self) -> Channel | None: ...


def actor_of(caller: Identity) -> Actor:
    """The actor events record. An applicant-side account's name is left out: it is personal, the
    case already holds it sealed (Applicant, Agent), and the account id says who acted."""
    name = None if caller.role in (Role.CITIZEN, Role.AGENT) else caller.name
    return Actor(
        id=caller.subject, role=caller.role, name=name, department=caller.department, hall=caller.hall
    )


def channel_of(caller: Identity) -> Channel:
    return caller.channel or _DEFAULT_CHANNEL[caller.role]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller, in the domain's roles; the API maps its principal to this."""

    subject: str
    role: Role
    name: str | None = None
    department: str | None = None  # officers
    hall: str | None = None  # clerks
    channel: Channel | None = None  # None: the usual channel of the role


SYSTEM = Caller(subject="system", role=Role.SYSTEM, name="系统")
