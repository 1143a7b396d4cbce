"""办件编号 (unique, never reused) and case ids that make a retried submission land on the same case."""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from uuid import UUID, uuid5

from domain.case.errors import CaseNumberError

DEFAULT_PATTERN = "{region}{yyyymmdd}{seq:06d}"

# Fixed forever: changing it would give a retried submission a different case id.
_CASE_IDS = UUID("6f1d2c3a-8b4e-5f60-9a7b-c8d9e0f1a2b3")
_ZERO_PADDED = re.compile(r"0(\d+)d")


def format_case_number(region: str, day: date, seq: int, pattern: str = DEFAULT_PATTERN) -> str:
    """Fill the pattern: {region} (6-digit 区划代码), {yyyymmdd}, {yyyy}, {mm}, {dd} and {seq}.

    The sequence must fit the pattern's zero-padded width, so that every number has
    one length and sorts in the order it was issued.
    """
    if not re.fullmatch(r"\d{6}", region):
        raise CaseNumberError(f"region must be a 6-digit 区划代码, got {region!r}")
    if seq < 1:
        raise CaseNumberError(f"sequence numbers start at 1, got {seq}")
    specs = _fields(pattern)
    if "seq" not in specs or "region" not in specs:
        raise CaseNumberError(f"pattern {pattern!r} must contain {{region}} and {{seq}}, or numbers repeat")
    width = _ZERO_PADDED.fullmatch(specs["seq"])
    if width and len(str(seq)) > int(width.group(1)):
        raise CaseNumberError(f"sequence {seq} does not fit {pattern!r}")
    ymd = f"{day:%Y%m%d}"
    values = {"region": region, "yyyymmdd": ymd, "yyyy": ymd[:4], "mm": ymd[4:6], "dd": ymd[6:], "seq": seq}
    try:
        return pattern.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise CaseNumberError(f"pattern {pattern!r} cannot be filled: {exc!r}") from exc


@functools.lru_cache(maxsize=16)  # one pattern per deployment, parsed once, not per submission
def _fields(pattern: str) -> Mapping[str, str]:
    try:
        return MappingProxyType(
            {name: spec or "" for _, name, spec, _ in string.Formatter().parse(pattern) if name is not None}
        )
    except ValueError as exc:
        raise CaseNumberError(f"pattern {pattern!r} is malformed: {exc}") from exc


def case_id_for_submission(region: str, submitter_id: str, client_request_id: str) -> UUID:
    """The same submission retried by the same account gets the same id, so the store refuses the copy."""
    return uuid5(_CASE_IDS, f"{region}/{submitter_id}/{client_request_id}")
