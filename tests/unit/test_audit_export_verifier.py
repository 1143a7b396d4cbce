"""The offline export verifier: an intact file passes; an altered, dropped, repeated or reordered line is
named by its line number, case and version; a file that is no export at all is unreadable."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backend.audit.export_format import (
    Auditor,
    EventLine,
    Header,
    Scope,
    Trailer,
    encode_line,
    link_hash,
)
from backend.audit.export_verifier import verify_export, verify_export_file
from backend.cli import main
from backend.store.hashchain import GENESIS, chain_hash

pytestmark = pytest.mark.unit

A, B = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
NUMBERS = {A: "430100202609290000001", B: "430100202609290000002"}
T0 = datetime(2026, 9, 29, 2, tzinfo=UTC)
TOPIC = "domain.case.aggregate:Case.Step"
# (case, version) in store order: the two histories interleave.
ORDER = [(A, 1), (B, 1), (A, 2), (B, 2), (A, 3)]


def _state(case: uuid.UUID, version: int) -> bytes:
    at = (T0 + timedelta(minutes=version)).isoformat()
    number = f',"number":"{NUMBERS[case]}"' if version == 1 else ""
    return f'{{"timestamp":{{"$datetime":"{at}"}}{number},"note":"step {version}"}}'.encode()


def export_lines(only: uuid.UUID | None = None) -> list[bytes]:
    header = Header(
        format="citypass.audit-export",
        format_version=1,
        generated_at=T0,
        scope=Scope(case_id=only) if only else Scope(since=T0.date(), until=T0.date()),
        exported_by=Auditor(id="auditor-1", role="auditor"),
        reason="抽查",
        access_id=uuid.UUID(int=1),
    )
    lines, heads = [encode_line(header)], {}
    for position, (case, version) in enumerate(ORDER, 1):
        if only is not None and case != only:
            continue
        previous, state = heads.get(case, GENESIS), _state(case, version)
        heads[case] = link_hash(previous, TOPIC, state)
        lines.append(
            encode_line(
                EventLine(
                    position=position * 10,
                    case_id=case,
                    case_number=NUMBERS[case],
                    version=version,
                    topic=TOPIC,
                    type="case.step",
                    recorded_at=T0 + timedelta(minutes=version, seconds=1),
                    occurred_at=T0 + timedelta(minutes=version),
                    actor={"id": "clerk-1", "role": "clerk"},
                    channel="hall_window",
                    state=state,
                    previous_hash=previous.hex(),
                    hash=heads[case].hex(),
                    fields={"note": f"step {version}"},
                )
            )
        )
    events = len(lines) - 1
    lines.append(encode_line(Trailer(events=events, cases=len(heads))))
    return lines


def edited(lines: list[bytes], n: int, **changes: object) -> list[bytes]:
    """The lines with line `n` (1-based) changed field by field, still valid JSON."""
    line = json.loads(lines[n - 1])
    line.update(changes)
    return [*lines[: n - 1], json.dumps(line, ensure_ascii=False).encode(), *lines[n:]]


def test_the_chain_rule_is_the_stores() -> None:
    assert link_hash(b"\x01" * 32, TOPIC, b"{}") == chain_hash(b"\x01" * 32, TOPIC, b"{}")


def test_an_intact_export_passes() -> None:
    verdict = verify_export(export_lines())
    assert (verdict.exit_code, verdict.events, verdict.cases) == (0, 5, 2)
    assert verdict.describe() == "OK: 5 events in 2 cases; every hash, chain and count holds"
    assert verify_export(export_lines(only=A)).exit_code == 0


def _state_b64(case: uuid.UUID, version: int, old: bytes, new: bytes) -> str:
    return base64.b64encode(_state(case, version).replace(old, new)).decode()


@pytest.mark.parametrize(
    ("line", "changes", "version", "reason"),
    [
        # The state of A's 2nd event (line 4): one character of its note.
        (4, {"state": _state_b64(A, 2, b"step 2", b"step 9")}, 2, "hash does not match"),
        (4, {"hash": "00" * 32}, 2, "hash does not match"),
        (4, {"topic": "domain.case.aggregate:Case.Other"}, 2, "hash does not match"),
        (4, {"previous_hash": "11" * 32}, 2, "previous_hash is not the hash of the case's previous line"),
        (4, {"occurred_at": "2026-09-29T11:00:00+08:00"}, 2, "occurred_at differs"),
        (
            2,
            {"case_number": "430100202609290000099"},
            1,
            "differs from the number the stored submission records",
        ),
        (6, {"case_number": "430100202609290000099"}, 3, "differs from the case's first line"),
        (4, {"version": 3}, 3, "version 3 where 2 was due"),
        (4, {"position": 5}, 2, "position 5 does not follow 20"),
        (4, {"case_id": str(uuid.UUID(int=0xC))}, 2, "version 2 where 1 was due"),
    ],
)
def test_an_altered_line_is_named(line: int, changes: dict[str, object], version: int, reason: str) -> None:
    verdict = verify_export(edited(export_lines(), line, **changes))
    assert verdict.exit_code == 1 and verdict.altered is not None, verdict.describe()
    assert (verdict.altered.line, verdict.altered.version) == (line, version)
    assert reason in verdict.altered.reason
    assert verdict.describe().startswith(f"ALTERED: line {line} (case ")


def test_the_readable_fields_are_a_convenience_the_hash_does_not_cover() -> None:
    # They are decoded from sealed personal values, which an offline check cannot open.
    assert verify_export(edited(export_lines(), 4, fields={"note": "edited"})).exit_code == 0


def test_a_dropped_line_is_caught() -> None:
    lines = export_lines()
    middle = verify_export([*lines[:3], *lines[4:]])  # A's 2nd event: A's 3rd no longer follows on
    assert middle.altered is not None and (middle.altered.line, middle.altered.version) == (5, 3)
    assert middle.altered.case == NUMBERS[A] and "version 3 where 2 was due: a line is missing" in str(
        middle.altered
    )
    last = verify_export([*lines[:5], lines[6]])  # A's last event: only the trailer's count shows it
    assert last.altered is not None and last.altered.line == 6
    assert "the trailer counts 5 events in 2 cases; the file holds 4 in 2" in last.altered.reason
    cut = verify_export(lines[:4])
    assert cut.altered is not None and "no trailer: the file is cut short" in cut.altered.reason


def test_reordered_or_repeated_lines_are_caught() -> None:
    lines = export_lines()
    swapped = verify_export([lines[0], lines[1], lines[2], lines[4], lines[3], *lines[5:]])
    assert (
        swapped.altered is not None
        and swapped.altered.line == 5
        and "does not follow" in swapped.altered.reason
    )
    cases_swapped = verify_export([lines[0], lines[2], lines[1], *lines[3:]])
    assert cases_swapped.altered is not None and cases_swapped.altered.line == 3
    repeated = verify_export([*lines[:4], lines[3], *lines[4:]])
    assert repeated.altered is not None and repeated.altered.line == 5
    after = verify_export([*lines, lines[1]])
    assert after.altered is not None and after.altered.reason == "a line follows the trailer"
    again = verify_export([*lines[:2], lines[0], *lines[2:]])
    assert again.altered is not None and again.altered.reason == "a second header"


def test_a_line_of_another_case_in_a_single_case_export_is_caught() -> None:
    lines = export_lines(only=A)
    stranger = export_lines()[2]  # B's first event
    verdict = verify_export([*lines[:2], stranger, *lines[2:]])
    assert verdict.altered is not None and verdict.altered.line == 3 and "not of" in verdict.altered.reason


def test_a_broken_line_is_altered_but_a_file_that_is_no_export_is_unreadable() -> None:
    lines = export_lines()
    broken = verify_export([*lines[:3], b'{"kind": "event", "position":', *lines[4:]])
    assert broken.exit_code == 1 and broken.altered is not None and broken.altered.line == 4
    for first in (b"", b"not json", b'{"kind":"trailer","events":0,"cases":0}', b'{"kind":"header"}'):
        verdict = verify_export([first, *lines[1:]])
        assert verdict.exit_code == 2 and verdict.unreadable, first
    other = edited(lines, 1, format="someone-else")
    assert "is not a citypass.audit-export header" in (verify_export(other).unreadable or "")
    newer = edited(lines, 1, format_version=2)
    assert verify_export(newer).exit_code == 2
    assert verify_export([]).unreadable == "the file is empty"


def test_the_command_needs_no_settings_and_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYPASS_ENV", "settings that would not load")
    good = tmp_path / "export.jsonl"
    good.write_bytes(b"\n".join(export_lines()) + b"\n")
    assert verify_export_file(good).exit_code == 0
    assert main(["audit", "verify-export", str(good)]) == 0
    assert capsys.readouterr().out.startswith("OK: 5 events in 2 cases")
    bad = tmp_path / "altered.jsonl"
    bad.write_bytes(b"\n".join(edited(export_lines(), 4, hash="00" * 32)) + b"\n")
    assert main(["audit", "verify-export", str(bad)]) == 1
    assert f"ALTERED: line 4 (case {NUMBERS[A]}, version 2)" in capsys.readouterr().err
    assert main(["audit", "verify-export", str(tmp_path / "missing.jsonl")]) == 2
