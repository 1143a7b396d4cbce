"""Verify an audit export offline: every hash, every case's chain, the order, and the trailer's counts.

Pure: a file in, a verdict out; no database, no settings, no keys. Exit codes:
0 the export is intact, 1 it was altered (the first bad line is named), 2 it is not
a readable export at all.

What a verified export proves: each event line's bytes are those its hash commits to,
each case's events form one unbroken chain from its first event, and nothing between a
case's first and last line was dropped, added or reordered. Where the stored state
records them, `occurred_at` and the case number are checked against it too. Dropping a
case's last events, or a whole case, shows only against the trailer's counts or the
live store (the case verification's head hash), since the file carries no signature.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec

from backend.audit.export_format import (
    FORMAT,
    FORMAT_VERSION,
    EventLine,
    Header,
    Trailer,
    decode_line,
    link_hash,
)


@dataclass(frozen=True, slots=True)
class Finding:
    line: int
    reason: str
    case: str | None = None  # the case number, or its id when the number is unknown
    version: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.case is not None:
            where += (
                f" (case {self.case}" + ("" if self.version is None else f", version {self.version}") + ")"
            )
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ExportVerdict:
    events: int = 0
    cases: int = 0
    altered: Finding | None = None
    unreadable: str | None = None

    @property
    def exit_code(self) -> int:
        return 2 if self.unreadable is not None else 1 if self.altered is not None else 0

    def describe(self) -> str:
        if self.unreadable is not None:
            return f"UNREADABLE: {self.unreadable}"
        if self.altered is not None:
            return f"ALTERED: {self.altered}"
        return f"OK: {self.events} events in {self.cases} cases; every hash, chain and count holds"


class _Altered(Exception):
    def __init__(self, finding: Finding) -> None:
        self.finding = finding


class _Walk:
    """The state of one pass over the lines."""

    def __init__(self, only_case: UUID | None) -> None:
        self.only_case = only_case  # an export of one case holds no other
        self.heads: dict[UUID, tuple[int, str, str | None]] = {}  # case -> (version, hash, number)
        self.position = 0
        self.events = 0

    def event(self, n: int, line: EventLine) -> None:
        head = self.heads.get(line.case_id)
        version, previous, number = head if head is not None else (0, "", line.case_number)
        try:
            self._link(line, version, previous)
            self._content(line, number)
        except ValueError as exc:
            raise _Altered(Finding(n, str(exc), number or str(line.case_id), line.version)) from None
        self.heads[line.case_id] = (line.version, line.hash, line.case_number)
        self.position = line.position
        self.events += 1

    def _link(self, line: EventLine, version: int, previous: str) -> None:
        """Its place: in this export's case, after the last position, the next version, on the last hash."""
        if self.only_case is not None and line.case_id != self.only_case:
            raise ValueError(f"the export is of case {self.only_case}, not of {line.case_id}")
        if line.position <= self.position:
            raise ValueError(
                f"position {line.position} does not follow {self.position}: lines reordered or repeated"
            )
        if line.version != version + 1:
            lost = "a line is missing" if line.version > version + 1 else "a line is repeated or out of order"
            raise ValueError(f"version {line.version} where {version + 1} was due: {lost}")
        if line.previous_hash != previous:
            raise ValueError("previous_hash is not the hash of the case's previous line")
        # `previous` is "" or a hash this walk has checked, so it is hex.
        if link_hash(bytes.fromhex(previous), line.topic, line.state).hex() != line.hash:
            raise ValueError(
                "hash does not match sha256(previous_hash || topic || state): the event was altered"
            )

    @staticmethod
    def _content(line: EventLine, number: str | None) -> None:
        """What the line says beside the bytes, where the bytes themselves say it too."""
        if line.case_number != number:
            raise ValueError(f"case number {line.case_number} differs from the case's first line ({number})")
        recorded = _recorded(line.state)
        if line.occurred_at is not None and recorded.get("timestamp", line.occurred_at) != line.occurred_at:
            raise ValueError("occurred_at differs from the time the stored state records")
        if line.version == 1 and recorded.get("number", line.case_number) != line.case_number:
            raise ValueError("case_number differs from the number the stored submission records")

    def trailer(self, n: int, trailer: Trailer) -> None:
        if (trailer.events, trailer.cases) != (self.events, len(self.heads)):
            raise _Altered(
                Finding(
                    n,
                    f"the trailer counts {trailer.events} events in {trailer.cases} cases; "
                    f"the file holds {self.events} in {len(self.heads)}",
                )
            )


def verify_export(lines: Iterable[bytes]) -> ExportVerdict:
    numbered = ((n, raw) for n, raw in enumerate(lines, 1) if raw.strip() or n == 1)
    first = next(numbered, None)
    header = None if first is None else _header(first[1])
    if not isinstance(header, Header):
        return ExportVerdict(unreadable=header or "the file is empty")
    walk, last, ended = _Walk(header.scope.case_id), 1, False
    try:
        for last, raw in numbered:
            if ended:
                raise _Altered(Finding(last, "a line follows the trailer"))
            try:
                line = decode_line(raw)
            except msgspec.DecodeError as exc:  # a ValidationError is one too
                raise _Altered(Finding(last, f"not an export line: {exc}")) from None
            match line:
                case EventLine():
                    walk.event(last, line)
                case Trailer():
                    walk.trailer(last, line)
                    ended = True
                case Header():
                    raise _Altered(Finding(last, "a second header"))
        if not ended:
            raise _Altered(Finding(last + 1, "no trailer: the file is cut short"))
    except _Altered as exc:
        return ExportVerdict(walk.events, len(walk.heads), altered=exc.finding)
    return ExportVerdict(walk.events, len(walk.heads))


def verify_export_file(path: Path) -> ExportVerdict:
    try:
        with path.open("rb") as file:
            return verify_export(file)
    except OSError as exc:
        return ExportVerdict(unreadable=f"{path}: {exc.strerror or exc}")


def _header(raw: bytes) -> Header | str:
    try:
        line = decode_line(raw)
    except msgspec.DecodeError as exc:
        return f"the first line is not an export header: {exc}"
    if not isinstance(line, Header) or line.format != FORMAT:
        return f"the first line is not a {FORMAT} header"
    if line.format_version != FORMAT_VERSION:
        return f"{FORMAT} version {line.format_version} is not one this verifier reads ({FORMAT_VERSION})"
    return line


def _recorded(state: bytes) -> dict[str, Any]:
    """What the stored state says of its time and case number, when it is the store's JSON."""
    try:
        decoded = msgspec.json.decode(state)
    except msgspec.DecodeError:
        return {}
    if not isinstance(decoded, dict):
        return {}
    found: dict[str, Any] = {}
    stamp = decoded.get("timestamp")
    if isinstance(stamp, dict) and isinstance(stamp.get("$datetime"), str):
        try:
            found["timestamp"] = datetime.fromisoformat(stamp["$datetime"])
        except ValueError:
            found["timestamp"] = stamp["$datetime"]  # unparseable: it will differ, and be named
    if isinstance(decoded.get("number"), str):
        found["number"] = decoded["number"]
    return found
