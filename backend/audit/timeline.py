"""A case's history and a chain verdict as a person reads them in a terminal: Beijing time, who, what."""

from __future__ import annotations

import json
from typing import Any

from backend.audit.history import CaseHistory, HistoryEntry
from backend.audit.naming import event_words
from backend.audit.verification import ChainVerdict
from domain.case import Actor
from domain.case.checks import BEIJING

WIDTH = 110  # a fact longer than this (a form, a material list) is cut at the end of its line
_LEFT_OUT = frozenset({"request_id"})  # a client's retry key says nothing to an auditor


def render_history(history: CaseHistory) -> str:
    chain = "chain intact" if history.intact else "CHAIN BROKEN: see the lines marked !"
    lines = [
        f"办件 {history.number or '(number unreadable)'}   case {history.case_id}",
        f"{len(history.entries)} events, head version {history.head_version}, {chain}",
        "",
    ]
    for entry in history.entries:
        lines.extend(_entry(entry))
    return "\n".join(lines)


def render_verdict(verdict: ChainVerdict) -> str:
    what = f"case {verdict.case_number or verdict.case_id}" if verdict.scope == "case" else "the whole store"
    counted = f"{verdict.events_checked} events of {verdict.aggregates_checked} aggregates checked"
    if verdict.first_broken is None:
        head = (
            "" if verdict.head is None else f"; head version {verdict.head.version}, hash {verdict.head.hash}"
        )
        return f"OK: {what}: {counted}{head}"
    b = verdict.first_broken
    case = f"case {b.case_number or b.case_id}" if b.case_id is not None else f"aggregate {b.aggregate_id}"
    return (
        f"ALTERED: {what}: {counted} up to the first broken link\n"
        f"  position {b.position}, {case}, version {b.version} ({b.type or 'row gone'}): {b.reason}"
    )


def who(actor: Actor | None) -> str:
    if actor is None:
        return "(unknown)"
    parts = [str(actor.role), actor.name or actor.id]
    if actor.name:
        parts.append(f"[{actor.id}]")
    if actor.department:
        parts.append(f"department {actor.department}")
    if actor.hall:
        parts.append(f"hall {actor.hall}")
    return " ".join(parts)


def _entry(entry: HistoryEntry) -> list[str]:
    mark = " " if entry.intact else "!"
    when = (
        "????-??-?? ??:??:??"
        if entry.occurred_at is None
        else f"{entry.occurred_at.astimezone(BEIJING):%F %T}"
    )
    words = event_words(entry.type)
    said = f"{entry.label} / {words}" if entry.label and entry.label != words else words
    head = (
        f"{mark}v{entry.version:<3} {when}  #{entry.position}  {who(entry.actor)}  via {entry.channel or '?'}"
    )
    lines = [head, f"      {said}"]
    if entry.unreadable is not None:
        lines.append(f"      UNREADABLE: {entry.unreadable}")
    facts = {k: v for k, v in (entry.what or {}).items() if k not in _LEFT_OUT}
    lines.extend(_fact(name, value) for name, value in _flat("", facts))
    if not entry.intact:
        lines.append(f"      ! this link fails: hash {entry.hash} after {entry.previous_hash or '(genesis)'}")
    return lines


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """Nested objects as dotted names (applicant.identity), leaving out what is empty."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _flat(f"{prefix}{k}.", v)]
    return [] if value in (None, "", [], {}) else [(prefix.rstrip("."), value)]


def _fact(name: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    line = f"      {name}: {text}"
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"  # the API and exports hold it whole
