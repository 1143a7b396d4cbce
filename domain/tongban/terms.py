"""What a partner city is described by, and the checks each description must pass before it is recorded.

Each check returns the value in the one form it is recorded in (a base URL without its
trailing slash, a public key re-encoded), so two descriptions that mean the same compare equal.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

import msgspec

from domain.catalogue_spec import TONGBAN_MODES, TongbanMode
from domain.tongban.errors import InvalidPartnerError, InvalidPartnerKeyError

NAME_LIMIT = 40
ITEM_NAME_LIMIT = 200
URL_LIMIT = 200
MAX_KEYS = 8  # valid at once; a rotation needs two, and more than a few is a mistake

_REGION = re.compile(r"^[0-9]{6}$")
# The same alphabet as our own key ids (backend.settings) and the Citypass-Key-Id header.
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# 事项编码 (GB/T 39554.1 style) and the codes partners give their own items: letters and digits.
_ITEM_CODE = re.compile(r"^[0-9A-Za-z._-]{1,64}$")


class Acceptance(msgspec.Struct, frozen=True, kw_only=True):
    """One of the partner's items we may hand over to it, and in which 通办 modes."""

    item_code: str
    modes: tuple[TongbanMode, ...]
    name: str | None = None  # the item's name in the partner's catalogue: notices and timelines say it


def check_region(region: str) -> str:
    if not isinstance(region, str) or not _REGION.match(region):
        raise InvalidPartnerError(f"a region is a six-digit division code such as 430200, not {region!r}")
    return region


def check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= NAME_LIMIT or not name.isprintable():
        raise InvalidPartnerError(f"a partner's name is 1 to {NAME_LIMIT} printable characters (株洲市)")
    return name


def check_base_url(url: str) -> str:
    """An http(s) URL of a host, without credentials, query or fragment; without its trailing slash.

    The messaging side appends /federation/v1/... to it, so anything after a path would be lost
    or, worse, change where messages go. Credentials would end up in logs and in the event log.
    """
    if len(url) > URL_LIMIT or not url.isascii() or not url.isprintable() or " " in url:
        raise InvalidPartnerError(f"a base URL is at most {URL_LIMIT} ASCII characters without spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InvalidPartnerError(f"not a URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidPartnerError("a base URL is http:// or https:// and names a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidPartnerError("a base URL carries no credentials")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise InvalidPartnerError("a base URL has no query and no fragment")
    return url.rstrip("/")


def check_accepts(accepts: Iterable[Acceptance]) -> tuple[Acceptance, ...]:
    checked = tuple(accepts)
    codes = [a.item_code for a in checked]
    if bad := [c for c in codes if not _ITEM_CODE.match(c)]:
        raise InvalidPartnerError(f"an item code is 1 to 64 letters, digits, '.', '_' or '-': {bad}")
    if len(set(codes)) != len(codes):
        raise InvalidPartnerError("each item is listed once")
    for a in checked:
        if not a.modes or len(set(a.modes)) != len(a.modes):
            raise InvalidPartnerError(f"item {a.item_code}: list each of its modes once, at least one")
        if unknown := sorted(set(a.modes) - TONGBAN_MODES):
            raise InvalidPartnerError(
                f"item {a.item_code}: unknown modes {unknown}; one of {sorted(TONGBAN_MODES)}"
            )
        if a.name is not None and not (1 <= len(a.name.strip()) <= ITEM_NAME_LIMIT and a.name.isprintable()):
            raise InvalidPartnerError(
                f"item {a.item_code}: a name is 1 to {ITEM_NAME_LIMIT} printable characters"
            )
    return tuple(msgspec.structs.replace(a, name=a.name.strip()) if a.name else a for a in checked)


def check_kid(kid: str) -> str:
    if not isinstance(kid, str) or not _KEY_ID.match(kid):
        raise InvalidPartnerKeyError(f"a key id is 1 to 64 letters, digits, '.', '_' or '-', not {kid!r}")
    return kid


def check_public_key(text: str) -> str:
    """Base64 of the 32 raw bytes of an Ed25519 public key, re-encoded in canonical form."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPartnerKeyError("a public key is base64 of its 32 raw bytes") from None
    if len(raw) != 32:
        raise InvalidPartnerKeyError(f"an Ed25519 public key is 32 bytes, not {len(raw)}")
    return base64.b64encode(raw).decode()
