"""The stable names auditors read for event types: `case.materials_requested`, not a Python class path.

A name is the stored topic's class path in snake case, so it needs no table to keep
up to date, and an event class never renamed (events never are, once shipped) keeps
its name. Every audit view (history, export, the terminal timeline) names types here.
"""

from __future__ import annotations

import re

_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(name: str) -> str:
    """ELicenceIssued → e_licence_issued; AuditAccess → audit_access."""
    return _WORD_START.sub("_", name).lower()


def event_type(topic: str) -> str:
    """`domain.case.aggregate:Case.Submitted` → `case.submitted`: the aggregate, then the event."""
    _, _, qualname = topic.rpartition(":")
    return ".".join(snake(part) for part in qualname.split("."))


def event_words(type_name: str) -> str:
    """`case.materials_requested` → `materials requested`: the event part, in plain words."""
    return type_name.rpartition(".")[2].replace("_", " ")
