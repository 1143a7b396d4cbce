"""A case's full history as an auditor reads it: each event in order, who acted, and its chain link."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from backend.audit.naming import event_type
from backend.audit.readable import event_facts
from backend.audit.stored import StoredRow, decode, links
from domain.case import Actor
from projections.case_facts import CaseFacts, fold, marked_departments, render_label

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: int
    position: int
    topic: str  # as stored: what the hash covers
    type: str  # its stable name: case.accepted
    label: str | None  # in the timeline's words: 一次性告知补正材料; None when the row does not decode
    occurred_at: datetime | None  # the event's own time; None when the row does not decode
    recorded_at: datetime  # when the store committed it
    actor: Actor | None
    channel: str | None
    what: dict[str, Any] | None  # the event's facts, personal values revealed
    hash: str  # hex
    previous_hash: str  # hex; empty for the first event (the genesis)
    intact: bool
    unreadable: str | None = None  # why the row did not decode, when it did not


@dataclass(frozen=True, slots=True)
class CaseHistory:
    case_id: UUID
    number: str | None
    head_version: int
    intact: bool  # every link holds
    entries: tuple[HistoryEntry, ...]

    @property
    def departments(self) -> set[str]:
        """The departments the labels name by code, for `named` to put names in their place."""
        return set().union(*(marked_departments(e.label or "") for e in self.entries))

    def named(self, names: Mapping[str, str]) -> CaseHistory:
        """The labels with the catalogue's department names (a code stays where a name is unknown)."""
        entries = tuple(
            replace(e, label=None if e.label is None else render_label(e.label, names)) for e in self.entries
        )
        return replace(self, entries=entries)


def case_history(
    mapper: Mapper[UUID], case_id: UUID, number: str | None, rows: Sequence[StoredRow]
) -> CaseHistory:
    """The history with its labels still marking departments by code (see `CaseHistory.named`)."""
    entries, facts = [], CaseFacts()
    for link in links(rows):
        row = link.row
        event, fault = decode(mapper, row)
        actor, channel = getattr(event, "actor", None), getattr(event, "channel", None)
        entries.append(
            HistoryEntry(
                version=row.version,
                position=row.position,
                topic=row.topic,
                type=event_type(row.topic),
                label=None if event is None else _label(facts, event),
                occurred_at=None if event is None else event.timestamp,
                recorded_at=row.recorded_at,
                actor=actor if isinstance(actor, Actor) else None,
                channel=None if channel is None else str(channel),
                what=None if event is None else event_facts(event),
                hash=row.hash.hex(),
                previous_hash=link.previous_hash.hex(),
                intact=link.intact,
                unreadable=fault,
            )
        )
    return CaseHistory(
        case_id=case_id,
        number=number,
        head_version=rows[-1].version if rows else 0,
        intact=all(e.intact for e in entries),
        entries=tuple(entries),
    )


def _label(facts: CaseFacts, event: Any) -> str | None:
    # The read models' own words, folded in order as they fold them; an altered history may not fold.
    try:
        return fold(facts, event)
    except Exception as exc:  # a label is a courtesy: the entry shows without one
        log.warning("audit: no label for %s v%d: %r", event.originator_id, event.originator_version, exc)
        return None
