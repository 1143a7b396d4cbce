"""A small aggregate whose events the server process can import and decode."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event


class Parcel(Aggregate):
    @event("Registered")
    def __init__(self, label: str) -> None:
        self.label = label

    @event("Noted")
    def note(self, text: str) -> None:
        self.last_note = text
